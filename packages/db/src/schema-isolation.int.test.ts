/**
 * Adversarial (issue #8, item 7): schema mode must not rely on search_path alone, and no mode may run
 * as a role that bypasses row-level security.
 */
import { isMtPaasError, parseTenantId } from '@mt-paas/context';
import { createAppRole, describeWithPostgres, useTestDatabase } from '@mt-paas/test-env';
import { sql } from 'drizzle-orm';
import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { courses } from './__fixtures__/app-schema.js';
import { type ModeEnvironment, openModeEnvironment } from './__fixtures__/environment.js';
import { createTenantDb } from './tenant-db.js';

/** The error (or the driver error drizzle wraps) matches `pattern`. */
const blocked = (pattern: RegExp) => (error: unknown) => {
  const { message, cause } = error as Error & { cause?: Error };
  return pattern.test(`${message} ${cause?.message ?? ''}`);
};

describeWithPostgres('schema mode: a qualified name does not reach another tenant', () => {
  const database = useTestDatabase({ label: 'schema_pin' });
  let environment: ModeEnvironment;
  let admin: pg.Client;
  let databaseName: string;

  beforeAll(async () => {
    environment = await openModeEnvironment('schema', database.url, 'pin');
    admin = new pg.Client({ connectionString: database.url });
    await admin.connect();
    databaseName = (await admin.query('SELECT current_database() AS d')).rows[0].d;
    for (const id of ['sp_a', 'sp_b']) {
      await environment.catalog.tenants.upsert({
        id,
        name: id,
        status: 'active',
        placement: { mode: 'schema' },
      });
      await environment.tenantDb.createTenantStorage(id);
      await environment.tenantDb
        .forTenant(id)
        .run((tx) => tx.insert(courses).values({ title: `${id} secret`, code: `${id}_code` }));
    }
  });
  afterAll(async () => {
    await admin?.end();
    await environment?.close();
  });

  const spellings = [
    '"t_sp_b".courses',
    't_sp_b.courses',
    'T_SP_B.COURSES',
    'T_Sp_B.Courses',
    '"t_sp_b"."courses"',
    't_sp_b . courses',
    '"T_SP_B".courses'.toLowerCase(),
  ];
  const victimRows = async () =>
    (await admin.query('SELECT tenant_id, code, title FROM t_sp_b.courses ORDER BY code')).rows;

  for (const name of spellings) {
    it(`select / insert / update / delete on ${name} from tenant sp_a's unit fail`, async () => {
      const before = await victimRows();
      const attacker = environment.tenantDb.forTenant('sp_a');
      const statements = [
        `SELECT * FROM ${name}`,
        `SELECT count(*) FROM ${name}`,
        `INSERT INTO ${name} (title, code) VALUES ('planted', 'planted_${name.length}')`,
        `INSERT INTO ${name} (tenant_id, title, code) VALUES ('sp_b', 'planted', 'planted_b_${name.length}')`,
        `UPDATE ${name} SET title = 'defaced'`,
        `DELETE FROM ${name}`,
      ];
      for (const statement of statements) {
        await expect(
          attacker.run((tx) => tx.execute(sql.raw(statement))),
          statement,
        ).rejects.toSatisfy(blocked(/row-level security|mt_paas_tenant_pin/));
      }
      expect(await victimRows()).toEqual(before);
      expect(before).toEqual([{ tenant_id: 'sp_b', code: 'sp_b_code', title: 'sp_b secret' }]);
    });
  }

  it('also with the database-qualified name and through a CTE or subquery', async () => {
    const attacker = environment.tenantDb.forTenant('sp_a');
    for (const statement of [
      `SELECT * FROM "${databaseName}".t_sp_b.courses`,
      'WITH stolen AS (SELECT * FROM t_sp_b.courses) SELECT * FROM stolen',
      'SELECT (SELECT title FROM t_sp_b.courses LIMIT 1)',
      "INSERT INTO courses (title, code) SELECT title, code || '_copy' FROM t_sp_b.courses",
    ]) {
      await expect(
        attacker.run((tx) => tx.execute(sql.raw(statement))),
        statement,
      ).rejects.toSatisfy(blocked(/mt_paas_tenant_pin/));
    }
    // Its own schema keeps working, unqualified and qualified.
    const own = await attacker.run((tx) =>
      tx.execute<{ code: string }>(sql.raw('SELECT code FROM t_sp_a.courses')),
    );
    expect((own as unknown as { rows: unknown[] }).rows).toEqual([{ code: 'sp_a_code' }]);
  });

  it('refuses a SUPERUSER, a BYPASSRLS role and a member of one in schema mode', async () => {
    const bypass = await createAppRole(database.url, { name: 'pin_bypass', privileges: 'none' });
    await admin.query(`ALTER ROLE "${bypass.name}" BYPASSRLS`);
    const member = await createAppRole(database.url, { name: 'pin_member', privileges: 'none' });
    await admin.query(`GRANT "${bypass.name}" TO "${member.name}"`);
    for (const [url, pattern] of [
      [database.url, /SUPERUSER/],
      [bypass.url, /BYPASSRLS/],
      [member.url, /member of "[^"]*pin_bypass"/],
    ] as const) {
      await expect(
        createTenantDb({ mode: 'schema', catalog: environment.catalog, connectionString: url }),
      ).rejects.toSatisfy(
        (error) => isMtPaasError(error, 'CONFIG_INVALID') && pattern.test((error as Error).message),
      );
      if (url !== database.url) {
        await expect(
          createTenantDb({ mode: 'row', catalog: environment.catalog, connectionString: url }),
        ).rejects.toSatisfy((error) => isMtPaasError(error, 'CONFIG_INVALID'));
      }
    }
  });
});

