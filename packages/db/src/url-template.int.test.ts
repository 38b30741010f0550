import { describeWithPostgres, testBackend, useTestDatabase, withDatabase } from '@mt-paas/test-env';
import { sql } from 'drizzle-orm';
import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { FIXTURE_MIGRATIONS, type ModeEnvironment, openModeEnvironment } from './__fixtures__/environment.js';
import { createTenantDb, type TenantDb } from './tenant-db.js';

const currentDatabase = async (tenantDb: TenantDb, tenantId: string) =>
  tenantDb.forTenant(tenantId).run(async (tx) => {
    const result = await tx.execute(
      sql`select current_database() as db, current_setting('app.tenant_id', true) as tenant`,
    );
    return (result as unknown as { rows: Array<{ db: string; tenant: string }> }).rows[0]!;
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
    await templated.dropTenantStorage('dock');
    const left = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [`${prefix}placed_dock`]);
    expect(left.rows).toEqual([]);
  });
});
