import {
  MtPaasError,
  parseTenantId,
  requireTenant,
  type Tenant,
  type TenantId,
  tryCurrentTenant,
} from '@mt-paas/context';
import { sql } from 'drizzle-orm';
import { LRUCache } from 'lru-cache';
import pg from 'pg';
import {
  DEFAULT_APP_ROLE,
  DEFAULT_PLACEMENT_APP_ROLE,
  ensureAppRole,
  placementAppPassword,
  placementAppUrl,
  refuseBypass,
  roleFlags,
} from './app-role.js';
import type { Catalog } from './catalog.js';
import { databaseMode } from './database-mode.js';
import { createPoolGroup, type PoolGroup, type PoolGroupOptions } from './database-pools.js';
import { createPgDriver, type PgliteInstance, type SqlDriver } from './driver.js';
import { defineIsolationMode, type IsolationModeStore } from './isolation-mode.js';
import { rowMode } from './row-mode.js';
import { schemaMode } from './schema-mode.js';
import { trackPool } from './session-reset.js';
import { assertIdentifier } from './sql-text.js';
import { mapStorageError } from './storage-errors.js';
import {
  createStorageWith,
  dropStorageWith,
  loadMigrations,
  type MigrateTenantsOptions,
  type MigrateTenantsResult,
  type ModeContext,
  type ModeDriver,
} from './tenant-migrations.js';
import { relationalSchemaOf, runOnClient, type TenantTransaction, type UnitStats } from './unit-of-work.js';
import { isReadOnlyRefusal, movingError, writeFreezeOf } from './write-freeze.js';

/** Where tenants' rows live. */
export type TenantDbMode = 'row' | 'schema' | 'database';

/** Options of database mode. */
export interface DatabaseModeOptions extends PoolGroupOptions {
  /**
   * URL of a tenant's database as the app role: `{database}` is replaced by the database name
   * (the placement location, else `<databasePrefix><tenantId>`), `{tenant}` by the tenant id.
   * A tenant placed by URL is reached through that URL instead, see `placementAppRole`.
   * @default `connectionString` with its database name replaced by `{database}`
   */
  urlTemplate?: string;
  /**
   * Tenants placed by URL (a `postgres://` placement location, e.g. docker mode's container database):
   * the location is the OWNER's URL on the tenant's own server — it creates, migrates and drops the
   * database. Units of work (and `databaseUrlOf`) connect as this role instead, with
   * the password `placementAppPassword(location, role)` derives from the owner's. `createTenantStorage`
   * creates the role there (`LOGIN NOSUPERUSER NOBYPASSRLS`) when it does not exist and grants it the
   * tenant tables; the first unit refuses it if it is SUPERUSER, BYPASSRLS or a member of such a role.
   * Must equal docker placement's `database.appUser`.
   * @default 'app'
   */
  placementAppRole?: string;
  /**
   * Secret the placement app role's password is derived from instead of the owner's password:
   * HMAC-SHA256 over the placement server (`host:port`) and the role, so every tenant placed on one
   * server gets the same app password whatever its owner credentials (see `placementAppPassword`).
   * Must equal docker placement's `database.placementSecret`. Without it, tenants that share a
   * placement server must share the owner's password: a tenant whose derivation differs from the one
   * the server's app role carries is refused (`CONFLICT`) instead of rotating the shared role's password.
   */
  placementSecret?: string;
  /** Same as `urlTemplate`, as the owner (creates databases, runs migrations). @default from `adminConnectionString` */
  adminUrlTemplate?: string;
  /** Prefix of tenant database names. @default 't_' */
  databasePrefix?: string;
}

