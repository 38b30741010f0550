import type { Tenant, TenantDirectory, TenantEventBus, TenantId, Unsubscribe } from '@mt-paas/context';
import { createTenantContext, isTenantId, MtPaasError } from '@mt-paas/context';
import { LRUCache } from 'lru-cache';

/** Options of {@link createCachedDirectory}. */
export interface CachedDirectoryOptions {
  directory: TenantDirectory;
  /** Invalidation events. Without it, entries only expire by TTL. */
  events?: TenantEventBus;
  /** Most tenants kept. @default 10_000 */
  max?: number;
  /** How long a found tenant is kept. @default 60_000 (ms) */
  ttlMs?: number;
  /** How long "no such tenant" is kept, so a flood of random ids does not reach the database. @default 5_000 (ms) */
  negativeTtlMs?: number;
  /** Most unknown ids / domains remembered. @default 50_000 */
  negativeMax?: number;
}

/** A `TenantDirectory` with an LRU+TTL cache in front of it. */
export interface CachedDirectory extends TenantDirectory {
  /**
   * The cached record of a (valid) tenant id, without waiting; `undefined` when it is not cached (then call
   * `get`). Counted as a hit.
   */
  peek(tenantId: TenantId): Tenant | undefined;
  /** Drops one tenant (and every domain mapped to it) from the cache. */
  invalidate(tenantId: TenantId): void;
  /** Drops everything. */
  clear(): void;
  /** Starts listening to the event bus (called by the pipeline). */
  start(): Promise<void>;
  /** Stops listening. */
  close(): Promise<void>;
  /** Hits and misses so far (for metrics and tests). */
  stats(): { hits: number; misses: number; negativeHits: number; size: number };
}

const MISSING = Symbol('missing');

/**
 * A deeply frozen copy of a record, made by `createTenantContext` so that the contexts later built from it
 * share it instead of copying it again.
 */
function frozenRecord(tenant: Tenant): Tenant {
  return createTenantContext({ tenant }).tenant as Tenant;
}
type Entry = Tenant | typeof MISSING;

/**
 * Puts an LRU+TTL cache (lru-cache) in front of a directory: found tenants for `ttlMs`, unknown ids
 * and domains for `negativeTtlMs`; concurrent lookups of one id share one call. Tenant events
 * (`tenant.changed`, `.deleted`, `.blocked`, `.unblocked`) drop the entry on every instance.
 * Only ids that pass the grammar are ever looked up. A found record is deep-copied and frozen once when
 * it is cached: every `get` of it returns that one read-only object.
 */
export function createCachedDirectory(options: CachedDirectoryOptions): CachedDirectory {
  const { directory } = options;
  const ttl = options.ttlMs ?? 60_000;
  const negativeTtl = options.negativeTtlMs ?? 5_000;
  const tenants = new LRUCache<string, Tenant>({ max: options.max ?? 10_000, ttl });
  const negative = new LRUCache<string, true>({ max: options.negativeMax ?? 50_000, ttl: negativeTtl });
  const domains = new LRUCache<string, { tenantId: TenantId | undefined }>({
    max: options.max ?? 10_000,
    ttl,
  });
  const inflight = new Map<string, Promise<Entry>>();
  let generation = 0;
  let hits = 0;
  let misses = 0;
  let negativeHits = 0;
  let unsubscribe: Unsubscribe | undefined;

  function invalidate(tenantId: TenantId): void {
    generation++;
    tenants.delete(tenantId);
    negative.delete(tenantId);
    inflight.delete(tenantId);
    for (const [domain, entry] of domains.entries()) {
      if (entry.tenantId === tenantId) domains.delete(domain);
    }
  }

  async function load(tenantId: TenantId): Promise<Entry> {
    const startedAt = generation;
    const loaded = await directory.get(tenantId);
    // Frozen once here and shared by every request of the tenant (never copied per request).
    const found = loaded === undefined ? undefined : frozenRecord(loaded);
    // An invalidation that arrived while loading makes this answer stale: do not cache it.
    if (startedAt === generation) {
      if (found === undefined) negative.set(tenantId, true);
      else tenants.set(tenantId, found);
    }
    return found ?? MISSING;
  }

  return {
    peek(tenantId) {
      const cached = tenants.get(tenantId);
      if (cached !== undefined) hits++;
      return cached;
    },
    async get(tenantId) {
      if (!isTenantId(tenantId)) {
        throw new MtPaasError('INVALID_TENANT_ID', 'Refusing to look up an invalid tenant id.');
      }
      const cached = tenants.get(tenantId);
      if (cached !== undefined) {
        hits++;
        return cached;
      }
      if (negative.get(tenantId) === true) {
        negativeHits++;
        return undefined;
      }
      misses++;
      let pending = inflight.get(tenantId);
      if (pending === undefined) {
        const loading: Promise<Entry> = load(tenantId).finally(() => {
          // An invalidation may have started a newer load meanwhile: leave that one in place.
          if (inflight.get(tenantId) === loading) inflight.delete(tenantId);
        });
        pending = loading;
        inflight.set(tenantId, loading);
      }
      const entry = await pending;
      return entry === MISSING ? undefined : entry;
    },
    async resolveDomain(domain) {
      const key = domain.toLowerCase();
      const cached = domains.get(key);
      if (cached !== undefined) {
        hits++;
        return cached.tenantId;
      }
      misses++;
      const tenantId = await directory.resolveDomain(key);
      domains.set(key, { tenantId }, tenantId === undefined ? { ttl: negativeTtl } : undefined);
      return tenantId;
    },
    list(listOptions) {
      return directory.list(listOptions);
    },
    invalidate,
    clear() {
      generation++;
      tenants.clear();
      negative.clear();
      domains.clear();
      inflight.clear();
    },
    async start() {
      if (options.events === undefined || unsubscribe !== undefined) return;
      unsubscribe = await options.events.subscribe((event) => {
        invalidate(event.tenantId);
      });
    },
    async close() {
      await unsubscribe?.();
      unsubscribe = undefined;
    },
    stats() {
      return { hits, misses, negativeHits, size: tenants.size };
    },
  };
}
