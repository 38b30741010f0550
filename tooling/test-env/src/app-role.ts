import { createHash } from 'node:crypto';
import type pg from 'pg';
import { quoteIdentifier, quoteLiteral, withClient, withCredentials } from './postgres-admin.js';
import { ROLE_PREFIX } from './run-id.js';
import { providedTestEnv } from './test-backend.js';
import { requirePostgres } from './test-database.js';
import { TestEnvError } from './test-env-error.js';

export interface CreateAppRoleOptions {
  /** Short role name; the real role is `mtp_r_<runId>_<name>` (roles are cluster-wide). `^[a-z][a-z0-9_]{0,30}$`. @default 'app' */
  name?: string;
  /**
   * What to grant on the database of `databaseUrl`:
   * - `'dml'`: USAGE on the schemas, SELECT/INSERT/UPDATE/DELETE on their tables and USAGE/SELECT/UPDATE on
   *   their sequences — existing ones and (through ALTER DEFAULT PRIVILEGES) those the admin creates later;
   * - `'none'`: only CONNECT; grant yourself with the admin URL.
   * @default 'dml'
   */
  privileges?: 'dml' | 'none';
  /** Schemas the `'dml'` grants cover. @default ['public'] */
  schemas?: string[];
}

export interface AppRole {
  /** The real (run-scoped) role name. */
  readonly name: string;
  readonly password: string;
  /** `databaseUrl` with this role's credentials. */
  readonly url: string;
}

const ROLE_NAME = /^[a-z][a-z0-9_]{0,30}$/;

/**
 * Creates (idempotently, safe from concurrent test files) a `LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE`
 * role and returns a URL to `databaseUrl`'s database as that role — the identity to test row-level security with,
 * since a superuser or table owner silently bypasses RLS. The password is derived from the run, so every file
 * gets the same one; the role is dropped with the run's other objects.
 *
 * @param databaseUrl admin URL of the database to grant on (usually `createTestDatabase().url`)
 */
export async function createAppRole(
  databaseUrl: string,
  options: CreateAppRoleOptions = {},
): Promise<AppRole> {
  const server = requirePostgres();
  const { backend, runSecret } = providedTestEnv();
  const shortName = options.name ?? 'app';
  if (!ROLE_NAME.test(shortName)) {
    throw new TestEnvError(
      'TEST_ROLE_NAME',
      `role name "${shortName}" must match ${ROLE_NAME}: a lower-case letter, then up to 30 lower-case letters, digits or "_" (e.g. "app", "reader")`,
    );
  }
  const name = `${ROLE_PREFIX}${backend.runId}_${shortName}`;
  const password = createHash('sha256').update(`${runSecret}:${name}`).digest('base64url').slice(0, 32);
  const role = quoteIdentifier(name);

  // Roles are cluster-wide; serialize on the admin database (advisory locks are per database).
  await withClient(server.url, async (client) => {
    await client.query('BEGIN');
    try {
      await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [name]);
      const exists = await client.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [name]);
      if (!exists.rowCount) await client.query(`CREATE ROLE ${role}`);
      // SUPERUSER, BYPASSRLS and REPLICATION default to off, and a non-superuser admin may not even name them.
      await client.query(
        `ALTER ROLE ${role} WITH LOGIN NOCREATEDB NOCREATEROLE PASSWORD ${quoteLiteral(password)}`,
      );
      const { rows } = await client.query<{ rolsuper: boolean; rolbypassrls: boolean }>(
        'SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = $1',
        [name],
      );
      if (rows[0]?.rolsuper || rows[0]?.rolbypassrls) {
        throw new TestEnvError(
          'TEST_ROLE_BYPASSES_RLS',
          `role ${name} exists with SUPERUSER or BYPASSRLS and would bypass row-level security; drop it (DROP ROLE ${role}) and rerun`,
        );
      }
      await client.query('COMMIT');
    } catch (error) {
      await client.query('ROLLBACK').catch(() => {});
      throw error;
    }
  });

  await withClient(databaseUrl, async (client) => {
    // Concurrent GRANT / ALTER DEFAULT PRIVILEGES on one catalog row fail with "tuple concurrently updated":
    // the same lock as the role creation serialises them (held to the end of this transaction).
    await client.query('BEGIN');
    try {
      await grantAll(client);
      await client.query('COMMIT');
    } catch (error) {
      await client.query('ROLLBACK').catch(() => {});
      throw error;
    }
  });

  async function grantAll(client: pg.Client): Promise<void> {
    await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [name]);
    const { rows } = await client.query<{ db: string }>('SELECT current_database() AS db');
    await client.query(`GRANT CONNECT, TEMPORARY ON DATABASE ${quoteIdentifier(rows[0]!.db)} TO ${role}`);
    if ((options.privileges ?? 'dml') === 'dml') {
      for (const schema of options.schemas ?? ['public']) {
        const s = quoteIdentifier(schema);
        await client.query(`GRANT USAGE ON SCHEMA ${s} TO ${role}`);
        await client.query(`GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA ${s} TO ${role}`);
        await client.query(`GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA ${s} TO ${role}`);
        await client.query(
          `ALTER DEFAULT PRIVILEGES IN SCHEMA ${s} GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO ${role}`,
        );
        await client.query(
          `ALTER DEFAULT PRIVILEGES IN SCHEMA ${s} GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO ${role}`,
        );
      }
    }
  }

  return { name, password, url: withCredentials(databaseUrl, name, password) };
}
