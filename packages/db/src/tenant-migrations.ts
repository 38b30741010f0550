import { MtPaasError, type Tenant, type TenantId } from '@mt-paas/context';
import { eq } from 'drizzle-orm';
import type pg from 'pg';
import type { Catalog } from './catalog.js';
import type { PoolGroup } from './database-pools.js';
import { createPgDriver, type SqlDriver } from './driver.js';
import { type MigrationFile, readMigrationsFolder } from './migrator.js';
import { mapStorageError } from './storage-errors.js';
import type { StorageTarget } from './tenant-storage-session.js';
import type { Scope } from './unit-of-work.js';
import { movingError, writeFreezeOf } from './write-freeze.js';

/** Target name used in `tenant_migrations` for the shared tables of row mode. */
export const SHARED_TARGET = '*';

/** Options of `migrateTenants`. */
export interface MigrateTenantsOptions {
  /** Targets (schemas / databases) migrated at the same time. @default 4 */
  concurrency?: number;
  /** Called when a target starts, finishes or fails. */
  onProgress?: (event: MigrationProgress) => void;
  /** Only these tenants (schema / database mode). */
  only?: readonly string[];
}

/** One progress event of `migrateTenants`. */
export interface MigrationProgress {
  /** The tenant id, or `*` for the shared tables of row mode. */
  target: string;
  state: 'started' | 'done' | 'failed';
  /** Tags applied by this run (on `done`). */
  applied?: string[];
  error?: unknown;
  /** Targets finished so far (done or failed) and in total. */
  finished: number;
  total: number;
}

/** Outcome of `migrateTenants`. One target's failure never stops the others. */
export interface MigrateTenantsResult {
  total: number;
  succeeded: Array<{ target: string; applied: string[] }>;
  failed: Array<{ target: string; error: unknown }>;
}

/** What the modes' storage functions need from a tenant db (internal). */
export interface TenantStorageContext {
  catalog: Catalog;
  admin: SqlDriver;
  appRole: string | undefined;
  appSchema: string;
  migrationsFolder: string | undefined;
  resolveTenant(tenantId: TenantId): Promise<Tenant>;
  schemaFor(tenant: Pick<Tenant, 'id' | 'placement'>): string;
  databaseNameFor(tenant: Pick<Tenant, 'id' | 'placement'>): string;
  adminDatabaseUrlFor(tenant: Pick<Tenant, 'id' | 'placement'>): string;
  /**
   * When the tenant is placed on another server (a placement URL: its own cluster or container), that
   * server's maintenance database URL: its database is created and dropped there.
   */
  serverAdminUrlFor?(tenant: Pick<Tenant, 'id' | 'placement'>): string | undefined;
  /** On a placement server: the role units of work connect as there and its (derived) password. */
  placementAppRoleFor?(
    tenant: Pick<Tenant, 'id' | 'placement'>,
  ): { role: string; password: string | undefined } | undefined;
  evictDatabasePool(tenantId: TenantId): Promise<void>;
  forgetTenant(tenantId: TenantId): void;
}

export function loadMigrations(context: TenantStorageContext): MigrationFile[] {
  if (context.migrationsFolder === undefined) {
    throw new MtPaasError(
      'CONFIG_INVALID',
      'No migrationsFolder configured: pass the drizzle-kit "out" folder of your tenant tables to createTenantDb().',
    );
  }
  return readMigrationsFolder(context.migrationsFolder);
}

/** drizzle-kit qualifies public tables as "public"."x"; the tenant's search_path decides instead. */
export const unqualifyPublic = (statement: string) => statement.replaceAll('"public".', '');

export async function recordApplied(
  context: TenantStorageContext,
  target: string,
  migrations: readonly MigrationFile[],
) {
  if (migrations.length === 0) return;
  const table = context.catalog.tables.tenantMigrations;
  await context.catalog.driver.db
    .insert(table)
    .values(
      migrations.map((migration) => ({ tenantId: target, version: migration.tag, hash: migration.hash })),
    )
    .onConflictDoNothing();
}

/**
 * One isolation mode inside a tenant db (internal): the tenant db holds exactly one and never branches
 * on the mode. `row-mode.ts`, `schema-mode.ts` and `database-mode.ts` are the three.
 */
export interface ModeDriver {
  readonly mode: 'row' | 'schema' | 'database';
  /** The connection a unit of work of `tenant` runs on and the scope it sets (no client: the embedded PGlite). */
  unit(tenant: Tenant): Promise<{ scope: Scope; client?: Promise<pg.PoolClient> }>;
  /** Where the tenant's tables are, as the app role (export / import sessions). */
  connect(tenant: Pick<Tenant, 'id' | 'placement'>): Promise<StorageTarget>;
  /** Creates the tenant's storage and applies `migrations`; returns the tags applied. */
  createStorage(tenant: Tenant, migrations: MigrationFile[]): Promise<string[]>;
  /** Drops the tenant's storage (its rows in row mode). */
  dropStorage(tenant: Tenant): Promise<void>;
  /** Applies `migrations` to every target of the mode. */
  migrate(migrations: MigrationFile[], options: MigrateTenantsOptions): Promise<MigrateTenantsResult>;
}

/** Runs `fn` with the admin driver of the tenant's server (its placement server, else the main admin). */
export async function withServerAdmin<T>(
  context: TenantStorageContext,
  tenant: Pick<Tenant, 'id' | 'placement'>,
  fn: (admin: SqlDriver) => Promise<T>,
): Promise<T> {
  const url = context.serverAdminUrlFor?.(tenant);
  if (url === undefined) return fn(context.admin);
  const driver = createPgDriver({ connectionString: url, max: 1 });
  try {
    return await fn(driver);
  } finally {
    await driver.close();
  }
}

