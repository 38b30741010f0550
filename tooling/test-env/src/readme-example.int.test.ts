// The example of README.md, kept runnable: if this file changes, update the README (and vice versa).
import pg from 'pg';
import { expect, it } from 'vitest';
import { createAppRole, defineTestTemplate, describeWithPostgres, useTestDatabase } from './index.js';

// Built once per run (e.g. your migrations), then cloned for every file that uses it.
const notesSchema = defineTestTemplate('notes', async (url) => {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  await client.query(`
    CREATE TABLE notes (tenant_id text NOT NULL DEFAULT current_setting('app.tenant_id', true), body text);
    ALTER TABLE notes ENABLE ROW LEVEL SECURITY;
    ALTER TABLE notes FORCE ROW LEVEL SECURITY;
    CREATE POLICY by_tenant ON notes USING (tenant_id = nullif(current_setting('app.tenant_id', true), ''));`);
  await client.end();
});

describeWithPostgres('notes', () => {
  const db = useTestDatabase({ template: notesSchema }); // this file's own database, dropped afterwards

  it('hides rows from a session without a tenant', async () => {
    const app = await createAppRole(db.url); // NOSUPERUSER NOBYPASSRLS: row-level security really applies
    const client = new pg.Client({ connectionString: app.url });
    await client.connect();
    await client.query(
      "BEGIN; SELECT set_config('app.tenant_id', 'acme', true); INSERT INTO notes (body) VALUES ('hi'); COMMIT",
    );
    expect((await client.query('SELECT body FROM notes')).rows).toEqual([]); // no tenant set: nothing
    await client.end();
  });
});
