import { isMtPaasError, parseTenantId } from '@mt-paas/context';
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { courses } from './__fixtures__/app-schema.js';
import { FIXTURE_MIGRATIONS } from './__fixtures__/environment.js';
import { fetchLeakedCursor, leaveSessionState, probeSession } from './__fixtures__/session-leaks.js';
import { type Catalog, createCatalog } from './catalog.js';
import { checkCatalogGate } from './catalog-gate.js';
import { createPgliteDriver, type PgliteInstance } from './driver.js';
import { assertIsolation, testIsolationMode } from './isolation-kit.js';
import { createTenantDb, type TenantDb } from './tenant-db.js';
import { WRITE_FREEZE_KEY } from './write-freeze.js';

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

  it('has the port_blocks table of the catalog migrations (one block per tenant, gone with its tenant)', async () => {
    await catalog.tenants.upsert({ id: 'pb_embedded', name: 'PB', placement: { mode: 'docker' } });
    const insert = (block: number) =>
      catalog.driver.query(
        'INSERT INTO mt_paas.port_blocks (block, tenant_id, first_port, last_port) VALUES ($1, $2, 10200, 10299)',
        [block, 'pb_embedded'],
      );
    await insert(0);
    await expect(insert(1)).rejects.toThrow(/port_blocks_tenant_id_unique/);
    await catalog.tenants.remove('pb_embedded');
    expect((await catalog.driver.query('SELECT block FROM mt_paas.port_blocks')).rows).toEqual([]);
  });

  it('refuses database mode with CONFIG_INVALID', async () => {
    await expect(createTenantDb({ mode: 'database', catalog })).rejects.toSatisfy(
      (error) => isMtPaasError(error, 'CONFIG_INVALID') && /one database only/.test((error as Error).message),
    );
  });

  it('refuses writes of a tenant in a move window with 503 + retry-after, reads go on (schema mode)', async () => {
    const tenantDb = await createTenantDb({ mode: 'schema', catalog, migrationsFolder: FIXTURE_MIGRATIONS });
    await catalog.tenants.upsert({ id: 'frozen_1', name: 'F', status: 'active' });
    await tenantDb.createTenantStorage('frozen_1');
    const scope = tenantDb.forTenant('frozen_1');
    await scope.run((tx) => tx.insert(courses).values({ title: 'Before', code: 'before' }));
    await catalog.tenants.update('frozen_1', {
      metadata: { [WRITE_FREEZE_KEY]: { reason: 'move', retryAfterSeconds: 3 } },
    });
    tenantDb.forget('frozen_1');
    const refusal = await scope
      .run((tx) => tx.insert(courses).values({ title: 'During', code: 'during' }))
      .catch((error: unknown) => error);
    expect(refusal).toMatchObject({ code: 'SERVICE_UNAVAILABLE', httpStatus: 503, retryAfterSeconds: 3 });
    expect((refusal as { headers?: Record<string, string> }).headers).toEqual({ 'retry-after': '3' });
    expect(await scope.run((tx) => tx.select({ code: courses.code }).from(courses))).toEqual([
      { code: 'before' },
    ]);
    await catalog.tenants.update('frozen_1', { metadata: {} });
    tenantDb.forget('frozen_1');
    await scope.run((tx) => tx.insert(courses).values({ title: 'After', code: 'after' }));
    expect(await scope.run((tx) => tx.select().from(courses))).toHaveLength(2);
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

  describe('role changes, rescoping and session state (issue #8, items 6, 9, 10)', () => {
    let tenantDb: TenantDb;
    beforeAll(async () => {
      tenantDb = await createTenantDb({ mode: 'row', catalog, migrationsFolder: FIXTURE_MIGRATIONS });
      await tenantDb.migrateTenants();
      for (const id of ['emb_a', 'emb_b']) {
        await catalog.tenants.upsert({ id, name: id, status: 'active' });
        await tenantDb
          .forTenant(id)
          .run((tx) => tx.insert(courses).values({ title: `${id} secret`, code: `${id}_code` }));
      }
    }, 60_000);
    afterAll(async () => {
      await tenantDb?.close();
    });

    const escapes = [
      'RESET ROLE',
      'SET ROLE NONE',
      'SET ROLE postgres',
      'SET LOCAL ROLE postgres',
      "SELECT set_config('role', 'none', true)",
      "SELECT set_config('role', 'postgres', false)",
      'SET SESSION AUTHORIZATION postgres',
      'SET SESSION AUTHORIZATION DEFAULT',
      'RESET SESSION AUTHORIZATION',
      "SELECT set_config('app.tenant_id', 'emb_b', true)",
      "SELECT set_config('app.tenant_id', 'emb_b', false)",
      'RESET ALL',
    ];
    for (const statement of escapes) {
      it(`a unit that runs "${statement}" fails before its next statement and commits nothing`, async () => {
        let seen: Array<{ tenantId: string }> | undefined;
        await expect(
          tenantDb.forTenant('emb_a').run(async (tx) => {
            await tx
              .insert(courses)
              .values({ title: 'written before', code: `before_${escapes.indexOf(statement)}` });
            await tx.execute(sql.raw(statement));
            seen = await tx.select().from(courses);
            return seen;
          }),
        ).rejects.toSatisfy(
          (error) =>
            isMtPaasError(error, 'INTERNAL') && /changed its own scope/.test((error as Error).message),
        );
        expect(seen).toBeUndefined();
        // Nothing committed, the other tenant untouched, the catalog (PGlite's superuser session) unharmed.
        expect(
          (await tenantDb.forTenant('emb_a').run((tx) => tx.select().from(courses))).map((row) => row.code),
        ).toEqual(['emb_a_code']);
        expect(
          (await tenantDb.forTenant('emb_b').run((tx) => tx.select().from(courses))).map((row) => row.code),
        ).toEqual(['emb_b_code']);
        const { rows } = await catalog.driver.query<{ user: string; role: string }>(
          'SELECT session_user::text AS user, current_user::text AS role',
        );
        expect(rows[0]).toEqual({ user: 'postgres', role: 'postgres' });
        expect(await catalog.directory.get(parseTenantId('emb_a'))).toMatchObject({ id: 'emb_a' });
      });
    }

    it('unscoped() refuses a role change too', async () => {
      await expect(
        tenantDb.unscoped(async (tx) => {
          await tx.execute(sql`RESET ROLE`);
          return tx.select().from(courses);
        }),
      ).rejects.toSatisfy((error) => isMtPaasError(error, 'INTERNAL'));
      expect(await tenantDb.unscoped((tx) => tx.select().from(courses))).toEqual([]);
    });

    it('the next unit sees nothing of the session state a unit left', async () => {
      for (let round = 0; round < 2; round += 1) {
        await tenantDb.forTenant('emb_a').run((tx) => leaveSessionState(tx, 'emb_a'));
        expect(await tenantDb.forTenant('emb_b').run(probeSession)).toEqual({
          cursors: 0,
          tempTables: 0,
          listening: [],
          marker: '',
          prepared: 0,
          advisoryLocks: 0,
          currentUser: 'mt_paas_app',
        });
        await expect(tenantDb.forTenant('emb_b').run(fetchLeakedCursor)).rejects.toThrow(/mt_leak/);
        await tenantDb
          .forTenant('emb_b')
          .run((tx) => tx.insert(courses).values({ title: 'after', code: `after_${round}` }));
        const rows = await tenantDb.forTenant('emb_a').run((tx) => tx.select().from(courses));
        expect(rows.map((row) => row.tenantId)).toEqual(['emb_a']);
      }
    });
  });
});

describe('createPgliteDriver', () => {
  it("takes the vendor's own PGlite through the structural PgliteInstance type (no pglite types in ours)", async () => {
    const { PGlite } = await import('@electric-sql/pglite');
    const own = new PGlite();
    // Compile-time: a real PGlite must fit the structural type the package exports.
    const instance: PgliteInstance = own;
    const driver = await createPgliteDriver(instance);
    try {
      expect(driver.pglite).toBe(own);
      expect((await driver.query<{ n: number }>('SELECT 41 + $1::int AS n', [1])).rows).toEqual([{ n: 42 }]);
      const inTx = await driver.transaction(async (session) => {
        await session.exec('CREATE TEMP TABLE t (n int); INSERT INTO t VALUES (7)');
        return (await session.query<{ n: number }>('SELECT n FROM t')).rows;
      });
      expect(inTx).toEqual([{ n: 7 }]);
      await driver.close();
      // Not opened by the driver: still open.
      expect(own.closed).toBe(false);
    } finally {
      await own.close();
    }
  });
});
