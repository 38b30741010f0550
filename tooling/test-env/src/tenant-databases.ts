/**
 * Database-mode isolation creates one database per tenant beside the test database. These helpers give a
 * test file the run-scoped name prefix and URL template for them and drop what it made — the setup and
 * clean-up that the framework, provisioning and reference-tutor integration tests each wrote by hand.
 */
import type pg from 'pg';
import { dropDatabase, quoteLiteral, withClient, withDatabase } from './postgres-admin.js';
import { DATABASE_PREFIX } from './run-id.js';
import { providedTestEnv } from './test-backend.js';
import { requirePostgres } from './test-database.js';
import { TestEnvError } from './test-env-error.js';

/**
 * Runs one query on `url` with a fresh client (closed afterwards, also on error) and returns its rows.
 * With a test database's admin URL it sees everything: use it to check what the code under test left.
 */
export async function adminQuery<R extends pg.QueryResultRow = Record<string, unknown>>(
  url: string,
  text: string,
  params?: unknown[],
): Promise<R[]> {
  return withClient(url, async (client) => (await client.query<R>(text, params)).rows);
}

export interface TenantDatabases {
  /**
   * `mtp_t_<runId>_<label>__`: pass it as the database-mode prefix (`database.databasePrefix` of
   * `@mt-paas/db`). It carries the run id, so the run's teardown and a later run's stale clean-up drop
   * these databases too when a file dies before its `afterAll`.
   */
  readonly prefix: string;
  /**
   * The test database's admin URL with the database `<prefix>{tenant_id}` (the placeholder literal, not
   * URL-encoded): the value of `database.tenant.url_template` / `TENANT_DATABASE_URL_TEMPLATE`.
   */
  readonly urlTemplate: string;
  /** Names of the databases under {@link prefix} that exist now. */
  list(): Promise<string[]>;
  /** Drops every database under {@link prefix} (`WITH (FORCE)`: open pools do not stop it); returns their names. */
  drop(): Promise<string[]>;
}

/**
 * Lower-case letters, digits and single inner underscores, at most 12 characters; with the `__` after it no
 * label's prefix is a prefix of another's (`tdb__` is not one of `tdb_x__…`), and the names stay under
 * Postgres' 63 characters with room (≥ 22) for the tenant id.
 */
const LABEL = /^(?=.{1,12}$)[a-z](?:[a-z0-9]|_(?=[a-z0-9]))*$/;

/**
 * The tenant databases of one test file (or one `describe`), named `mtp_t_<runId>_<label>__<tenant>` beside
 * the test database of `testDatabaseUrl` (`createTestDatabase()` / `useTestDatabase()`'s `url`).
 *
 * @example
 * const tenants = tenantDatabases(database.url, 'tutor_row');
 * const env = { DATABASE_URL: database.url, TENANT_DATABASE_URL_TEMPLATE: tenants.urlTemplate };
 * afterAll(() => tenants.drop());
 */
export function tenantDatabases(testDatabaseUrl: string, label: string): TenantDatabases {
  if (!LABEL.test(label)) {
    throw new TestEnvError(
      'TEST_DATABASE_LABEL',
      `tenantDatabases label "${label}" must be 1–12 lower-case letters, digits and single inner underscores (it becomes part of database names, at most 63 characters).`,
    );
  }
  const server = requirePostgres();
  const prefix = `${DATABASE_PREFIX}${providedTestEnv().backend.runId}_${label}__`;
  const urlTemplate = withDatabase(testDatabaseUrl, `${prefix}TENANT_ID`).replace('TENANT_ID', '{tenant_id}');
  const list = async () =>
    (
      await adminQuery<{ name: string }>(
        testDatabaseUrl,
        `SELECT datname AS name FROM pg_database
          WHERE starts_with(datname, ${quoteLiteral(prefix)}) AND datname <> current_database() ORDER BY datname`,
      )
    ).map((row) => row.name);
  return {
    prefix,
    urlTemplate,
    list,
    async drop() {
      const names = await list();
      await withClient(testDatabaseUrl, async (client) => {
        for (const name of names) await dropDatabase(client, name, server.serverVersion);
      });
      return names;
    },
  };
}
