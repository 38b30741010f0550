import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import {
  adminQuery,
  createAppRole,
  createTestDatabase,
  defineTestTemplate,
  describeWithPostgres,
  quoteIdentifier,
  requirePostgres,
  type TestDatabase,
  testBackend,
  useTestDatabase,
  withDatabase,
} from './index.js';

const query = adminQuery;

describe('testBackend()', () => {
  it('names a source for available services and a reason for missing ones', () => {
    const backend = testBackend();
    expect(backend.runId).toMatch(/^[0-9a-z]+_[0-9a-z]+_[0-9a-z]{4}$/);
    for (const entry of [backend.postgres, backend.redis, backend.amqp]) {
      if (entry.available) expect(['env', 'local', 'testcontainers']).toContain(entry.source);
      else expect(entry.reason).toMatch(/To run these tests/);
    }
  });
});

describeWithPostgres('createTestDatabase()', () => {
  const handle = useTestDatabase();
  const extra: TestDatabase[] = [];
  afterAll(async () => {
    for (const database of extra) await database.drop();
  });

  it('gives the file a fresh, empty database of its own', async () => {
    expect(handle.name).toMatch(new RegExp(`^mtp_t_${testBackend().runId}_test_database_[0-9a-z]{6}$`));
    const [row] = await query<{ db: string; tables: number }>(
      handle.url,
      "SELECT current_database() AS db, (SELECT count(*)::int FROM pg_tables WHERE schemaname = 'public') AS tables",
    );
    expect(row).toEqual({ db: handle.name, tables: 0 });
  });

  it('creates a different database on every call and drops it, even with a connection left open', async () => {
    const database = await createTestDatabase({ label: 'Second One' });
    extra.push(database);
    expect(database.name).not.toBe(handle.name);
    expect(database.name).toContain('_second_one_');

    const leftOpen = new pg.Client({ connectionString: database.url });
    leftOpen.on('error', () => {});
    await leftOpen.connect();
    await database.drop();
    await leftOpen.end().catch(() => {});

    const adminUrl = withDatabase(handle.url, 'postgres');
    const rows = await query(adminUrl, 'SELECT 1 FROM pg_database WHERE datname = $1', [database.name]);
    expect(rows).toEqual([]);
  });

  it('skips through the test context when asked to', (context) => {
    // Postgres is available inside describeWithPostgres, so this returns instead of skipping.
    expect(requirePostgres(context).url).toMatch(/^postgres(ql)?:\/\//);
  });

  it('rejects an unknown template name with a message saying what to do', async () => {
    await expect(createTestDatabase({ template: 'never_defined' })).rejects.toThrow(/defineTestTemplate/);
  });

  it('refuses a malformed template name, saying what a name looks like', () => {
    expect(() => defineTestTemplate('Notes-V2', async () => {})).toThrowError(
      expect.objectContaining({
        code: 'TEST_TEMPLATE_NAME',
        message: expect.stringContaining('e.g. "notes"'),
      }),
    );
  });

  it('reports a failing template setup, names the fix, and leaves no half-built database', async () => {
    const broken = defineTestTemplate('broken_setup', async () => {
      throw new Error('relation "missing" does not exist');
    });
    await expect(createTestDatabase({ template: broken })).rejects.toThrowError(
      expect.objectContaining({
        code: 'TEST_TEMPLATE_SETUP_FAILED',
        message: expect.stringMatching(
          /"broken_setup" failed: relation "missing" does not exist\. Fix the setup/,
        ),
      }),
    );
    const leftovers = await query<{ datname: string }>(
      requirePostgres().url,
      "SELECT datname FROM pg_database WHERE datname LIKE $1 AND datname LIKE '%broken_setup'",
      [`mtp_t_${testBackend().runId}_%`],
    );
    expect(leftovers).toEqual([]);
  });
});

describeWithPostgres('createAppRole()', () => {
  const handle = useTestDatabase();

  it('returns a NOSUPERUSER NOBYPASSRLS login that row-level security applies to', async () => {
    await query(
      handle.url,
      `CREATE TABLE notes (tenant_id text NOT NULL DEFAULT current_setting('app.tenant_id', true), body text NOT NULL);
       INSERT INTO notes (tenant_id, body) VALUES ('acme', 'a1'), ('acme', 'a2'), ('globex', 'g1');
       ALTER TABLE notes ENABLE ROW LEVEL SECURITY;
       ALTER TABLE notes FORCE ROW LEVEL SECURITY;
       CREATE POLICY tenant_isolation ON notes
         USING (tenant_id = nullif(current_setting('app.tenant_id', true), ''))
         WITH CHECK (tenant_id = nullif(current_setting('app.tenant_id', true), ''));`,
    );
    const role = await createAppRole(handle.url, { name: 'rls_app' });
    expect(role.name).toBe(`mtp_r_${testBackend().runId}_rls_app`);

    const [attributes] = await query<{ rolsuper: boolean; rolbypassrls: boolean; rolcanlogin: boolean }>(
      handle.url,
      'SELECT rolsuper, rolbypassrls, rolcanlogin FROM pg_roles WHERE rolname = $1',
      [role.name],
    );
    expect(attributes).toEqual({ rolsuper: false, rolbypassrls: false, rolcanlogin: true });

    const client = new pg.Client({ connectionString: role.url });
    await client.connect();
    try {
      const who = await client.query<{ user: string }>('SELECT current_user AS user');
      expect(who.rows[0]!.user).toBe(role.name);
      // No tenant set: the policy fails closed.
      expect((await client.query('SELECT body FROM notes')).rows).toEqual([]);
      await client.query('BEGIN');
      await client.query("SELECT set_config('app.tenant_id', 'acme', true)");
      const scoped = await client.query('SELECT body FROM notes ORDER BY body');
      expect(scoped.rows).toEqual([{ body: 'a1' }, { body: 'a2' }]);
      await expect(
        client.query("INSERT INTO notes (tenant_id, body) VALUES ('globex', 'x')"),
      ).rejects.toThrow(/row-level security/);
      await client.query('ROLLBACK');
    } finally {
      await client.end();
    }
  });

  it('refuses a malformed role name, saying what a name looks like', async () => {
    await expect(createAppRole(handle.url, { name: 'App-Role' })).rejects.toThrowError(
      expect.objectContaining({ code: 'TEST_ROLE_NAME', message: expect.stringContaining('e.g. "app"') }),
    );
  });

  it('refuses to hand out a role that already exists with BYPASSRLS', async (context) => {
    const admin = requirePostgres().url;
    const [me] = await query<{ rolsuper: boolean }>(
      admin,
      'SELECT rolsuper FROM pg_roles WHERE rolname = current_user',
    );
    if (!me?.rolsuper) context.skip('only a superuser can create a BYPASSRLS role to test with');
    // dropped with the run's other roles by the global teardown
    await query(admin, `CREATE ROLE ${quoteIdentifier(`mtp_r_${testBackend().runId}_bypassing`)} BYPASSRLS`);
    await expect(createAppRole(handle.url, { name: 'bypassing' })).rejects.toThrowError(
      expect.objectContaining({
        code: 'TEST_ROLE_BYPASSES_RLS',
        message: expect.stringContaining('DROP ROLE'),
      }),
    );
  });

  it('is idempotent and safe to call concurrently', async () => {
    const roles = await Promise.all([
      createAppRole(handle.url, { name: 'shared_app' }),
      createAppRole(handle.url, { name: 'shared_app' }),
      createAppRole(handle.url, { name: 'shared_app' }),
    ]);
    expect(new Set(roles.map((role) => role.url)).size).toBe(1);
    await query(handle.url, 'CREATE TABLE later (id int)');
    // Default privileges reach tables the admin creates after the grant.
    expect(await query(roles[0]!.url, 'SELECT * FROM later')).toEqual([]);
  });
});