describeWithPostgres('database mode refuses a bypassing app role', () => {
  const database = useTestDatabase({ label: 'db_bypass' });
  let environment: ModeEnvironment;
  beforeAll(async () => {
    environment = await openModeEnvironment('database', database.url, 'dbb');
    await environment.catalog.tenants.upsert({
      id: 'dbb_a',
      name: 'a',
      status: 'active',
      placement: { mode: 'database' },
    });
    await environment.tenantDb.createTenantStorage('dbb_a');
  });
  afterAll(async () => {
    await environment?.tenantDb.dropTenantStorage('dbb_a').catch(() => {});
    await environment?.close();
  });

  const asRole = async (url: string, tenantId: string) => {
    const target = new URL(await environment.tenantDb.databaseUrlOf(parseTenantId(tenantId)));
    const role = new URL(url);
    target.username = role.username;
    target.password = role.password;
    return target.toString();
  };

  it('on the first unit of a tenant database, as a superuser or a member of a BYPASSRLS role', async () => {
    const admin = new pg.Client({ connectionString: database.url });
    await admin.connect();
    try {
      const bypass = await createAppRole(database.url, { name: 'dbb_bypass', privileges: 'none' });
      await admin.query(`ALTER ROLE "${bypass.name}" BYPASSRLS`);
      const member = await createAppRole(database.url, { name: 'dbb_member', privileges: 'none' });
      await admin.query(`GRANT "${bypass.name}" TO "${member.name}"`);
      for (const url of [database.url, member.url]) {
        const tenantDb = await createTenantDb({
          mode: 'database',
          catalog: environment.catalog,
          connectionString: url,
          // The tenant's database, connected to as `url`'s role.
          database: { urlTemplate: await asRole(url, 'dbb_a') },
        });
        try {
          await expect(tenantDb.forTenant('dbb_a').run((tx) => tx.select().from(courses))).rejects.toSatisfy(
            (error) => isMtPaasError(error, 'CONFIG_INVALID'),
          );
        } finally {
          await tenantDb.close();
        }
      }
      // The app role itself passes.
      expect(await environment.tenantDb.forTenant('dbb_a').run((tx) => tx.select().from(courses))).toEqual(
        [],
      );
    } finally {
      await admin.end();
    }
  });
});
