import pg from 'pg';
import { DATABASE_PREFIX, isStaleRun, ROLE_PREFIX, runIdOfName, runSessionName } from './run-id.js';

/** Quotes a Postgres identifier (`"a""b"`). */
export function quoteIdentifier(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

/** Quotes a Postgres string literal (`'a''b'`). */
export function quoteLiteral(value: string): string {
  return `'${value.replaceAll("'", "''")}'`;
}

/** The same server URL pointing at another database. */
export function withDatabase(url: string, database: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${encodeURIComponent(database)}`;
  return parsed.toString();
}

/** The same server and database URL with other credentials. */
export function withCredentials(url: string, user: string, password: string): string {
  const parsed = new URL(url);
  parsed.username = encodeURIComponent(user);
  parsed.password = encodeURIComponent(password);
  return parsed.toString();
}

/** Runs `fn` with a fresh client on `url`, always closing it. */
export async function withClient<T>(url: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 10_000 });
  client.on('error', () => {});
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => {});
  }
}

/** Drops a database even if connections are left open (`WITH (FORCE)` on 13+, terminate-then-drop before). */
export async function dropDatabase(
  client: pg.Client,
  name: string,
  serverVersion: number | undefined,
): Promise<void> {
  if ((serverVersion ?? 0) >= 130000) {
    await client.query(`DROP DATABASE IF EXISTS ${quoteIdentifier(name)} WITH (FORCE)`);
    return;
  }
  await client
    .query('UPDATE pg_database SET datallowconn = false WHERE datname = $1', [name])
    .catch(() => {});
  await client.query(
    'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()',
    [name],
  );
  await client.query(`DROP DATABASE IF EXISTS ${quoteIdentifier(name)}`);
}

export interface CleanupReport {
  databases: string[];
  roles: string[];
  failures: string[];
}

/**
 * Drops databases (`mtp_t_*`) and roles (`mtp_r_*`) whose run `shouldDrop` says is over.
 * Databases first: a role cannot be dropped while a database still holds its grants.
 */
export async function dropRunObjects(
  adminUrl: string,
  serverVersion: number | undefined,
  shouldDrop: (runId: string) => boolean,
): Promise<CleanupReport> {
  const report: CleanupReport = { databases: [], roles: [], failures: [] };
  await withClient(adminUrl, async (client) => {
    const databases = await client.query<{ datname: string }>(
      `SELECT datname FROM pg_database WHERE datname LIKE $1 AND datname <> current_database() ORDER BY datname`,
      [`${DATABASE_PREFIX.replaceAll('_', '\\_')}%`],
    );
    for (const { datname } of databases.rows) {
      const runId = runIdOfName(datname);
      if (!runId || !shouldDrop(runId)) continue;
      try {
        await dropDatabase(client, datname, serverVersion);
        report.databases.push(datname);
      } catch (error) {
        report.failures.push(`database ${datname}: ${(error as Error).message}`);
      }
    }
    const roles = await client.query<{ rolname: string }>(
      `SELECT rolname FROM pg_roles WHERE rolname LIKE $1 ORDER BY rolname`,
      [`${ROLE_PREFIX.replaceAll('_', '\\_')}%`],
    );
    for (const { rolname } of roles.rows) {
      const runId = runIdOfName(rolname);
      if (!runId || !shouldDrop(runId)) continue;
      try {
        await client.query(`DROP ROLE IF EXISTS ${quoteIdentifier(rolname)}`);
        report.roles.push(rolname);
      } catch (error) {
        report.failures.push(`role ${rolname}: ${(error as Error).message}`);
      }
    }
  });
  return report;
}

/**
 * Opens the session that marks run `runId` as alive for as long as the process holds it
 * (`application_name` = {@link runSessionName}). Close it when the run ends.
 */
export async function openRunSession(adminUrl: string, runId: string): Promise<pg.Client> {
  const client = new pg.Client({
    connectionString: adminUrl,
    application_name: runSessionName(runId),
    connectionTimeoutMillis: 10_000,
  });
  client.on('error', () => {});
  await client.connect();
  return client;
}

/** Run ids whose marker session is open on the server right now. */
export async function liveRunIds(adminUrl: string): Promise<Set<string>> {
  const prefix = runSessionName('');
  const rows = await withClient(adminUrl, (client) =>
    client.query<{ name: string }>(
      'SELECT DISTINCT application_name AS name FROM pg_stat_activity WHERE starts_with(application_name, $1)',
      [prefix],
    ),
  );
  return new Set(rows.rows.map((row) => row.name.slice(prefix.length)));
}

/** Drops what earlier, finished or crashed runs left behind (see {@link isStaleRun}); returns the stale run ids seen too. */
export async function dropStaleRuns(
  adminUrl: string,
  serverVersion: number | undefined,
  currentRunId: string,
  now = Date.now(),
): Promise<CleanupReport & { liveRunIds: Set<string> }> {
  const live = await liveRunIds(adminUrl);
  const report = await dropRunObjects(adminUrl, serverVersion, (runId) =>
    isStaleRun(runId, { currentRunId, now, liveRunIds: live }),
  );
  return { ...report, liveRunIds: live };
}

/** Drops everything the current run created (the last global teardown). */
export function dropCurrentRun(
  adminUrl: string,
  serverVersion: number | undefined,
  currentRunId: string,
): Promise<CleanupReport> {
  return dropRunObjects(adminUrl, serverVersion, (runId) => runId === currentRunId);
}
