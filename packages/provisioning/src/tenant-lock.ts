import { setTimeout as sleep } from 'node:timers/promises';
import { MtPaasError } from '@mt-paas/context';
import type { Catalog } from '@mt-paas/db';
import pg from 'pg';

/** Serialises provisioning of one tenant across processes and instances. */
export interface TenantLock {
  /** Runs `fn` while holding the tenant's lock; waits (up to the timeout) for another holder. */
  withLock<T>(tenantId: string, fn: () => Promise<T>): Promise<T>;
}

/** The lock class of provisioning; other users of {@link createTenantLock} name their own. */
const PROVISIONING_LOCK = 'mt_paas.provisioning';

/**
 * A Postgres session advisory lock per tenant, held on a dedicated catalog connection for the whole
 * operation (onboarding runs `CREATE DATABASE`, which cannot run inside a transaction, so
 * `pg_advisory_xact_lock` cannot span it). A process that dies drops its connection and Postgres
 * releases the lock with it: a killed onboarding never leaves the tenant locked. The lock is polled
 * with `pg_try_advisory_lock` (no session setting is changed on the pooled connection).
 * On the embedded database (one process) an in-process queue does the same.
 */
export function createTenantLock(
  catalog: Catalog,
  options: {
    timeoutMs?: number;
    /** The lock class: locks of different names never wait for each other. @default 'mt_paas.provisioning' */
    name?: string;
  } = {},
): TenantLock {
  const timeoutMs = options.timeoutMs ?? 120_000;
  const lockName = options.name ?? PROVISIONING_LOCK;
  const local = new Map<string, Promise<unknown>>();
  const pool = catalog.driver.pool;
  return {
    async withLock(tenantId, fn) {
      if (pool === undefined) {
        const previous = local.get(tenantId) ?? Promise.resolve();
        const run = previous.catch(() => {}).then(fn);
        local.set(tenantId, run);
        try {
          return await run;
        } finally {
          if (local.get(tenantId) === run) local.delete(tenantId);
        }
      }
      // A connection of its own, outside the catalog pool: waiters must not starve the holder of
      // the pool connections it needs to finish.
      const client = new pg.Client(pool.options as pg.ClientConfig);
      client.on('error', () => {});
      await client.connect();
      try {
        const deadline = Date.now() + timeoutMs;
        let delay = 20;
        for (;;) {
          const { rows } = await client.query<{ locked: boolean }>(
            'SELECT pg_try_advisory_lock(hashtext($2), hashtext($1)) AS locked',
            [tenantId, lockName],
          );
          if (rows[0]?.locked) break;
          if (Date.now() >= deadline) {
            throw new MtPaasError(
              'CONFLICT',
              lockName === PROVISIONING_LOCK
                ? `Tenant "${tenantId}" is being provisioned by another process; retry when it has finished.`
                : `Tenant "${tenantId}" is locked by another process (${lockName}); retry when it has finished.`,
              { details: { tenantId, lock: lockName }, retryAfterSeconds: 5 },
            );
          }
          await sleep(delay);
          delay = Math.min(delay * 2, 250);
        }
        return await fn();
      } finally {
        // Closing the session releases its advisory locks.
        await client.end().catch(() => {});
      }
    },
  };
}