/** Options of {@link createTenantDb}. */
export interface TenantDbOptions<TSchema extends Record<string, unknown> = Record<string, never>> {
  /** Isolation mode. */
  mode: TenantDbMode;
  /** Your drizzle schema module (`import * as schema from './schema'`), for relational queries (`tx.query.courses.findMany()`). */
  schema?: TSchema;
  /** The central catalog (tenant lookup, placement, migration state). */
  catalog: Catalog;
  /**
   * URL the app connects with — a NOSUPERUSER NOBYPASSRLS role that owns no tenant table.
   * Omitted with an embedded (PGlite) catalog: the catalog's PGlite is used, with `SET LOCAL ROLE appRole`.
   */
  connectionString?: string;
  /** Bring your own app pool (row/schema). Pipelining is used when it was created with `pipeline: true`. */
  pool?: pg.Pool;
  /**
   * URL of the owner role (runs migrations, creates schemas/databases).
   * @default the catalog's connection
   */
  adminConnectionString?: string;
  /** Size of the app pool (row/schema). @default 10 */
  maxConnections?: number;
  /**
   * The app role's name (grants after migrations; `SET LOCAL ROLE` on PGlite).
   * @default the user of `connectionString` (or of `pool`); 'mt_paas_app' on PGlite
   */
  appRole?: string;
  /** drizzle-kit output folder of the app's tenant tables (for `migrateTenants` / `createTenantStorage`). */
  migrationsFolder?: string;
  /** Row mode: schema of the shared tenant tables. @default 'public' */
  appSchema?: string;
  /** Schema mode: prefix of tenant schema names. @default 't_' */
  schemaPrefix?: string;
  /**
   * Schema mode: explicit schema names for existing databases (KELI-Tutor style: the schema is the bare
   * tenant id). A map or a function; `undefined` falls back to the placement location, then `<prefix><id>`.
   */
  schemaNames?: Readonly<Record<string, string>> | ((tenantId: TenantId) => string | undefined);
  /** Database mode options. */
  database?: DatabaseModeOptions;
  /** How long a tenant looked up in the catalog is trusted (ms). @default 5000 */
  tenantCacheTtlMs?: number;
  /**
   * Use protocol pipelining (node-postgres `pipeline: true`): the scoping query travels with the first
   * statement, and COMMIT with the last when the callback returns an unawaited drizzle query.
   * @default true
   */
  pipeline?: boolean;
}

/** A unit-of-work runner bound to one tenant. */
export interface TenantScope<TSchema extends Record<string, unknown> = Record<string, never>> {
  readonly tenantId: TenantId;
  /** Runs `fn` in one transaction scoped to this tenant. */
  run<T>(fn: (tx: TenantTransaction<TSchema>) => T | Promise<T>): Promise<T>;
}

/** Tenant-scoped database access in one isolation mode. */
export interface TenantDb<TSchema extends Record<string, unknown> = Record<string, never>> {
  readonly mode: TenantDbMode;
  readonly catalog: Catalog;
  /**
   * Runs `fn` in one transaction scoped to the current tenant (`requireTenant()` from `@mt-paas/context`).
   * While the tenant's placement is in a move window (`WRITE_FREEZE_KEY`) the transaction is READ ONLY:
   * reads work, a write fails with `SERVICE_UNAVAILABLE` (503) carrying `Retry-After`.
   */
  run<T>(fn: (tx: TenantTransaction<TSchema>) => T | Promise<T>): Promise<T>;
  /** A runner for an explicit tenant (jobs, consumers, admin tools). */
  forTenant(tenantId: string): TenantScope<TSchema>;
  /**
   * Runs `fn` in a transaction on the app connection with NO tenant set — for tests and checks only:
   * row-level security then shows no rows and refuses every write. The session is reset first (nothing a
   * previous user of the connection left applies: session-level `app.tenant_id`, role, temporary tables),
   * `app.tenant_id` is `''` for the transaction, which is always rolled back, and the session is reset
   * again. Row and schema modes only.
   */
  unscoped<T>(fn: (tx: TenantTransaction<TSchema>) => T | Promise<T>): Promise<T>;
  /** The schema of a tenant (schema mode). */
  schemaOf(tenantId: TenantId): Promise<string>;
  /** The database URL of a tenant as the app role (database mode). */
  databaseUrlOf(tenantId: TenantId): Promise<string>;
  /** Creates the tenant's storage (schema / database; nothing in row mode) and applies its migrations. */
  createTenantStorage(tenantId: string): Promise<string[]>;
  /** Drops the tenant's storage (schema / database; its rows in row mode). Irreversible. */
  dropTenantStorage(tenantId: string): Promise<void>;
  /** Applies the app's tenant migrations to every target of this mode. */
  migrateTenants(options?: MigrateTenantsOptions): Promise<MigrateTenantsResult>;
  /**
   * This tenant db's isolation mode as one object implementing the mode contract (scope, connect,
   * create / drop storage, migrate, export, import, checksums) — see `IsolationModeStore`.
   */
  readonly isolation: IsolationModeStore;
  /**
   * Forgets cached tenant records (one tenant, or all): the next unit reads its placement and write
   * freeze from the catalog. `moveTenant` calls it on the provisioner's tenant dbs.
   */
  forget(tenantId?: string): void;
  /** How long a tenant looked up in the catalog is trusted (ms; `tenantCacheTtlMs`). */
  readonly tenantCacheTtlMs: number;
  /** Statements sent by units of work so far (for the bench). */
  readonly stats: Readonly<UnitStats>;
  /** Database mode: the pool group (open connection count, pools). */
  readonly pools: PoolGroup | undefined;
  /** Closes what this instance opened (app pool, database pools, admin connection). */
  close(): Promise<void>;
}

