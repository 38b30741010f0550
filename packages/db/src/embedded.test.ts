import { isMtPaasError } from '@mt-paas/context';
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { courses } from './__fixtures__/app-schema.js';
import { FIXTURE_MIGRATIONS } from './__fixtures__/environment.js';
import { type Catalog, createCatalog } from './catalog.js';
import { checkCatalogGate } from './catalog-gate.js';
import { assertIsolation, testIsolationMode } from './isolation-kit.js';
import { createTenantDb } from './tenant-db.js';

describe('embedded PGlite', () => {
  let catalog: Catalog;
  beforeAll(async () => {
    catalog = await createCatalog({ dataDir: 'memory' });
    expect(catalog.driver.kind).toBe('pglite');
    await catalog.migrate();
  }, 60_000);
  afterAll(async () => {
    await catalog?.close();
  });

  it('keeps the catalog', async () => {
    const tenant = await catalog.tenants.upsert({ id: 'univ_8', name: 'Univ 8', status: 'active' });
    expect(tenant.status).toBe('active');
    expect(await catalog.migrate()).toEqual([]);
  });

  it('refuses database mode with CONFIG_INVALID', async () => {
    await expect(createTenantDb({ mode: 'database', catalog })).rejects.toSatisfy(
      (error) => isMtPaasError(error, 'CONFIG_INVALID') && /one database only/.test((error as Error).message),
    );
  });

  it('does not commit a transaction whose failed statement was swallowed', async () => {
    const tenantDb = await createTenantDb({ mode: 'row', catalog, migrationsFolder: FIXTURE_MIGRATIONS });
    await tenantDb.migrateTenants();
    await catalog.tenants.upsert({ id: 'swallow_1', name: 'S', status: 'active' });
    const scope = tenantDb.forTenant('swallow_1');
    await expect(
      scope.run(async (tx) => {
        await tx.insert(courses).values({ title: 'Half', code: 'half' });
        await tx.execute(sql`select 1/0`).catch(() => {});
        return 'returned normally';
      }),
    ).rejects.toSatisfy((error) => isMtPaasError(error, 'INTERNAL'));
    expect(await scope.run((tx) => tx.select().from(courses))).toEqual([]);
    await tenantDb.close();
  }, 60_000);

  for (const mode of ['row', 'schema'] as const) {
    it(`isolates 20 tenants in ${mode} mode`, async () => {
      const tenantDb = await createTenantDb({ mode, catalog, migrationsFolder: FIXTURE_MIGRATIONS });
      if (mode === 'row') await tenantDb.migrateTenants();
      const report = await testIsolationMode({
        tenantDb,
        table: courses,
        row: (tenantId, index) => ({ title: `${tenantId} ${index}`, code: `c${index}` }),
        update: { seats: 3 },
        tenantPrefix: `emb_${mode}_`,
      });
      assertIsolation(report);
      expect(report.ok).toBe(true);
      expect(await checkCatalogGate(catalog.driver, { appRole: 'mt_paas_app' })).toEqual([]);
      await tenantDb.close();
    }, 120_000);
  }
});
