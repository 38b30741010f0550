/** Admin access to the test server: one-off queries, and dropping the tenant databases a test made. */
import pg from 'pg';

/** Runs one query as the test database's owner (superuser: sees everything, outside every transaction). */
export async function adminQuery<R extends pg.QueryResultRow>(url: string, text: string, params?: unknown[]) {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<R>(text, params)).rows;
  } finally {
    await client.end();
  }
}

/** Drops the databases named `<prefix>…` beside the test database (database mode's tenant databases). */
export async function dropTenantDatabases(url: string, prefix: string): Promise<void> {
  const left = await adminQuery<{ name: string }>(
    url,
    'SELECT datname AS name FROM pg_database WHERE starts_with(datname, $1) AND datname <> current_database()',
    [prefix],
  );
  for (const { name } of left) await adminQuery(url, `DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
}
