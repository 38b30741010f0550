import { createHash } from 'node:crypto';
import { join } from 'node:path';
import type { ConfigEnv, MtPaasConfig } from '@mt-paas/config';
import { type IsolationMode, MtPaasError } from '@mt-paas/context';
import {
  type Catalog,
  createCatalog,
  createTenantDb,
  ensureAppRole,
  placementAppPassword,
  type TenantDb,
  type TenantDbOptions,
} from '@mt-paas/db';
import { createDockerPlacement, type PlacementStrategy } from '@mt-paas/provisioning';

/** Where the framework keeps tenants, from `database.*` and `isolation.*`. */
export interface StorageOptions {
  /** Embedded database directory, or `'memory'`. */
  dataDir?: string;
  /** The app role's URL (NOSUPERUSER NOBYPASSRLS). @default APP_DATABASE_URL, else a role the framework creates */
  appDatabaseUrl?: string;
  /** Name of the app role the framework creates when no `appDatabaseUrl` is given. @default 'mt_paas_app' */
  appRole?: string;
  /** The app's drizzle-kit output folder of its tenant tables (required: applied at startup and to every new tenant). */
  migrationsFolder?: string;
  /** docker mode: where each tenant's compose project is rendered. @default `<database.data_dir>/tenants` */
  dockerDeployRoot?: string;
  /** docker mode: the base domain of tenant subdomains. @default the host of `service.public_url` */
  dockerBaseDomain?: string;
}

/** What {@link openStorage} opened. */
export interface Storage {
  catalog: Catalog;
  /** The tenant db of the configured mode (`database` for docker). */
  tenantDb: TenantDb;
  mode: IsolationMode;
  placements: Partial<Record<IsolationMode, PlacementStrategy>>;
  /** `true` on PGlite. */
  embedded: boolean;
}

const TEMPLATE_MARKER = 'mtpaastenantidmarker';

/**
 * Opens the catalog (Postgres at `database.central.url` / `DATABASE_URL` with `pool_size` connections,
 * else PGlite) and the tenant db of `isolation.mode`: row / schema on the app role's connection, database
 * with `database.tenant.url_template` (`{tenant_id}` in the database name), `pool_size_per_tenant`
 * connections per tenant database and `max_connections` in all; docker = database mode on each tenant's
 * container database, placed by `@mt-paas/provisioning`'s docker placement (`isolation.docker.*`).
 */
export async function openStorage(
  config: MtPaasConfig,
  options: StorageOptions,
  env: ConfigEnv,
  closers: Array<() => Promise<unknown>>,
): Promise<Storage> {
  const centralUrl = config.database.central.url ?? nonEmpty(env.DATABASE_URL);
  const mode = config.isolation.mode;
  if (centralUrl === undefined && (mode === 'database' || mode === 'docker')) {
    throw new MtPaasError(
      'CONFIG_INVALID',
      `isolation.mode "${mode}" needs a Postgres server: the embedded database is one database only. Set database.central.url (or DATABASE_URL), or use isolation.mode row or schema.`,
      { details: { key: 'isolation.mode' } },
    );
  }
  const catalog = await createCatalog(
    centralUrl === undefined
      ? { dataDir: options.dataDir ?? join(config.database.dataDir, 'pglite') }
      : { connectionString: centralUrl, maxConnections: config.database.central.poolSize },
  );
  closers.push(() => catalog.close());
  await catalog.migrate();

  const common: TenantDbOptions = {
    mode: 'row',
    catalog,
    ...(options.migrationsFolder === undefined ? {} : { migrationsFolder: options.migrationsFolder }),
  };
  let tenantDbOptions: TenantDbOptions;
  if (centralUrl === undefined) {
    tenantDbOptions = { ...common, mode: mode as 'row' | 'schema' };
  } else {
    const appUrl = await appConnection(catalog, centralUrl, options, env);
    tenantDbOptions = {
      ...common,
      mode: mode === 'docker' ? 'database' : mode,
      connectionString: appUrl,
      adminConnectionString: centralUrl,
      maxConnections: config.database.central.poolSize,
      ...(mode === 'database' || mode === 'docker'
        ? { database: databaseModeOptions(config, centralUrl, appUrl) }
        : {}),
    };
  }
  const tenantDb = await createTenantDb(tenantDbOptions);
  closers.push(() => tenantDb.close());
  if (options.migrationsFolder !== undefined) {
    const migrated = await tenantDb.migrateTenants();
    if (migrated.failed.length > 0) {
      throw new MtPaasError(
        'CONFIG_INVALID',
        `The app's tenant migrations failed for ${migrated.failed.length} tenant(s); fix the migrations in ${options.migrationsFolder} and start again.`,
        { details: { failed: migrated.failed } },
      );
    }
  }

  const placements: Storage['placements'] = {};
  if (mode === 'docker') {
    const baseDomain =
      options.dockerBaseDomain ??
      (config.service.publicUrl === undefined ? undefined : new URL(config.service.publicUrl).hostname);
    if (baseDomain === undefined) {
      throw new MtPaasError(
        'CONFIG_INVALID',
        'isolation.mode docker gives every tenant a subdomain: set service.public_url (its host is the base domain).',
        { details: { key: 'service.public_url' } },
      );
    }
    placements.docker = createDockerPlacement({
      catalog,
      composeTemplate: config.isolation.docker.composeTemplate,
      deployRoot: options.dockerDeployRoot ?? join(config.database.dataDir, 'tenants'),
      portRangeStart: config.isolation.docker.portRangeStart,
      portRangeSize: config.isolation.docker.portRangeSize,
      serviceId: config.service.id,
      baseDomain,
    });
  }
  return { catalog, tenantDb, mode, placements, embedded: centralUrl === undefined };
}

