import { MtPaasError, type TenantId } from '@mt-paas/context';
import { z } from 'zod';
import { type ChromaLayout, createChromaVectorStore } from './chroma-store.js';
import { defineVectorStore } from './define-vector-store.js';
import { createMemoryVectorStore } from './memory-store.js';
import { createPgVectorStore, type RunScoped, type SqlExecutor } from './pgvector-store.js';
import { createQdrantVectorStore, type QdrantLayout } from './qdrant-store.js';
import type { NormalizedFilter, VectorFilter, VectorStore } from './types.js';
import { checkDimensions } from './validation.js';

/** The store types `createVectorStore` builds. */
export const VECTOR_STORE_TYPES = ['pgvector', 'qdrant', 'chroma', 'memory'] as const;

/**
 * The `database.vector` section of `mt-paas.yaml` (the seed's shape: `type`, `url`,
 * `collection_prefix`; camelCase spellings are accepted too).
 */
export const vectorStoreConfigSchema = z
  .object({
    type: z.string(),
    url: z.string().optional(),
    collection_prefix: z.string().optional(),
    collectionPrefix: z.string().optional(),
    api_key: z.string().optional(),
    apiKey: z.string().optional(),
    layout: z.string().optional(),
  })
  .loose();

/** Input type of {@link vectorStoreConfigSchema}. */
export type VectorStoreConfig = z.input<typeof vectorStoreConfigSchema>;

/** What the config file does not say: the embedding space and, for pgvector, the database. */
export interface CreateVectorStoreOptions {
  /** Length of the embedding model's vectors. */
  dimensions: number;
  /** The embedding model's name (part of collection / table names). @default 'default' */
  model?: string;
  /** pgvector: where statements run (a pg Pool or PGlite); else `url`, else embedded PGlite. */
  executor?: SqlExecutor;
  /** pgvector: run each operation in the tenant's scoped unit of work. */
  runScoped?: RunScoped;
  /** Qdrant / Chroma: overrides `api_key` from the config (keep secrets in env vars). */
  apiKey?: string;
  /** HTTP stores: per-request timeout in milliseconds. @default 30000 */
  timeoutMs?: number;
}

/**
 * Builds the store a config section names.
 *
 * @example
 * const store = createVectorStore(config.database.vector, { dimensions: 1024, model: 'bge-m3' });
 * @throws MtPaasError `CONFIG_INVALID` for an unknown `type` or malformed section.
 */
export function createVectorStore(config: VectorStoreConfig, options: CreateVectorStoreOptions): VectorStore {
  const parsed = vectorStoreConfigSchema.safeParse(config);
  if (!parsed.success) {
    throw new MtPaasError('CONFIG_INVALID', 'database.vector must be an object with at least a "type".', {
      details: { issues: parsed.error.issues.slice(0, 5) },
    });
  }
  const section = parsed.data;
  const collectionPrefix = section.collection_prefix ?? section.collectionPrefix;
  const apiKey = options.apiKey ?? section.api_key ?? section.apiKey;
  const common = {
    dimensions: options.dimensions,
    ...(options.model === undefined ? {} : { model: options.model }),
  };
  const http = {
    ...common,
    ...(section.url === undefined ? {} : { url: section.url }),
    ...(apiKey === undefined ? {} : { apiKey }),
    ...(collectionPrefix === undefined ? {} : { collectionPrefix }),
    ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
  };
  switch (section.type) {
    case 'qdrant':
      return createQdrantVectorStore({
        ...http,
        ...(section.layout === undefined ? {} : { layout: section.layout as QdrantLayout }),
      });
    case 'chroma':
      return createChromaVectorStore({
        ...http,
        ...(section.layout === undefined ? {} : { layout: section.layout as ChromaLayout }),
      });
    case 'pgvector':
      return createPgVectorStore({
        ...common,
        ...(collectionPrefix === undefined ? {} : { tablePrefix: collectionPrefix }),
        ...(options.executor === undefined ? {} : { executor: options.executor }),
        ...(options.runScoped === undefined ? {} : { runScoped: options.runScoped }),
        ...(section.url === undefined ? {} : { connectionString: section.url }),
      });
    case 'memory':
      return createMemoryVectorStore({ dimensions: options.dimensions });
    default:
      throw new MtPaasError(
        'CONFIG_INVALID',
        `database.vector.type "${section.type}" is not supported; use one of ${VECTOR_STORE_TYPES.join(', ')}.`,
        { details: { type: section.type, supported: VECTOR_STORE_TYPES } },
      );
  }
}

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
