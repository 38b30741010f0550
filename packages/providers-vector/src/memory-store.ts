import type { TenantId } from '@mt-paas/context';
import { defineVectorStore } from './define-vector-store.js';
import type { NormalizedRecord, VectorMatch, VectorStore } from './types.js';
import { checkDimensions, cosineSimilarity, matchesFilter } from './validation.js';

/** Options of {@link createMemoryVectorStore}. */
export interface MemoryVectorStoreOptions {
  /** Length of every vector the store holds (the embedding model's dimensions). */
  dimensions: number;
}

/**
 * An exact (brute-force cosine) in-process store: for tests, demos and small corpora. Data lives
 * in a map per tenant and is lost when the process ends.
 */
export function createMemoryVectorStore(options: MemoryVectorStoreOptions): VectorStore {
  const dimensions = checkDimensions(options.dimensions);
  const tenants = new Map<TenantId, Map<string, NormalizedRecord>>();
  const records = (tenantId: TenantId) => {
    let map = tenants.get(tenantId);
    if (map === undefined) {
      map = new Map();
      tenants.set(tenantId, map);
    }
    return map;
  };
  return defineVectorStore({
    kind: 'memory',
    dimensions,
    async upsert(tenantId, batch) {
      const map = records(tenantId);
      for (const record of batch) {
        map.set(record.id, { id: record.id, vector: [...record.vector], metadata: { ...record.metadata } });
      }
    },
    async query(tenantId, query) {
      const matches: VectorMatch[] = [];
      for (const record of tenants.get(tenantId)?.values() ?? []) {
        if (!matchesFilter(record.metadata, query.filter)) continue;
        matches.push({
          id: record.id,
          score: cosineSimilarity(query.vector, record.vector),
          metadata: { ...record.metadata },
        });
      }
      matches.sort((a, b) => b.score - a.score || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
      return matches.slice(0, query.topK);
    },
    async delete(tenantId, request) {
      const map = tenants.get(tenantId);
      if (map === undefined) return;
      const candidates = request.ids === undefined ? [...map.keys()] : request.ids;
      for (const id of candidates) {
        const record = map.get(id);
        if (record !== undefined && matchesFilter(record.metadata, request.filter)) map.delete(id);
      }
    },
    async count(tenantId, filter) {
      let count = 0;
      for (const record of tenants.get(tenantId)?.values() ?? []) {
        if (matchesFilter(record.metadata, filter)) count++;
      }
      return count;
    },
    async purgeTenant(tenantId) {
      tenants.delete(tenantId);
    },
    async close() {
      tenants.clear();
    },
  });
}
