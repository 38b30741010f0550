import { MtPaasError, type TenantId } from '@mt-paas/context';
import { defineVectorStore } from './define-vector-store.js';
import type { NormalizedFilter, VectorFilter, VectorStore } from './types.js';
import { checkDimensions } from './validation.js';

/** Options of {@link createVectorStoreRouter}. */
export interface VectorStoreRouterOptions {
  /** Length of the vectors every routed store holds. */
  dimensions: number;
  /**
   * The store that holds `tenantId`'s vectors (e.g. by plan or placement). Called on every
   * operation; cache what it builds (the stores are long-lived).
   */
  route: (tenantId: TenantId) => VectorStore | Promise<VectorStore>;
  /** Stores `close()` closes. @default [] */
  stores?: readonly VectorStore[];
}

/**
 * A store that sends each tenant's operations to the store `route` picks for it — per-tenant
 * selection (a dedicated Qdrant for one institution, the shared pgvector for the rest).
 */
export function createVectorStoreRouter(options: VectorStoreRouterOptions): VectorStore {
  const dimensions = checkDimensions(options.dimensions);
  const target = async (tenantId: TenantId) => {
    const store = await options.route(tenantId);
    if (store.dimensions !== dimensions) {
      throw new MtPaasError(
        'CONFIG_INVALID',
        `The vector store routed for tenant "${tenantId}" holds ${store.dimensions}-dimensional vectors, not ${dimensions}; route every tenant to a store of the router's dimensions (one router per embedding model).`,
        { details: { tenantId } },
      );
    }
    return store.forTenant(tenantId);
  };
  return defineVectorStore({
    kind: 'router',
    dimensions,
    upsert: async (tenantId, records) => (await target(tenantId)).upsert(records),
    query: async (tenantId, query) =>
      (await target(tenantId)).query({
        vector: query.vector,
        topK: query.topK,
        filter: denormalizeFilter(query.filter),
      }),
    delete: async (tenantId, request) =>
      (await target(tenantId)).delete({
        ...(request.ids === undefined ? {} : { ids: request.ids }),
        filter: denormalizeFilter(request.filter),
      }),
    count: async (tenantId, filter) => (await target(tenantId)).count(denormalizeFilter(filter)),
    purgeTenant: async (tenantId) => (await target(tenantId)).purgeTenant(),
    async close() {
      await Promise.all((options.stores ?? []).map((store) => store.close()));
    },
  });
}

function denormalizeFilter(filter: NormalizedFilter): VectorFilter {
  return Object.fromEntries(
    filter.map((condition) => [
      condition.key,
      condition.values.length === 1 ? { $eq: condition.values[0]! } : { $in: condition.values },
    ]),
  );
}