/**
 * Creates tenant-scoped database access. It refuses to run (every mode) when the app role is a
 * superuser, has BYPASSRLS or is a member of such a role.
 *
 * @example
 * const tenantDb = await createTenantDb({ mode: 'row', catalog, connectionString: process.env.APP_DATABASE_URL });
 * const rows = await runWithTenant({ tenantId: 'univ_8' }, () => tenantDb.run((tx) => tx.select().from(courses)));
 */
export async function createTenantDb<TSchema extends Record<string, unknown> = Record<string, never>>(
  options: TenantDbOptions<TSchema>,
): Promise<TenantDb<TSchema>> {
  const { mode, catalog } = options;
  if (mode !== 'row' && mode !== 'schema' && mode !== 'database') {
    throw new MtPaasError(
      'CONFIG_INVALID',
      `Unknown isolation mode "${String(mode)}": use row, schema or database.`,
    );
  }
  const schemaPrefix = options.schemaPrefix ?? 't_';
  const appSchema = assertIdentifier(options.appSchema ?? 'public', 'app schema');
  const pipeline = options.pipeline ?? true;
  const embedded =
    options.connectionString === undefined && options.pool === undefined && catalog.driver.kind === 'pglite';
  if (embedded && mode === 'database') {
    throw new MtPaasError(
      'CONFIG_INVALID',
      'Database mode needs a Postgres server: the embedded database (PGlite) is one database only. Configure database.url, or use row or schema mode.',
    );
  }
  if (
    !embedded &&
    options.connectionString === undefined &&
    options.pool === undefined &&
    mode !== 'database'
  ) {
    throw new MtPaasError(
      'CONFIG_INVALID',
      `${mode} mode needs the app role's connection (connectionString or pool): a NOSUPERUSER NOBYPASSRLS role that owns no tenant table.`,
    );
  }
  const pglite: PgliteInstance | undefined = embedded ? catalog.driver.pglite : undefined;
  const appRole = assertIdentifier(
    options.appRole ??
      (embedded
        ? DEFAULT_APP_ROLE
        : (userOf(options.connectionString) ?? poolUser(options.pool) ?? DEFAULT_APP_ROLE)),
    'app role',
  );

  const ownedAdmin: SqlDriver | undefined =
    options.adminConnectionString === undefined
      ? undefined
      : createPgDriver({ connectionString: options.adminConnectionString, max: 4 });
  const admin: SqlDriver = ownedAdmin ?? catalog.driver;

  let pool: pg.Pool | undefined;
  const ownsPool = options.pool === undefined;
  if (!embedded && mode !== 'database') {
    pool =
      options.pool ??
      new pg.Pool({
        connectionString: options.connectionString,
        max: options.maxConnections ?? 10,
        idleTimeoutMillis: 30_000,
        ...({ pipeline } as object),
      });
    if (ownsPool) pool.on('error', () => {});
    trackPool(pool);
  }

  const databaseOptions = options.database ?? {};
  const databasePrefix = databaseOptions.databasePrefix ?? 't_';
  const placementAppRole = assertIdentifier(
    databaseOptions.placementAppRole ?? DEFAULT_PLACEMENT_APP_ROLE,
    'database.placementAppRole',
  );
  const placementSecret = databaseOptions.placementSecret;
  const placementCredentials = placementSecret === undefined ? {} : { secret: placementSecret };
  const pools =
    mode === 'database'
      ? createPoolGroup({
          ...databaseOptions,
          poolOptions: { ...({ pipeline } as object), ...databaseOptions.poolOptions },
        })
      : undefined;
  const urlTemplate =
    databaseOptions.urlTemplate ??
    (options.connectionString ? withDatabasePlaceholder(options.connectionString) : undefined);
  const adminUrlTemplate =
    databaseOptions.adminUrlTemplate ??
    withDatabasePlaceholder(
      options.adminConnectionString ?? databaseOptions.urlTemplate ?? options.connectionString ?? '',
    );
  if (mode === 'database' && urlTemplate === undefined) {
    throw new MtPaasError(
      'CONFIG_INVALID',
      'Database mode needs database.urlTemplate (e.g. "postgres://app@db:5432/{database}") or connectionString.',
    );
  }

  /** PGlite: its own (superuser) session user; a unit that changes session_user fails. */
  let pgliteUser: string | undefined;
  // Startup checks: the role the app connects as must not bypass RLS, in every mode (database mode:
  // checked on the first unit of each tenant database URL, see runFor).
  try {
    if (embedded) {
      await ensureAppRole(catalog.driver, { role: appRole, schemas: mode === 'row' ? [appSchema] : [] });
      refuseBypass(await roleFlags(catalog.driver, appRole), appRole, mode);
      pgliteUser = (await catalog.driver.query<{ user: string }>('SELECT session_user::text AS user')).rows[0]
        ?.user;
    } else if (pool !== undefined) {
      const appPool = pool;
      const session = {
        query: async <R>(text: string, params?: readonly unknown[]) => ({
          rows: (await appPool.query(text, params as unknown[] | undefined)).rows as R[],
        }),
      };
      refuseBypass(await roleFlags(session), appRole, mode);
    }
  } catch (error) {
    if (ownsPool) await pool?.end();
    await ownedAdmin?.close();
    await pools?.close();
    throw mapStorageError(error, 'startup check');
  }

  const tenantCacheTtlMs = options.tenantCacheTtlMs ?? 5000;
  const tenantCache = new LRUCache<string, Tenant>({ max: 10_000, ttl: tenantCacheTtlMs });
  const resolveTenant = async (tenantId: TenantId): Promise<Tenant> => {
    const fromContext = tryCurrentTenant();
    if (fromContext?.tenantId === tenantId && fromContext.tenant !== undefined) return fromContext.tenant;
    const cached = tenantCache.get(tenantId);
    if (cached !== undefined) return cached;
    const tenant = await catalog.directory.get(tenantId);
    if (tenant === undefined || tenant.status === 'purged') {
      throw new MtPaasError(
        'TENANT_NOT_FOUND',
        `Tenant "${tenantId}" is not in the catalog${tenant ? ' any more (purged)' : ''}; check the id or onboard the tenant first.`,
        { details: { tenantId } },
      );
    }
    tenantCache.set(tenantId, tenant);
    return tenant;
  };

  const schemaFor = (tenant: Pick<Tenant, 'id' | 'placement'>): string => {
    const mapped =
      typeof options.schemaNames === 'function'
        ? options.schemaNames(tenant.id)
        : options.schemaNames?.[tenant.id];
    const location = tenant.placement.mode === 'schema' ? tenant.placement.location : undefined;
    return assertIdentifier(mapped ?? location ?? `${schemaPrefix}${tenant.id}`, 'tenant schema');
  };
  /** A placement location that is a URL (database mode, or the container database of docker mode). */
  const placedUrlOf = (tenant: Pick<Tenant, 'placement'>): string | undefined => {
    const { mode: placementMode, location } = tenant.placement;
    if (placementMode !== 'database' && placementMode !== 'docker') return undefined;
    return location !== undefined && isUrl(location) ? location : undefined;
  };
  /** The seed writes `database.tenant.url_template` with `{tenant_id}` in the database name. */
  const templateDatabaseName = (tenantId: string): string | undefined => {
    const template = databaseOptions.urlTemplate;
    if (template === undefined || template.includes('{database}')) return undefined;
    if (!template.includes('{tenant_id}') && !template.includes('{tenant}')) return undefined;
    const name = databaseNameOfUrl(substituteTenant(template, tenantId));
    return name === undefined
      ? undefined
      : assertIdentifier(name, 'tenant database (from database.urlTemplate)');
  };
  const databaseNameFor = (tenant: Pick<Tenant, 'id' | 'placement'>): string => {
    const placedUrl = placedUrlOf(tenant);
    if (placedUrl !== undefined) {
      return assertIdentifier(databaseNameOfUrl(placedUrl) ?? '', 'tenant database (placement URL)');
    }
    const location = tenant.placement.mode === 'database' ? tenant.placement.location : undefined;
    if (location !== undefined) return assertIdentifier(location, 'tenant database');
    return (
      templateDatabaseName(tenant.id) ?? assertIdentifier(`${databasePrefix}${tenant.id}`, 'tenant database')
    );
  };
  /** The tenant database URL as the app role (units of work) or as the owner (storage, migrations). */
  const databaseUrlFor = (tenant: Pick<Tenant, 'id' | 'placement'>, as: 'app' | 'owner'): string => {
    const placedUrl = placedUrlOf(tenant);
    if (placedUrl !== undefined)
      return as === 'owner' ? placedUrl : placementAppUrl(placedUrl, placementAppRole, placementCredentials);
    const template = as === 'owner' ? adminUrlTemplate : urlTemplate;
    if (template === undefined || template === '') {
      throw new MtPaasError(
        'CONFIG_INVALID',
        'Database mode needs database.urlTemplate (e.g. "postgres://app@db:5432/{database}") or connectionString, and database.adminUrlTemplate or adminConnectionString for migrations.',
      );
    }
    return substituteTenant(
      template.replaceAll('{database}', encodeURIComponent(databaseNameFor(tenant))),
      tenant.id,
    );
  };

  const stats: UnitStats = { statements: 0 };
  const relational = relationalSchemaOf(options.schema);
  type Fn<T> = (tx: TenantTransaction<TSchema>) => T | Promise<T>;

  const modeContext: ModeContext = {
    catalog,
    admin,
    appRole,
    appSchema,
    migrationsFolder: options.migrationsFolder,
    appUrl: options.connectionString,
    pool,
    pools,
    embedded: embedded ? { role: appRole, sessionUser: pgliteUser } : undefined,
    resolveTenant: async (tenantId) => {
      const tenant = await catalog.directory.get(tenantId);
      if (tenant === undefined) {
        throw new MtPaasError(
          'TENANT_NOT_FOUND',
          `Tenant "${tenantId}" is not in the catalog; create it first.`,
          {
            details: { tenantId },
          },
        );
      }
      return tenant;
    },
    schemaFor,
    databaseNameFor,
    adminDatabaseUrlFor: (tenant) => databaseUrlFor(tenant, 'owner'),
    appDatabaseUrlFor: (tenant) => databaseUrlFor(tenant, 'app'),
    serverAdminUrlFor: (tenant) => {
      const placedUrl = placedUrlOf(tenant);
      return placedUrl === undefined ? undefined : withDatabaseName(placedUrl, 'postgres');
    },
    placementAppRoleFor: (tenant) => {
      const placedUrl = placedUrlOf(tenant);
      if (placedUrl === undefined) return undefined;
      placementAppUrl(placedUrl, placementAppRole, placementCredentials); // refuses an owner that is the app role
      return {
        role: placementAppRole,
        password: placementAppPassword(placedUrl, placementAppRole, placementCredentials),
      };
    },
    evictDatabasePool: async (tenantId) => {
      await pools?.evict(tenantId);
    },
    forgetTenant: (tenantId) => {
      tenantCache.delete(tenantId);
    },
  };
  /** The one mode object of this tenant db: no other code here branches on the mode. */
  const driver: ModeDriver = MODES[mode](modeContext);

  const runUnit = async <T>(tenant: Tenant, fn: Fn<T>): Promise<T> => {
    const { scope, client } = await driver.unit(tenant);
    if (client === undefined) {
      const { runOnPglite } = await import('./pglite-unit-of-work.js');
      return runOnPglite<T, TSchema>(pglite!, scope, fn, stats, relational);
    }
    let connected: pg.PoolClient;
    try {
      connected = await client;
    } catch (error) {
      throw mapStorageError(error, 'connect');
    }
    return runOnClient<T, TSchema>(connected, scope, fn, stats, relational);
  };

  const runFor = async <T>(tenantId: TenantId, fn: Fn<T>): Promise<T> => {
    const tenant = await resolveTenant(tenantId);
    const freeze = writeFreezeOf(tenant);
    if (freeze === undefined) return runUnit(tenant, fn);
    // A move window: the unit is READ ONLY — reads work, the first write fails (25006) → 503 + Retry-After.
    try {
      return await runUnit(tenant, async (tx) => {
        await tx.execute(sql`SET TRANSACTION READ ONLY`);
        return fn(tx);
      });
    } catch (error) {
      if (!isReadOnlyRefusal(error)) throw error;
      throw movingError(tenantId, freeze, error);
    }
  };

  const tenantDb: TenantDb<TSchema> = {
    mode,
    catalog,
    run(fn) {
      let tenantId: TenantId;
      try {
        tenantId = requireTenant().tenantId;
      } catch (error) {
        return Promise.reject(error);
      }
      return runFor(tenantId, fn);
    },
    forTenant(rawTenantId) {
      const tenantId = parseTenantId(rawTenantId);
      return { tenantId, run: (fn) => runFor(tenantId, fn) };
    },
    async unscoped<T>(fn: Fn<T>) {
      if (embedded) {
        const { runUnscopedOnPglite } = await import('./pglite-unit-of-work.js');
        return runUnscopedOnPglite<T, TSchema>(pglite!, appRole, fn, relational, pgliteUser);
      }
      if (pool === undefined) {
        throw new MtPaasError(
          'CONFIG_INVALID',
          'unscoped() needs a shared database (row or schema mode); in database mode connect to one tenant database directly.',
        );
      }
      const client = await pool.connect().catch((error: unknown) => {
        throw mapStorageError(error, 'connect');
      });
      const { runUnscopedOnClient } = await import('./unscoped.js');
      return runUnscopedOnClient<T, TSchema>(client, fn, relational);
    },
    async schemaOf(tenantId) {
      return schemaFor(await resolveTenant(tenantId));
    },
    async databaseUrlOf(tenantId) {
      return databaseUrlFor(await resolveTenant(tenantId), 'app');
    },
    createTenantStorage: (tenantId) => createStorageWith(modeContext, driver, parseTenantId(tenantId)),
    dropTenantStorage: (tenantId) => dropStorageWith(modeContext, driver, parseTenantId(tenantId)),
    migrateTenants: async (migrateOptions) =>
      driver.migrate(loadMigrations(modeContext), migrateOptions ?? {}),
    get isolation() {
      return isolation;
    },
    forget(tenantId) {
      if (tenantId === undefined) tenantCache.clear();
      else tenantCache.delete(tenantId);
    },
    tenantCacheTtlMs,
    stats,
    pools,
    async close() {
      if (ownsPool) await pool?.end();
      await pools?.close();
      await ownedAdmin?.close();
    },
  };
  const isolation: IsolationModeStore = defineIsolationMode({
    mode,
    tenantDb,
    forTenant: (tenantId) => tenantDb.forTenant(tenantId),
    connect: (tenant) => driver.connect(tenant),
    async createStorage(tenant, createOptions) {
      await createOptions?.onStep?.('storage');
      return { tenant, applied: await createStorageWith(modeContext, driver, tenant) };
    },
    async dropStorage(tenant) {
      await dropStorageWith(modeContext, driver, tenant);
      return {};
    },
    migrate: (migrateOptions) => tenantDb.migrateTenants(migrateOptions),
  });
  return tenantDb;
}

