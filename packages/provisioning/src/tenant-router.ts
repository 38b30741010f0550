import {
  isMtPaasError,
  MtPaasError,
  parseTenantId,
  requireTenant,
  type Tenant,
  type TenantEventBus,
  type TenantId,
  type Unsubscribe,
} from '@mt-paas/context';
import type { Catalog, TenantDb, TenantTransaction } from '@mt-paas/db';
import { sql } from 'drizzle-orm';
import type { StorageMode } from './provisioner.js';
import { WRITE_FREEZE_KEY } from './tenant-transfer.js';

/** Options of {@link createTenantRouter}. */
export interface TenantRouterOptions {
  catalog: Catalog;
  /** The tenant dbs of the modes in use (`docker` tenants use `database`). */
  tenantDbs: Partial<Record<StorageMode, TenantDb>>;
  /** How long a looked-up placement is trusted (ms). Keep it below the move's `settleMs`. @default 1000 */
  cacheTtlMs?: number;
  /** Drop cached placements as soon as a transition is published. */
  events?: TenantEventBus;
}

/** Runs units of work on the storage of each tenant's current placement. */
export interface TenantRouter {
  /** Runs `fn` for the current tenant (`requireTenant()`). */
  run<T>(fn: (tx: TenantTransaction) => T | Promise<T>): Promise<T>;
  /** A runner for an explicit tenant. */
  forTenant(tenantId: string): { run<T>(fn: (tx: TenantTransaction) => T | Promise<T>): Promise<T> };
  /** Forgets a cached placement. */
  invalidate(tenantId?: string): void;
  close(): Promise<void>;
}

function hasCode(error: unknown, code: string, depth = 0): boolean {
  if (typeof error !== 'object' || error === null || depth > 5) return false;
  if ((error as { code?: unknown }).code === code) return true;
  return hasCode((error as { cause?: unknown }).cause, code, depth + 1);
}

/**
 * Routes each unit of work to the tenant db of the tenant's placement mode, so a tenant moved between
 * modes (`moveTenant`) is followed without a restart. While a move pauses the tenant's writes, its units
 * run `READ ONLY` (the tenant dbs of `@mt-paas/db` do so by themselves too; the router's own placement
 * cache may see the pause first): reads work, and a write is refused with `SERVICE_UNAVAILABLE` (503)
 * carrying `retryAfterSeconds` and a `retry-after` header.
 */
export function createTenantRouter(options: TenantRouterOptions): TenantRouter {
  const ttl = options.cacheTtlMs ?? 1000;
  const cache = new Map<string, { tenant: Tenant; expires: number }>();
  let unsubscribe: Unsubscribe | undefined;
  const subscribed = options.events
    ?.subscribe((event) => {
      cache.delete(event.tenantId);
    })
    .then((stop) => {
      unsubscribe = stop;
    });

  const lookup = async (tenantId: TenantId): Promise<Tenant> => {
    const cached = cache.get(tenantId);
    if (cached !== undefined && cached.expires > Date.now()) return cached.tenant;
    const tenant = await options.catalog.directory.get(tenantId);
    if (tenant === undefined) {
      throw new MtPaasError('TENANT_NOT_FOUND', `Tenant "${tenantId}" is not in the catalog; check the id.`);
    }
    cache.set(tenantId, { tenant, expires: Date.now() + ttl });
    return tenant;
  };

  const runFor = async <T>(tenantId: TenantId, fn: (tx: TenantTransaction) => T | Promise<T>): Promise<T> => {
    const tenant = await lookup(tenantId);
    const mode: StorageMode = tenant.placement.mode === 'docker' ? 'database' : tenant.placement.mode;
    const tenantDb = options.tenantDbs[mode];
    if (tenantDb === undefined) {
      throw new MtPaasError(
        'CONFIG_INVALID',
        `Tenant "${tenantId}" is in ${mode} mode, which this router has no tenant db for.`,
      );
    }
    const freeze = tenant.metadata?.[WRITE_FREEZE_KEY] as
      | { retryAfterSeconds?: number; reason?: string }
      | undefined;
    if (freeze === undefined) return tenantDb.forTenant(tenantId).run(fn);
    try {
      return await tenantDb.forTenant(tenantId).run(async (tx) => {
        await tx.execute(sql`SET TRANSACTION READ ONLY`);
        return fn(tx);
      });
    } catch (error) {
      // the tenant db saw the pause too and refused the write itself
      if (isMtPaasError(error, 'SERVICE_UNAVAILABLE')) throw error;
      if (!hasCode(error, '25006')) throw error; // read_only_sql_transaction
      const retryAfterSeconds = freeze.retryAfterSeconds ?? 5;
      throw new MtPaasError(
        'SERVICE_UNAVAILABLE',
        `Tenant "${tenantId}" is being moved to other storage: writes are paused for a few seconds, reads still work. Retry after ${retryAfterSeconds} s.`,
        {
          retryAfterSeconds,
          headers: { 'retry-after': String(retryAfterSeconds) },
          details: { tenantId, reason: freeze.reason ?? 'move' },
          cause: error,
        },
      );
    }
  };

  return {
    async run(fn) {
      return runFor(requireTenant().tenantId, fn);
    },
    forTenant(rawTenantId) {
      const tenantId = parseTenantId(rawTenantId);
      return { run: (fn) => runFor(tenantId, fn) };
    },
    invalidate(tenantId) {
      if (tenantId === undefined) cache.clear();
      else cache.delete(tenantId);
    },
    async close() {
      await subscribed;
      await unsubscribe?.();
    },
  };
}
