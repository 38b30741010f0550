import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isMtPaasError } from '@mt-paas/context';
import { describeWithPostgres, useTestDatabase } from '@mt-paas/test-env';
import { sql } from 'drizzle-orm';
import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { courses } from './__fixtures__/app-schema.js';
import { FIXTURE_MIGRATIONS, type ModeEnvironment, openModeEnvironment } from './__fixtures__/environment.js';
import { createTenantDb, type TenantDb } from './tenant-db.js';
import type { MigrationProgress } from './tenant-migrations.js';

/** A copy of the fixture migrations plus extra migrations (tag → SQL). */
function migrationsWith(extra: Record<string, string>): string {
  const folder = mkdtempSync(join(tmpdir(), 'mtp-db-migrations-'));
  cpSync(FIXTURE_MIGRATIONS, folder, { recursive: true });
  const journalPath = join(folder, 'meta', '_journal.json');
  const journal = JSON.parse(readFileSync(journalPath, 'utf8')) as {
    entries: Array<Record<string, unknown>>;
  };
  for (const [tag, text] of Object.entries(extra)) {
    writeFileSync(join(folder, `${tag}.sql`), text);
    journal.entries.push({
      idx: journal.entries.length,
      version: '7',
      when: Date.now(),
      tag,
      breakpoints: true,
    });
  }
  writeFileSync(journalPath, JSON.stringify(journal));
  return folder;
}

