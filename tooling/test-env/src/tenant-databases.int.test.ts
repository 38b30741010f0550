import { expect, it } from 'vitest';
import {
  adminQuery,
  describeWithPostgres,
  quoteIdentifier,
  tenantDatabases,
  testBackend,
  useTestDatabase,
} from './index.js';

describeWithPostgres('tenantDatabases()', () => {
  const db = useTestDatabase({ label: 'tenant_dbs' });

  it('names tenant databases after the run, lists and drops only its own (even with a session open)', async () => {
    const tenants = tenantDatabases(db.url, 'tdb');
    const other = tenantDatabases(db.url, 'tdb_other');
    expect(tenants.prefix).toBe(`mtp_t_${testBackend().runId}_tdb__`);
    const template = new URL(tenants.urlTemplate.replace('{tenant_id}', 'acme'));
    expect(template.pathname).toBe(`/${tenants.prefix}acme`);
    expect(tenants.urlTemplate).toContain('{tenant_id}');

    for (const name of [`${tenants.prefix}acme`, `${tenants.prefix}globex`, `${other.prefix}acme`]) {
      await adminQuery(db.url, `CREATE DATABASE ${quoteIdentifier(name)}`);
    }
    expect(await tenants.list()).toEqual([`${tenants.prefix}acme`, `${tenants.prefix}globex`]);

    // an open session on a tenant database (a pool the test forgot) does not stop the drop
    const pg = (await import('pg')).default;
    const open = new pg.Client({ connectionString: tenants.urlTemplate.replace('{tenant_id}', 'acme') });
    open.on('error', () => {});
    await open.connect();
    expect(await tenants.drop()).toEqual([`${tenants.prefix}acme`, `${tenants.prefix}globex`]);
    await open.end().catch(() => {});
    expect(await tenants.list()).toEqual([]);
    expect(await other.list()).toEqual([`${other.prefix}acme`]);
    expect(await other.drop()).toEqual([`${other.prefix}acme`]);
  });

  it('refuses a label that would make a bad database name', () => {
    expect(() => tenantDatabases(db.url, 'Bad-Label')).toThrow(/lower-case letters/);
    expect(() => tenantDatabases(db.url, 'tdb_')).toThrow(/lower-case letters/);
    expect(() => tenantDatabases(db.url, 'a__b')).toThrow(/lower-case letters/);
    expect(() => tenantDatabases(db.url, 'x'.repeat(13))).toThrow(
      expect.objectContaining({ code: 'TEST_DATABASE_LABEL' }),
    );
  });

  it('adminQuery returns the rows and closes its client', async () => {
    const [row] = await adminQuery<{ answer: number }>(db.url, 'SELECT $1::int AS answer', [42]);
    expect(row).toEqual({ answer: 42 });
    await expect(adminQuery(db.url, 'SELECT * FROM no_such_table')).rejects.toThrow(/no_such_table/);
  });
});