/** The app role's URL: given, or a role created (or repaired) with a password derived from the owner's. */
async function appConnection(
  catalog: Catalog,
  centralUrl: string,
  options: StorageOptions,
  env: ConfigEnv,
): Promise<string> {
  const given = options.appDatabaseUrl ?? nonEmpty(env.APP_DATABASE_URL);
  if (given !== undefined) {
    const role = decodeURIComponent(new URL(given).username);
    await ensureAppRole(catalog.driver, { role });
    return given;
  }
  const role = options.appRole ?? 'mt_paas_app';
  const owner = new URL(centralUrl);
  // Derived, never stored: every instance computes the same password. Without an owner password (trust,
  // certificates) the server authenticates the app role like the owner; it still needs a LOGIN password.
  const password =
    placementAppPassword(centralUrl, role) ??
    createHash('sha256').update(`mt-paas-app:${owner.host}:${owner.username}:${role}`).digest('base64url');
  await ensureAppRole(catalog.driver, { role, password });
  const app = new URL(centralUrl);
  app.username = encodeURIComponent(role);
  app.password = encodeURIComponent(password);
  return app.toString();
}

/** `database.tenant.*` → `@mt-paas/db` database-mode options. */
function databaseModeOptions(config: MtPaasConfig, centralUrl: string, appUrl: string) {
  const tenant = config.database.tenant;
  const pools = { maxConnections: tenant.maxConnections, connectionsPerTenant: tenant.poolSizePerTenant };
  if (tenant.urlTemplate === undefined) return pools;
  const template = new URL(tenant.urlTemplate.replaceAll('{tenant_id}', TEMPLATE_MARKER));
  const databaseName = decodeURIComponent(template.pathname.slice(1));
  if (
    !databaseName.endsWith(TEMPLATE_MARKER) ||
    databaseName.indexOf(TEMPLATE_MARKER) !== databaseName.length - TEMPLATE_MARKER.length
  ) {
    throw new MtPaasError(
      'CONFIG_INVALID',
      `database.tenant.url_template must end its database name with {tenant_id} (e.g. "postgresql://host:5432/tenant_{tenant_id}"); got "${tenant.urlTemplate}".`,
      { details: { key: 'database.tenant.url_template' } },
    );
  }
  const databasePrefix = databaseName.slice(0, -TEMPLATE_MARKER.length);
  const withCredentials = (credentials: URL) => {
    const url = new URL(template.toString());
    url.username = credentials.username;
    url.password = credentials.password;
    url.pathname = '/DATABASEMARKER';
    return url.toString().replace('DATABASEMARKER', '{database}');
  };
  // The template names host, port and options; credentials come from the owner (admin) and app URLs.
  return {
    ...pools,
    databasePrefix,
    urlTemplate: withCredentials(new URL(appUrl)),
    adminUrlTemplate: withCredentials(new URL(centralUrl)),
  };
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === '' ? undefined : value;
}