async function listTenants(
  context: TenantStorageContext,
  only: readonly string[] | undefined,
): Promise<Tenant[]> {
  if (only !== undefined) {
    const tenants: Tenant[] = [];
    for (const id of only) tenants.push(await context.resolveTenant(id as TenantId));
    return tenants;
  }
  const tenants: Tenant[] = [];
  let cursor: string | undefined;
  do {
    const page = await context.catalog.directory.list({
      status: ['provisioning', 'active', 'grace', 'suspended', 'blocked', 'deleted'],
      limit: 500,
      ...(cursor === undefined ? {} : { cursor }),
    });
    tenants.push(...page.tenants);
    cursor = page.nextCursor;
  } while (cursor !== undefined);
  return tenants;
}

/** The shared tables of row mode as one migration target. */
export async function migrateSingleTarget(
  options: MigrateTenantsOptions,
  migrate: () => Promise<string[]>,
): Promise<MigrateTenantsResult> {
  const result: MigrateTenantsResult = { total: 1, succeeded: [], failed: [] };
  options.onProgress?.({ target: SHARED_TARGET, state: 'started', finished: 0, total: 1 });
  try {
    const applied = await migrate();
    result.succeeded.push({ target: SHARED_TARGET, applied });
    options.onProgress?.({ target: SHARED_TARGET, state: 'done', applied, finished: 1, total: 1 });
  } catch (error) {
    const mapped = mapStorageError(error, 'tenant migrations');
    result.failed.push({ target: SHARED_TARGET, error: mapped });
    options.onProgress?.({ target: SHARED_TARGET, state: 'failed', error: mapped, finished: 1, total: 1 });
  }
  return result;
}

/**
 * One migration target per tenant (schema and database modes), `concurrency` at a time. A tenant whose
 * placement is in a move window is not migrated: it fails with `SERVICE_UNAVAILABLE` (run again after the move).
 */
export async function migrateEachTenant(
  context: TenantStorageContext,
  options: MigrateTenantsOptions,
  migrateOne: (tenant: Tenant) => Promise<string[]>,
): Promise<MigrateTenantsResult> {
  const result: MigrateTenantsResult = { total: 0, succeeded: [], failed: [] };
  const tenants = await listTenants(context, options.only);
  result.total = tenants.length;
  const concurrency = Math.max(1, Math.floor(options.concurrency ?? 4));
  let next = 0;
  let finished = 0;
  const worker = async () => {
    for (;;) {
      const tenant = tenants[next];
      next += 1;
      if (tenant === undefined) return;
      options.onProgress?.({ target: tenant.id, state: 'started', finished, total: tenants.length });
      try {
        const freeze = writeFreezeOf(tenant);
        if (freeze !== undefined) throw movingError(tenant.id, freeze);
        const applied = await migrateOne(tenant);
        finished += 1;
        result.succeeded.push({ target: tenant.id, applied });
        options.onProgress?.({ target: tenant.id, state: 'done', applied, finished, total: tenants.length });
      } catch (error) {
        finished += 1;
        const mapped = mapStorageError(error, `migrations of tenant "${tenant.id}"`);
        result.failed.push({ target: tenant.id, error: mapped });
        options.onProgress?.({
          target: tenant.id,
          state: 'failed',
          error: mapped,
          finished,
          total: tenants.length,
        });
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, Math.max(tenants.length, 1)) }, worker));
  return result;
}

/** `createTenantStorage` of a tenant db (of the catalog's record, or of the tenant given): the mode creates the storage and applies the migrations. */
export async function createStorageWith(
  context: TenantStorageContext,
  driver: ModeDriver,
  tenantOrId: TenantId | Tenant,
): Promise<string[]> {
  const tenant = typeof tenantOrId === 'string' ? await context.resolveTenant(tenantOrId) : tenantOrId;
  const tenantId = tenant.id;
  const migrations = loadMigrations(context);
  try {
    return await driver.createStorage(tenant, migrations);
  } catch (error) {
    throw mapStorageError(error, `storage of tenant "${tenantId}"`);
  } finally {
    context.forgetTenant(tenantId);
  }
}

/** `dropTenantStorage` of a tenant db: the mode drops the storage, then its migration records go. */
export async function dropStorageWith(
  context: TenantStorageContext,
  driver: ModeDriver,
  tenantOrId: TenantId | Tenant,
): Promise<void> {
  const tenant = typeof tenantOrId === 'string' ? await context.resolveTenant(tenantOrId) : tenantOrId;
  const tenantId = tenant.id;
  try {
    await driver.dropStorage(tenant);
    const table = context.catalog.tables.tenantMigrations;
    await context.catalog.driver.db.delete(table).where(eq(table.tenantId, tenantId));
  } catch (error) {
    throw mapStorageError(error, `dropping storage of tenant "${tenantId}"`);
  } finally {
    context.forgetTenant(tenantId);
  }
}

/** What a mode object gets from its tenant db (internal). */
export interface ModeContext extends TenantStorageContext {
  appRole: string;
  /** The app role URL (`connectionString`): export / import sessions in row and schema modes. */
  appUrl: string | undefined;
  /** Row and schema modes: the app pool (undefined on the embedded PGlite). */
  pool: pg.Pool | undefined;
  /** Database mode: the pools per tenant database. */
  pools: PoolGroup | undefined;
  /** The embedded PGlite: units `SET LOCAL ROLE` to the app role and check the session user. */
  embedded: { role: string; sessionUser: string | undefined } | undefined;
  /** A tenant database's URL as the app role (database mode). */
  appDatabaseUrlFor(tenant: Pick<Tenant, 'id' | 'placement'>): string;
}