/** The three modes of a tenant db, one object each. */
const MODES: Record<TenantDbMode, (context: ModeContext) => ModeDriver> = {
  row: rowMode,
  schema: schemaMode,
  database: databaseMode,
};

/** `{tenant_id}` (the seed's spelling) and `{tenant}` → the tenant id (validated grammar: URL-safe). */
function substituteTenant(template: string, tenantId: string): string {
  return template.replaceAll('{tenant_id}', tenantId).replaceAll('{tenant}', tenantId);
}

function databaseNameOfUrl(url: string): string | undefined {
  try {
    const name = decodeURIComponent(new URL(url).pathname.replace(/^\//, ''));
    return name === '' ? undefined : name;
  } catch {
    return undefined;
  }
}

function withDatabaseName(url: string, database: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${encodeURIComponent(database)}`;
  return parsed.toString();
}

function isUrl(value: string): boolean {
  return /^postgres(ql)?:\/\//i.test(value);
}

function userOf(url: string | undefined): string | undefined {
  if (url === undefined) return undefined;
  try {
    const user = decodeURIComponent(new URL(url).username);
    return user === '' ? undefined : user;
  } catch {
    return undefined;
  }
}

function poolUser(pool: pg.Pool | undefined): string | undefined {
  const options = (pool as unknown as { options?: { user?: string; connectionString?: string } } | undefined)
    ?.options;
  return options?.user ?? (options?.connectionString ? userOf(options.connectionString) : undefined);
}

/** `postgres://u@h:5432/db?x` → `postgres://u@h:5432/{database}?x`. */
function withDatabasePlaceholder(url: string): string {
  if (url === '') return url;
  try {
    const parsed = new URL(url);
    parsed.pathname = '/__MT_PAAS_DATABASE__';
    return parsed.toString().replace('__MT_PAAS_DATABASE__', '{database}');
  } catch {
    throw new MtPaasError(
      'CONFIG_INVALID',
      'The database URL is not a valid URL: check connectionString / adminConnectionString (postgres://user:password@host:5432/database).',
    );
  }
}

/**
 * Applies the app's tenant migrations (the `migrationsFolder` of `tenantDb`) to the shared tables
 * (row), every tenant schema (schema) or every tenant database (database). Same as `tenantDb.migrateTenants()`.
 */
export function migrateTenants(
  tenantDb: TenantDb,
  options?: MigrateTenantsOptions,
): Promise<MigrateTenantsResult> {
  return tenantDb.migrateTenants(options);
}

/** Creates a tenant's storage and applies its migrations. Same as `tenantDb.createTenantStorage()`. */
export function createTenantStorage(
  tenantDb: Pick<TenantDb, 'createTenantStorage'>,
  tenantId: string,
): Promise<string[]> {
  return tenantDb.createTenantStorage(tenantId);
}

/** Drops a tenant's storage. Same as `tenantDb.dropTenantStorage()`. */
export function dropTenantStorage(
  tenantDb: Pick<TenantDb, 'dropTenantStorage'>,
  tenantId: string,
): Promise<void> {
  return tenantDb.dropTenantStorage(tenantId);
}
