import {
  createAppRole,
  describeWithPostgres,
  quoteIdentifier,
  testBackend,
  useTestDatabase,
  withDatabase,
} from '@mt-paas/test-env';
import { sql } from 'drizzle-orm';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FIXTURE_MIGRATIONS, type ModeEnvironment, openModeEnvironment } from './__fixtures__/environment.js';
import { placementAppPassword, placementAppUrl } from './app-role.js';
import { createTenantDb, type TenantDb } from './tenant-db.js';

const currentDatabase = async (tenantDb: TenantDb, tenantId: string) =>
  tenantDb.forTenant(tenantId).run(async (tx) => {
    const result = await tx.execute(
      sql`select current_database() as db, current_setting('app.tenant_id', true) as tenant`,
    );
    return (result as unknown as { rows: Array<{ db: string; tenant: string }> }).rows[0]!;
  });

const currentUser = async (tenantDb: TenantDb, tenantId: string) =>
  tenantDb.forTenant(tenantId).run(async (tx) => {
    const result = await tx.execute(sql`select current_user::text as user`);
    return (result as unknown as { rows: Array<{ user: string }> }).rows[0]!.user;
  });

describeWithPostgres('database.tenant.url_template with {tenant_id} (seed 001 spelling)', () => {
  const database = useTestDatabase({ label: 'urltpl' });
  let environment: ModeEnvironment;
  let admin: pg.Client;
  let templated: TenantDb;
  const prefix = `mtp_t_${testBackend().runId}_ut_`;

  beforeAll(async () => {
    environment = await openModeEnvironment('database', database.url, 'ut');
    // What @mt-paas/config hands over for `url_template: postgresql://app@host:5432/tenant_{tenant_id}`.
    templated = await createTenantDb({
      mode: 'database',
      catalog: environment.catalog,
      adminConnectionString: database.url,
      migrationsFolder: FIXTURE_MIGRATIONS,
      database: {
        urlTemplate: withDatabase(environment.appUrl, `${prefix}tenant_{tenant_id}`)
          .replaceAll('%7B', '{')
          .replaceAll('%7D', '}'),
        // tenants placed by URL on this (shared test) server: units connect as the run's app role there
        placementAppRole: environment.appRole,
        connectionsPerTenant: 1,
      },
      appRole: environment.appRole,
    });
    admin = new pg.Client({ connectionString: database.url });
    await admin.connect();
  });
  afterAll(async () => {
    await admin?.end();
    await templated?.close();
    await environment?.close();
  });

  it('substitutes {tenant_id}: creates, migrates, scopes and drops the database the template names', async () => {
    await environment.catalog.tenants.upsert({
      id: 'acme',
      name: 'Acme',
      status: 'active',
      placement: { mode: 'database' },
    });
    expect(await templated.databaseUrlOf('acme' as never)).toContain(`/${prefix}tenant_acme`);
    expect(await templated.databaseUrlOf('acme' as never)).not.toContain('{tenant_id}');
    expect(await templated.createTenantStorage('acme')).toEqual(['0000_app_init']);
    expect(await currentDatabase(templated, 'acme')).toEqual({
      db: `${prefix}tenant_acme`,
      tenant: 'acme',
    });
    // nothing was created under the default prefix
    const stray = await admin.query('SELECT datname FROM pg_database WHERE datname = $1', [
      `mtp_t_${testBackend().runId}_ut_acme`,
    ]);
    expect(stray.rows).toEqual([]);
    await templated.dropTenantStorage('acme');
    const left = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [`${prefix}tenant_acme`]);
    expect(left.rows).toEqual([]);
  });

  it('creates a placement-URL tenant database on the server the URL names (docker placement)', async () => {
    const url = withDatabase(database.url, `${prefix}placed_dock`);
    await environment.catalog.tenants.upsert({
      id: 'dock',
      name: 'Docker tenant',
      status: 'active',
      placement: { mode: 'docker', location: url },
    });
    expect(await templated.createTenantStorage('dock')).toEqual(['0000_app_init']);
    expect(await currentDatabase(templated, 'dock')).toEqual({
      db: `${prefix}placed_dock`,
      tenant: 'dock',
    });
    // units of work connect as the placement app role (not as the URL's owner), which RLS applies to
    const appUrl = await templated.databaseUrlOf('dock' as never);
    expect(new URL(appUrl).username).toBe(environment.appRole);
    expect(appUrl).toBe(placementAppUrl(url, environment.appRole));
    expect(await currentUser(templated, 'dock')).toBe(environment.appRole);
    const owner = new pg.Client({ connectionString: url });
    await owner.connect();
    try {
      const { rows } = await owner.query<{ forced: boolean; granted: boolean }>(
        `SELECT c.relforcerowsecurity AS forced,
                has_table_privilege($1, 'public.courses', 'INSERT') AS granted
           FROM pg_class c WHERE c.oid = 'public.courses'::regclass`,
        [environment.appRole],
      );
      expect(rows).toEqual([{ forced: true, granted: true }]);
    } finally {
      await owner.end();
    }
    await templated.dropTenantStorage('dock');
    const left = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [`${prefix}placed_dock`]);
    expect(left.rows).toEqual([]);
  });

  describe('a placement app role that would bypass row-level security is refused', () => {
    let superRole: string;
    let bypassRole: string;
    let memberRole: string;
    beforeAll(async () => {
      superRole = (await createAppRole(database.url, { name: 'ut_psuper', privileges: 'none' })).name;
      bypassRole = (await createAppRole(database.url, { name: 'ut_pbypass', privileges: 'none' })).name;
      memberRole = (await createAppRole(database.url, { name: 'ut_pmember', privileges: 'none' })).name;
      await admin.query(`ALTER ROLE ${quoteIdentifier(superRole)} SUPERUSER`);
      await admin.query(`ALTER ROLE ${quoteIdentifier(bypassRole)} BYPASSRLS`);
      await admin.query(`GRANT ${quoteIdentifier(superRole)} TO ${quoteIdentifier(memberRole)}`);
    });

    for (const [variant, what] of [
      ['super', /which is a SUPERUSER/],
      ['bypass', /which is BYPASSRLS/],
      ['member', /which is a member of "mtp_r_.*_ut_psuper"/],
    ] as const) {
      it(`refuses units of a placement whose app role is ${variant === 'member' ? 'a member of a superuser' : variant === 'super' ? 'a SUPERUSER' : 'BYPASSRLS'}, and writes nothing`, async () => {
        const role = { super: superRole, bypass: bypassRole, member: memberRole }[variant];
        const tenantDb = await createTenantDb({
          mode: 'database',
          catalog: environment.catalog,
          adminConnectionString: database.url,
          migrationsFolder: FIXTURE_MIGRATIONS,
          database: { urlTemplate: environment.appUrl, placementAppRole: role, connectionsPerTenant: 1 },
          appRole: environment.appRole,
        });
        const id = `refuse_${variant}`;
        const url = withDatabase(database.url, `${prefix}placed_${variant}`);
        try {
          await environment.catalog.tenants.upsert({
            id,
            name: id,
            status: 'active',
            placement: { mode: 'docker', location: url },
          });
          // the storage is created and migrated by the owner; the role exists, so it is left as it is
          expect(await tenantDb.createTenantStorage(id)).toEqual(['0000_app_init']);
          for (let attempt = 0; attempt < 2; attempt += 1) {
            const refusal = await tenantDb
              .forTenant(id)
              .run((tx) => tx.execute(sql`insert into courses (title, code) values ('x', 'x')`))
              .catch((error: unknown) => error);
            expect(refusal).toMatchObject({ code: 'CONFIG_INVALID' });
            expect(String((refusal as Error).message)).toMatch(/database mode refuses to run/);
            expect(String((refusal as Error).message)).toMatch(what);
          }
          const owner = new pg.Client({ connectionString: url });
          await owner.connect();
          try {
            expect((await owner.query('SELECT count(*)::int AS n FROM courses')).rows).toEqual([{ n: 0 }]);
          } finally {
            await owner.end();
          }
        } finally {
          await tenantDb.dropTenantStorage(id).catch(() => {});
          await tenantDb.close();
        }
      });
    }

    it('refuses a placement URL whose owner is the app role itself', async () => {
      const ownerName = decodeURIComponent(new URL(database.url).username);
      const tenantDb = await createTenantDb({
        mode: 'database',
        catalog: environment.catalog,
        adminConnectionString: database.url,
        migrationsFolder: FIXTURE_MIGRATIONS,
        database: { urlTemplate: environment.appUrl, placementAppRole: ownerName, connectionsPerTenant: 1 },
        appRole: environment.appRole,
      });
      try {
        const url = withDatabase(database.url, `${prefix}placed_self`);
        await environment.catalog.tenants.upsert({
          id: 'refuse_self',
          name: 'Self',
          status: 'active',
          placement: { mode: 'docker', location: url },
        });
        await expect(tenantDb.createTenantStorage('refuse_self')).rejects.toMatchObject({
          code: 'CONFIG_INVALID',
          message: expect.stringMatching(/the owner of the tenant tables must be another role/),
        });
        await expect(tenantDb.databaseUrlOf('refuse_self' as never)).rejects.toMatchObject({
          code: 'CONFIG_INVALID',
        });
        await expect(tenantDb.forTenant('refuse_self').run(() => 1)).rejects.toMatchObject({
          code: 'CONFIG_INVALID',
        });
        const made = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [
          `${prefix}placed_self`,
        ]);
        expect(made.rows).toEqual([]);
      } finally {
        await tenantDb.close();
      }
    });
  });

  it('derives the placement app password from the owner password (stable, role-bound, none without one)', () => {
    const owner = 'postgresql://tenant:s3cret-owner-password@db.example:5432/t_x';
    const derived = placementAppPassword(owner, 'app');
    expect(derived).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(placementAppPassword(owner, 'app')).toBe(derived);
    expect(placementAppPassword(owner, 'other')).not.toBe(derived);
    expect(placementAppPassword(owner.replace('s3cret', 'S3cret'), 'app')).not.toBe(derived);
    expect(placementAppPassword('postgresql://tenant@db.example:5432/t_x', 'app')).toBeUndefined();
    expect(placementAppUrl(owner, 'app')).toBe(`postgresql://app:${derived}@db.example:5432/t_x`);
    expect(() => placementAppUrl(owner, 'tenant')).toThrow(/must be another role/);
    expect(() => placementAppUrl(owner, 'bad role"')).toThrow();
  });
});
