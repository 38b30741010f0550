import { MtPaasError, type Tenant, type TenantId } from '@mt-paas/context';
import { and, eq } from 'drizzle-orm';
import { ensureLoginRole, hardenSchema } from './app-role.js';
import type { Catalog } from './catalog.js';
import { createPgDriver, type SqlDriver, type SqlSession } from './driver.js';
import { applyMigrations, type MigrationFile, readMigrationsFolder } from './migrator.js';
import { quoteIdentifier, quoteLiteral } from './sql-text.js';
import { mapStorageError } from './storage-errors.js';

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

/** What the migration functions need from a tenant db (internal). */
export interface TenantStorageContext {
  mode: 'row' | 'schema' | 'database';
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

function loadMigrations(context: TenantStorageContext): MigrationFile[] {
  if (context.migrationsFolder === undefined) {
    throw new MtPaasError(
      'CONFIG_INVALID',
      'No migrationsFolder configured: pass the drizzle-kit "out" folder of your tenant tables to createTenantDb().',
    );
  }
  return readMigrationsFolder(context.migrationsFolder);
}

/** drizzle-kit qualifies public tables as "public"."x"; the tenant's search_path decides instead. */
const unqualifyPublic = (statement: string) => statement.replaceAll('"public".', '');

async function recordApplied(
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

async function migrateShared(context: TenantStorageContext, migrations: MigrationFile[]): Promise<string[]> {
  const applied = await context.admin.transaction((session) =>
    applyMigrations(session, {
      migrations,
      ledgerSchema: context.appSchema,
      searchPath: context.appSchema,
      rewrite: context.appSchema === 'public' ? undefined : unqualifyPublic,
      lockKey: `row:${context.appSchema}`,
      after: (inner) => hardenSchema(inner, context.appSchema, context.appRole),
    }),
  );
  await recordApplied(context, SHARED_TARGET, migrations);
  return applied;
}

async function migrateSchema(context: TenantStorageContext, tenant: Tenant, migrations: MigrationFile[]) {
  const schema = context.schemaFor(tenant);
  const applied = await context.admin.transaction(async (session) => {
    await session.exec(`CREATE SCHEMA IF NOT EXISTS ${quoteIdentifier(schema)}`);
    return applyMigrations(session, {
      migrations,
      ledgerSchema: schema,
      searchPath: schema,
      rewrite: unqualifyPublic,
      lockKey: `schema:${schema}`,
      after: (inner) => hardenSchema(inner, schema, context.appRole, tenant.id),
    });
  });
  await recordApplied(context, tenant.id, migrations);
  return applied;
}

/** Runs `fn` with the admin driver of the tenant's server (its placement server, else the main admin). */
async function withServerAdmin<T>(
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

async function ensureDatabase(context: TenantStorageContext, admin: SqlDriver, name: string): Promise<void> {
  const { rows } = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
  if (rows.length === 0) {
    try {
      await admin.exec(`CREATE DATABASE ${quoteIdentifier(name)}`);
    } catch (error) {
      // Another instance created it meanwhile (42P04 duplicate_database, or 23505 on pg_database).
      const code = (error as { code?: string }).code;
      if (code !== '42P04' && code !== '23505') throw error;
    }
  }
  if (context.appRole !== undefined && admin === context.admin) {
    await admin.exec(
      `GRANT CONNECT ON DATABASE ${quoteIdentifier(name)} TO ${quoteIdentifier(context.appRole)}`,
    );
  }
}

async function migrateDatabase(context: TenantStorageContext, tenant: Tenant, migrations: MigrationFile[]) {
  const placementApp = context.placementAppRoleFor?.(tenant);
  await withServerAdmin(context, tenant, (admin) =>
    ensureDatabase(context, admin, context.databaseNameFor(tenant)),
  );
  const driver = createPgDriver({ connectionString: context.adminDatabaseUrlFor(tenant), max: 1 });
  try {
    // On the tenant's own server the app connects as the placement app role: created there (unless the
    // server's init script did) before the migrations grant it the tenant tables.
    if (placementApp !== undefined) await ensureLoginRole(driver, placementApp.role, placementApp.password);
    const applied = await driver.transaction((session: SqlSession) =>
      applyMigrations(session, {
        migrations,
        ledgerSchema: 'public',
        searchPath: 'public',
        lockKey: `database:${tenant.id}`,
        // On the tenant's own server (placement URL) the grants go to the placement app role; the main
        // app role does not exist there.
        after: (inner) =>
          hardenSchema(
            inner,
            'public',
            placementApp === undefined ? context.appRole : placementApp.role,
            tenant.id,
          ),
      }),
    );
    await recordApplied(context, tenant.id, migrations);
    return applied;
  } finally {
    await driver.close();
  }
}

async function migrateOne(context: TenantStorageContext, tenant: Tenant, migrations: MigrationFile[]) {
  return context.mode === 'schema'
    ? migrateSchema(context, tenant, migrations)
    : migrateDatabase(context, tenant, migrations);
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

/** `migrateTenants` of a tenant db. */
export async function migrateTenantsImpl(
  context: TenantStorageContext,
  options: MigrateTenantsOptions,
): Promise<MigrateTenantsResult> {
  const migrations = loadMigrations(context);
  const result: MigrateTenantsResult = { total: 0, succeeded: [], failed: [] };
  if (context.mode === 'row') {
    result.total = 1;
    options.onProgress?.({ target: SHARED_TARGET, state: 'started', finished: 0, total: 1 });
    try {
      const applied = await migrateShared(context, migrations);
      result.succeeded.push({ target: SHARED_TARGET, applied });
      options.onProgress?.({ target: SHARED_TARGET, state: 'done', applied, finished: 1, total: 1 });
    } catch (error) {
      const mapped = mapStorageError(error, 'tenant migrations');
      result.failed.push({ target: SHARED_TARGET, error: mapped });
      options.onProgress?.({ target: SHARED_TARGET, state: 'failed', error: mapped, finished: 1, total: 1 });
    }
    return result;
  }
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
        const applied = await migrateOne(context, tenant, migrations);
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

/** `createTenantStorage` of a tenant db: creates the schema / database and applies the migrations. */
export async function createTenantStorageImpl(
  context: TenantStorageContext,
  tenantId: TenantId,
): Promise<string[]> {
  const tenant = await context.resolveTenant(tenantId);
  const migrations = loadMigrations(context);
  try {
    if (context.mode === 'row') return await migrateShared(context, migrations);
    return await migrateOne(context, tenant, migrations);
  } catch (error) {
    throw mapStorageError(error, `storage of tenant "${tenantId}"`);
  } finally {
    context.forgetTenant(tenantId);
  }
}

/** `dropTenantStorage` of a tenant db. */
export async function dropTenantStorageImpl(
  context: TenantStorageContext,
  tenantId: TenantId,
): Promise<void> {
  const tenant = await context.resolveTenant(tenantId);
  try {
    if (context.mode === 'schema') {
      await context.admin.exec(`DROP SCHEMA IF EXISTS ${quoteIdentifier(context.schemaFor(tenant))} CASCADE`);
    } else if (context.mode === 'database') {
      await context.evictDatabasePool(tenantId);
      await withServerAdmin(context, tenant, (admin) =>
        admin.exec(
          `DROP DATABASE IF EXISTS ${quoteIdentifier(context.databaseNameFor(tenant))} WITH (FORCE)`,
        ),
      );
    } else {
      await context.admin.transaction(async (session) => {
        const { rows } = await session.query<{ name: string }>(
          `SELECT format('%I.%I', c.relnamespace::regnamespace::text, c.relname) AS name
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped
            WHERE n.nspname = $1 AND c.relkind IN ('r', 'p')`,
          [context.appSchema],
        );
        await session.exec(`SELECT set_config('app.tenant_id', ${quoteLiteral(tenantId)}, true)`);
        // Children before parents: a DELETE blocked by a foreign key (23503) is retried in a later pass.
        let pending = rows.map((row) => row.name);
        while (pending.length > 0) {
          const blocked: string[] = [];
          let lastError: unknown;
          for (const name of pending) {
            await session.exec('SAVEPOINT mt_paas_drop');
            try {
              await session.query(`DELETE FROM ${name} WHERE tenant_id = $1`, [tenantId]);
              await session.exec('RELEASE SAVEPOINT mt_paas_drop');
            } catch (error) {
              await session.exec('ROLLBACK TO SAVEPOINT mt_paas_drop');
              if ((error as { code?: string }).code !== '23503') throw error;
              blocked.push(name);
              lastError = error;
            }
          }
          if (blocked.length === pending.length) throw lastError;
          pending = blocked;
        }
      });
    }
    const table = context.catalog.tables.tenantMigrations;
    await context.catalog.driver.db.delete(table).where(and(eq(table.tenantId, tenantId)));
  } catch (error) {
    throw mapStorageError(error, `dropping storage of tenant "${tenantId}"`);
  } finally {
    context.forgetTenant(tenantId);
  }
}