describeWithPostgres('tenant migrations (schema mode)', () => {
  const database = useTestDatabase({ label: 'migrations' });
  let environment: ModeEnvironment;
  let admin: pg.Client;
  const folders: string[] = [];
  const tenantIds = ['mig_a', 'mig_b', 'mig_c', 'mig_d'];
  const extraDbs: TenantDb[] = [];
  const withFolder = async (folder: string) => {
    folders.push(folder);
    const tenantDb = await createTenantDb({
      mode: 'schema',
      catalog: environment.catalog,
      connectionString: environment.appUrl,
      adminConnectionString: database.url,
      migrationsFolder: folder,
    });
    extraDbs.push(tenantDb);
    return tenantDb;
  };

  beforeAll(async () => {
    environment = await openModeEnvironment('schema', database.url, 'mig');
    admin = new pg.Client({ connectionString: database.url });
    await admin.connect();
    for (const id of tenantIds) {
      await environment.catalog.tenants.upsert({
        id,
        name: id,
        status: 'active',
        placement: { mode: 'schema' },
      });
    }
  });
  afterAll(async () => {
    for (const tenantDb of extraDbs) await tenantDb.close();
    await admin?.end();
    await environment?.close();
    for (const folder of folders) rmSync(folder, { recursive: true, force: true });
  });

  it('creates a tenant schema with its migrations, idempotently', async () => {
    expect(await environment.tenantDb.createTenantStorage('mig_a')).toEqual(['0000_app_init']);
    expect(await environment.tenantDb.createTenantStorage('mig_a')).toEqual([]);
    expect(await environment.tenantDb.schemaOf('mig_a' as never)).toBe('t_mig_a');
    await environment.tenantDb
      .forTenant('mig_a')
      .run((tx) => tx.insert(courses).values({ title: 'A', code: 'a' }));
    const { rows } = await admin.query('SELECT tenant_id, title FROM t_mig_a.courses');
    expect(rows).toEqual([{ tenant_id: 'mig_a', title: 'A' }]);
  });

  it('migrates only the tenants asked for, then resumes with the rest', async () => {
    const events: MigrationProgress[] = [];
    const first = await environment.tenantDb.migrateTenants({
      only: ['mig_b'],
      onProgress: (event) => events.push(event),
    });
    expect(first.succeeded).toEqual([{ target: 'mig_b', applied: ['0000_app_init'] }]);
    expect(events.map((event) => event.state)).toEqual(['started', 'done']);
    const rest = await environment.tenantDb.migrateTenants({ concurrency: 3 });
    const applied = Object.fromEntries(rest.succeeded.map((entry) => [entry.target, entry.applied]));
    expect(applied).toMatchObject({
      mig_a: [],
      mig_b: [],
      mig_c: ['0000_app_init'],
      mig_d: ['0000_app_init'],
    });
    expect(rest.failed).toEqual([]);
    const { rows } = await admin.query(
      "SELECT tenant_id, version FROM mt_paas.tenant_migrations WHERE tenant_id LIKE 'mig_%' ORDER BY 1",
    );
    expect(rows).toEqual(tenantIds.map((id) => ({ tenant_id: id, version: '0000_app_init' })));
  });

  it('reports one tenant failing without stopping the others', async () => {
    await admin.query('DROP TABLE t_mig_c.courses CASCADE');
    const tenantDb = await withFolder(
      migrationsWith({
        '0001_levels': 'ALTER TABLE "courses" ADD COLUMN "level" integer DEFAULT 1 NOT NULL;',
      }),
    );
    const events: MigrationProgress[] = [];
    const result = await tenantDb.migrateTenants({
      concurrency: 2,
      onProgress: (event) => events.push(event),
    });
    expect(result.total).toBe(4);
    expect(result.failed.map((entry) => entry.target)).toEqual(['mig_c']);
    expect(result.succeeded.map((entry) => entry.target).sort()).toEqual(['mig_a', 'mig_b', 'mig_d']);
    for (const entry of result.succeeded) expect(entry.applied).toEqual(['0001_levels']);
    expect(events.filter((event) => event.state === 'failed')).toHaveLength(1);
    expect(events.at(-1)?.finished).toBe(4);
    const levels = await tenantDb
      .forTenant('mig_a')
      .run((tx) => tx.execute(sql`select level from courses`))
      .then((result) => (result as unknown as { rows: unknown[] }).rows);
    expect(levels).toEqual([{ level: 1 }]);

    // Repair the broken tenant: drop its schema and migrate again — only it gets work.
    await tenantDb.dropTenantStorage('mig_c');
    const repaired = await tenantDb.migrateTenants();
    expect(repaired.failed).toEqual([]);
    expect(Object.fromEntries(repaired.succeeded.map((entry) => [entry.target, entry.applied]))).toEqual({
      mig_a: [],
      mig_b: [],
      mig_c: ['0000_app_init', '0001_levels'],
      mig_d: [],
    });
  });

  it('refuses a migration edited after it was applied', async () => {
    const tenantDb = await withFolder(
      migrationsWith({
        '0001_levels': 'ALTER TABLE "courses" ADD COLUMN "level" integer DEFAULT 2 NOT NULL;',
      }),
    );
    const result = await tenantDb.migrateTenants({ only: ['mig_a'] });
    expect(result.failed).toHaveLength(1);
    expect(isMtPaasError(result.failed[0]!.error, 'CONFIG_INVALID')).toBe(true);
    expect(String((result.failed[0]!.error as Error).message)).toMatch(/changed after it was applied/);
  });

  it('drops a tenant schema', async () => {
    await environment.tenantDb.dropTenantStorage('mig_d');
    const { rows } = await admin.query("SELECT 1 FROM pg_namespace WHERE nspname = 't_mig_d'");
    expect(rows).toEqual([]);
  });

  it('names tenant schemas with the configured prefix', async () => {
    const tenantDb = await createTenantDb({
      mode: 'schema',
      catalog: environment.catalog,
      connectionString: environment.appUrl,
      adminConnectionString: database.url,
      migrationsFolder: FIXTURE_MIGRATIONS,
      schemaPrefix: 'tenant_',
    });
    extraDbs.push(tenantDb);
    await environment.catalog.tenants.upsert({ id: 'pre_1', name: 'Prefixed', status: 'active' });
    expect(await tenantDb.schemaOf('pre_1' as never)).toBe('tenant_pre_1');
    await tenantDb.createTenantStorage('pre_1');
    await tenantDb.forTenant('pre_1').run((tx) => tx.insert(courses).values({ title: 'P', code: 'p' }));
    const { rows } = await admin.query('SELECT tenant_id FROM tenant_pre_1.courses');
    expect(rows).toEqual([{ tenant_id: 'pre_1' }]);
  });

  it('keeps KELI-Tutor-style plain schema names through a mapping', async () => {
    await environment.catalog.tenants.upsert({ id: 'legacy_1', name: 'Legacy', status: 'active' });
    const tenantDb = await createTenantDb({
      mode: 'schema',
      catalog: environment.catalog,
      connectionString: environment.appUrl,
      adminConnectionString: database.url,
      migrationsFolder: FIXTURE_MIGRATIONS,
      schemaNames: { legacy_1: 'legacy_1' },
    });
    extraDbs.push(tenantDb);
    await tenantDb.createTenantStorage('legacy_1');
    await tenantDb.forTenant('legacy_1').run((tx) => tx.insert(courses).values({ title: 'L', code: 'l' }));
    const { rows } = await admin.query('SELECT tenant_id FROM legacy_1.courses');
    expect(rows).toEqual([{ tenant_id: 'legacy_1' }]);
  });
});
