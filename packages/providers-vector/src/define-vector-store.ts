import { MtPaasError, parseTenantId, requireTenant, type TenantId, tryCurrentTenant } from '@mt-paas/context';
import type {
  NormalizedRecord,
  TenantVectorOperations,
  TenantVectorStore,
  VectorDeleteRequest,
  VectorFilter,
  VectorQuery,
  VectorRecord,
  VectorStore,
  VectorStoreDriver,
} from './types.js';
import { normalizeDelete, normalizeFilter, normalizeQuery, normalizeRecords } from './validation.js';

/** Largest number of records one `upsert()` call accepts. */
export const MAX_UPSERT_BATCH = 1000;

function operations(driver: VectorStoreDriver, resolveTenant: () => TenantId): TenantVectorOperations {
  return {
    async upsert(records: readonly VectorRecord[]) {
      const tenantId = resolveTenant();
      const normalized: NormalizedRecord[] = normalizeRecords(records, driver.dimensions);
      if (normalized.length > MAX_UPSERT_BATCH) {
        throw new MtPaasError(
          'PAYLOAD_TOO_LARGE',
          `upsert() takes at most ${MAX_UPSERT_BATCH} records per call; split the batch.`,
          { details: { received: normalized.length, max: MAX_UPSERT_BATCH } },
        );
      }
      if (normalized.length === 0) return;
      await driver.upsert(tenantId, normalized);
    },
    async query(query: VectorQuery) {
      const tenantId = resolveTenant();
      return driver.query(tenantId, normalizeQuery(query, driver.dimensions));
    },
    async delete(request: VectorDeleteRequest) {
      const tenantId = resolveTenant();
      const normalized = normalizeDelete(request);
      if (normalized.ids !== undefined && normalized.ids.length === 0) return;
      await driver.delete(tenantId, normalized);
    },
    async count(filter?: VectorFilter) {
      const tenantId = resolveTenant();
      return driver.count(tenantId, normalizeFilter(filter));
    },
    async purgeTenant() {
      await driver.purgeTenant(resolveTenant());
    },
  };
}

/**
 * Wraps a {@link VectorStoreDriver} into a {@link VectorStore}: validates every input, and supplies
 * the tenant — from the current context (`requireTenant()`), or the one bound with `forTenant()` —
 * so a caller can never name another tenant through a filter, an id or a record.
 *
 * @example
 * const store = defineVectorStore(myDriver);
 * await runWithTenant({ tenantId: 'hallym_univ' }, () => store.upsert([{ id: 'doc-1', vector }]));
 */
export function defineVectorStore(driver: VectorStoreDriver): VectorStore {
  const fromContext = operations(driver, () => requireTenant().tenantId);
  return {
    kind: driver.kind,
    dimensions: driver.dimensions,
    ...fromContext,
    forTenant(tenantId: string): TenantVectorStore {
      const bound = parseTenantId(tenantId);
      const resolveBound = (): TenantId => {
        const active = tryCurrentTenant();
        if (active !== undefined && active.tenantId !== bound) {
          throw new MtPaasError(
            'CROSS_TENANT_ACCESS',
            `This vector store is bound to tenant "${bound}" but runs inside the context of tenant "${active.tenantId}"; use the store without forTenant() inside a request.`,
            { details: { boundTenantId: bound, contextTenantId: active.tenantId } },
          );
        }
        return bound;
      };
      return {
        kind: driver.kind,
        dimensions: driver.dimensions,
        tenantId: bound,
        ...operations(driver, resolveBound),
      };
    },
    async close() {
      await driver.close?.();
    },
  };
}
