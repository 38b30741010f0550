import { MtPaasError } from '@mt-paas/context';
import { LRUCache } from 'lru-cache';
import pg from 'pg';
import { trackPool } from './session-reset.js';
import { mapStorageError } from './storage-errors.js';

/** Options of {@link createPoolGroup}. */
export interface PoolGroupOptions {
  /** Total connections across every tenant database; never exceeded. @default 50 */
  maxConnections?: number;
  /** Connections per tenant database. @default 2 */
  connectionsPerTenant?: number;
  /** Pools kept at most (least recently used retired first; a busy pool drains before it closes). @default max(maxConnections, 100) */
  maxPools?: number;
  /** A pool (and an idle connection) unused this long is closed. @default 30000 */
  idleTimeoutMs?: number;
  /** How long `connect()` waits for a free slot before failing with `TENANT_STORAGE_UNAVAILABLE`. @default 30000 */
  acquireTimeoutMs?: number;
  /** Extra node-postgres pool options (e.g. `ssl`, `connectionTimeoutMillis`). */
  poolOptions?: Omit<pg.PoolConfig, 'connectionString' | 'max' | 'Client'>;
}

/** An LRU of per-database pools under one global connection cap (database mode). */
export interface PoolGroup {
  /** A client of the pool for `key` (opened on `url` the first time). */
  connect(key: string, url: string): Promise<pg.PoolClient>;
  /** Closes and forgets the pool of `key` (e.g. before dropping its database). */
  evict(key: string): Promise<void>;
  /** Connections currently open (connecting, idle or in use), across all pools. */
  readonly openConnections: number;
  /** Pools currently kept. */
  readonly poolCount: number;
  /** Highest `openConnections` seen. */
  readonly peakConnections: number;
  /** Closes every pool. */
  close(): Promise<void>;
}

/** Creates a {@link PoolGroup}. */
export function createPoolGroup(options: PoolGroupOptions = {}): PoolGroup {
  const cap = options.maxConnections ?? 50;
  const perTenant = Math.min(options.connectionsPerTenant ?? 2, cap);
  const idleTimeoutMs = options.idleTimeoutMs ?? 30_000;
  const acquireTimeoutMs = options.acquireTimeoutMs ?? 30_000;
  if (!Number.isInteger(cap) || cap < 1 || !Number.isInteger(perTenant) || perTenant < 1) {
    throw new MtPaasError(
      'CONFIG_INVALID',
      'maxConnections and connectionsPerTenant must be positive integers.',
    );
  }
  let open = 0;
  let peak = 0;
  let closed = false;
  let waiters: Array<() => void> = [];
  const closing = new Set<Promise<void>>();

  const notify = () => {
    const current = waiters;
    waiters = [];
    for (const wake of current) wake();
  };

  class CountedClient extends pg.Client {
    constructor(config?: string | pg.ClientConfig) {
      super(config);
      open += 1;
      peak = Math.max(peak, open);
      let counted = true;
      this.once('end', () => {
        if (!counted) return;
        counted = false;
        open -= 1;
        notify();
      });
    }
  }

  const endPool = (pool: pg.Pool) => {
    const ending = pool
      .end()
      .catch(() => {})
      .finally(() => {
        closing.delete(ending);
        notify();
      });
    closing.add(ending);
  };

  // A pool leaving the LRU (least recently used, or idle past its TTL) is ended at once when all its
  // connections are idle; a busy one drains first (its in-flight units finish, then it is ended).
  const draining = new Set<pg.Pool>();
  const busy = (pool: pg.Pool) => pool.totalCount > pool.idleCount || pool.waitingCount > 0;
  const retire = (pool: pg.Pool) => {
    if (busy(pool)) draining.add(pool);
    else endPool(pool);
  };
  const checkDraining = () => {
    for (const pool of draining) {
      if (!busy(pool)) {
        draining.delete(pool);
        endPool(pool);
      }
    }
  };

  const pools = new LRUCache<string, pg.Pool>({
    max: options.maxPools ?? Math.max(cap, 100),
    ttl: idleTimeoutMs,
    ttlAutopurge: true,
    updateAgeOnGet: true,
    dispose: (pool) => retire(pool),
  });

  const createPool = (url: string) => {
    const pool = new pg.Pool({
      ...options.poolOptions,
      connectionString: url,
      max: perTenant,
      idleTimeoutMillis: idleTimeoutMs,
      Client: CountedClient as unknown as typeof pg.Client,
    });
    pool.on('error', () => {});
    trackPool(pool);
    pool.on('release', () => {
      // 'release' fires before the client is back in the idle list: look once it is.
      setImmediate(() => {
        checkDraining();
        notify();
      });
    });
    return pool;
  };

  /** Closes the least recently used pool whose connections are all idle. */
  const evictOneIdlePool = (except: string): boolean => {
    for (const key of pools.rkeys()) {
      if (key === except) continue;
      const pool = pools.peek(key);
      if (
        pool !== undefined &&
        pool.totalCount > 0 &&
        pool.idleCount === pool.totalCount &&
        pool.waitingCount === 0
      ) {
        pools.delete(key);
        return true;
      }
    }
    return false;
  };

  const waitForChange = (deadline: number) =>
    new Promise<void>((resolve, reject) => {
      const remaining = deadline - Date.now();
      if (remaining <= 0) {
        reject(
          new MtPaasError(
            'TENANT_STORAGE_UNAVAILABLE',
            `No database connection became free within ${acquireTimeoutMs} ms (cap ${cap}); raise database.maxConnections or reduce load.`,
            { retryAfterSeconds: 1, details: { maxConnections: cap } },
          ),
        );
        return;
      }
      const timer = setTimeout(() => {
        waiters = waiters.filter((wake) => wake !== onChange);
        resolve();
      }, remaining);
      const onChange = () => {
        clearTimeout(timer);
        resolve();
      };
      waiters.push(onChange);
    });

  return {
    async connect(key, url) {
      const deadline = Date.now() + acquireTimeoutMs;
      for (;;) {
        if (closed)
          throw new MtPaasError(
            'SERVICE_UNAVAILABLE',
            'The database pools of this tenant db are closed (tenantDb.close() was called): create a new tenant db with createTenantDb().',
          );
        let pool = pools.get(key);
        // An idle client or a queue slot in a full pool opens nothing; a new connection only under the cap.
        // A pool is only created when it can connect at once, so waiters never churn empty pools.
        if (!(pool !== undefined && (pool.idleCount > 0 || pool.totalCount >= perTenant)) && open < cap) {
          if (pool === undefined) {
            pool = createPool(url);
            pools.set(key, pool);
          }
        }
        if (pool !== undefined && (pool.idleCount > 0 || pool.totalCount >= perTenant || open < cap)) {
          try {
            return await pool.connect();
          } catch (error) {
            throw mapStorageError(error, `connect to tenant database "${key}"`);
          }
        }
        evictOneIdlePool(key);
        await waitForChange(deadline);
      }
    },
    async evict(key) {
      const pool = pools.peek(key);
      if (pool === undefined) return;
      pools.delete(key);
      await Promise.all([...closing]);
    },
    get openConnections() {
      return open;
    },
    get poolCount() {
      return pools.size;
    },
    get peakConnections() {
      return peak;
    },
    async close() {
      closed = true;
      pools.clear();
      for (const pool of draining) endPool(pool);
      draining.clear();
      await Promise.all([...closing]);
      notify();
    },
  };
}
