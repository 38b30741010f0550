import type { TenantEvent, TenantEventBus } from '@mt-paas/context';
import { type Catalog, createCatalog, createTenantDb, ensureAppRole, type TenantDb } from '@mt-paas/db';
import {
  APP_FIXTURE_USERS_MIGRATION,
  appFixtureMigrationsWith,
  createAppRole,
  testBackend,
} from '@mt-paas/test-env';
import pg from 'pg';
import { createProvisioner, type Provisioner, type ProvisionerOptions } from '../provisioner.js';

/** The fixture app's drizzle-kit migrations: the shared courses/enrollments ones, then users. */
export const FIXTURE_MIGRATIONS = appFixtureMigrationsWith(APP_FIXTURE_USERS_MIGRATION);

/** A TenantEventBus that records what was published (and delivers to subscribers in-process). */
export interface RecordingBus extends TenantEventBus {
  readonly events: TenantEvent[];
}

export function createRecordingBus(): RecordingBus {
  const events: TenantEvent[] = [];
  const handlers = new Set<(event: TenantEvent) => void | Promise<void>>();
  return {
    events,
    async publish(event) {
      events.push(event);
      for (const handler of handlers) await handler(event);
    },
    async subscribe(handler) {
      handlers.add(handler);
      return async () => {
        handlers.delete(handler);
      };
    },
    async close() {
      handlers.clear();
    },
  };
}

/** A migrated catalog, an app role and a tenant db per mode, on one test database. */
export interface ProvisioningEnvironment {
  catalog: Catalog;
  tenantDbs: { row: TenantDb; schema: TenantDb; database: TenantDb };
  adminUrl: string;
  appUrl: string;
  appRole: string;
  /** Prefix of tenant database names (database mode). */
  databasePrefix: string;
  /** Runs one admin query on the test database (superuser: sees everything). */
  query<R extends pg.QueryResultRow = Record<string, unknown>>(
    text: string,
    params?: unknown[],
  ): Promise<R[]>;
  /** Runs one admin query on another database of the same server. */
  queryDatabase<R extends pg.QueryResultRow = Record<string, unknown>>(
    database: string,
    text: string,
    params?: unknown[],
  ): Promise<R[]>;
  /**
   * A provisioner on this environment's catalog and tenant dbs, archiving through the app role with the
   * fixture migrations; `archive` fields given here are added to those.
   */
  provisioner(
    options?: Omit<Partial<ProvisionerOptions>, 'archive'> & {
      archive?: Partial<ProvisionerOptions['archive']>;
    },
  ): Provisioner;
  close(): Promise<void>;
}

export async function openEnvironment(adminUrl: string, label: string): Promise<ProvisioningEnvironment> {
  // Small pools: CI runs every project's files in parallel on one Postgres (max_connections 100); with the
  // defaults (catalog 5, app pools 10 + 10, database mode 50, 3 admin drivers of 4) one file could take 80+.
  const catalog = await createCatalog({ connectionString: adminUrl, maxConnections: 2 });
  await catalog.migrate();
  const role = await createAppRole(adminUrl, { name: `pv_${label}`, privileges: 'none' });
  await ensureAppRole(catalog.driver, { role: role.name, schemas: ['public'] });
  const databasePrefix = `mtp_t_${testBackend().runId}_${label}_`;
  const common = {
    catalog,
    connectionString: role.url,
    adminConnectionString: adminUrl,
    migrationsFolder: FIXTURE_MIGRATIONS,
    maxConnections: 3,
  };
  const tenantDbs = {
    row: await createTenantDb({ ...common, mode: 'row' }),
    schema: await createTenantDb({ ...common, mode: 'schema' }),
    database: await createTenantDb({
      ...common,
      mode: 'database',
      database: { databasePrefix, maxConnections: 8, connectionsPerTenant: 1 },
    }),
  };
  const run = async <R extends pg.QueryResultRow>(url: string, text: string, params?: unknown[]) => {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      return (await client.query<R>(text, params)).rows;
    } finally {
      await client.end();
    }
  };
  return {
    catalog,
    tenantDbs,
    adminUrl,
    appUrl: role.url,
    appRole: role.name,
    databasePrefix,
    provisioner: ({ archive, ...options } = {}) =>
      createProvisioner({
        catalog,
        tenantDbs,
        ...options,
        archive: { appConnectionString: role.url, migrationsFolder: FIXTURE_MIGRATIONS, ...archive },
      }),
    query: (text, params) => run(adminUrl, text, params),
    queryDatabase: (database, text, params) => {
      const url = new URL(adminUrl);
      url.pathname = `/${database}`;
      return run(url.toString(), text, params);
    },
    async close() {
      for (const tenantDb of Object.values(tenantDbs)) await tenantDb.close();
      await catalog.close();
      // tenant databases live beside the test database: drop this file's (and so their grants)
      const left = await run<{ name: string }>(
        adminUrl,
        'SELECT datname AS name FROM pg_database WHERE starts_with(datname, $1) AND datname <> current_database()',
        [databasePrefix],
      );
      for (const { name } of left) await run(adminUrl, `DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
    },
  };
}
