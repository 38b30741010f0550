/**
 * Adversarial: what one unit of work leaves at session level must not reach the next unit on the same
 * pooled connection (issue #8, item 6). Pools of 1–2 connections make reuse certain.
 */
import { isMtPaasError } from '@mt-paas/context';
import { describeWithPostgres, useTestDatabase } from '@mt-paas/test-env';
import { sql } from 'drizzle-orm';
import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { courses } from './__fixtures__/app-schema.js';
import { FIXTURE_MIGRATIONS, type ModeEnvironment, openModeEnvironment } from './__fixtures__/environment.js';
import {
  fetchLeakedCursor,
  LEAK_LOCK,
  leaveSessionState,
  probeSession,
} from './__fixtures__/session-leaks.js';
import { createTenantDb, type TenantDb } from './tenant-db.js';

const CLEAN = (appRole: string) => ({
  cursors: 0,
  tempTables: 0,
  listening: [],
  marker: '',
  prepared: 0,
  advisoryLocks: 0,
  currentUser: appRole,
});

for (const mode of ['row', 'schema', 'database'] as const) {
  describeWithPostgres(`session state does not survive a unit of work (${mode} mode, pool of 1)`, () => {
    const database = useTestDatabase({ label: `reset_${mode}` });
    let environment: ModeEnvironment;
    let admin: pg.Client;
    // Database mode: a tenant's pool only ever serves that tenant, so the next unit is the same tenant's.
    const [first, second] = mode === 'database' ? ['rst_a', 'rst_a'] : ['rst_a', 'rst_b'];

    beforeAll(async () => {
      environment = await openModeEnvironment(mode, database.url, `rst${mode[0]}`, {
        maxConnections: 1,
        database: { connectionsPerTenant: 1 },
      });
      admin = new pg.Client({ connectionString: database.url });
      await admin.connect();
      for (const id of ['rst_a', 'rst_b']) {
        await environment.catalog.tenants.upsert({ id, name: id, status: 'active', placement: { mode } });
        await environment.tenantDb.createTenantStorage(id);
        // Database mode: tenant databases outlive the test database; start from no rows.
        await environment.tenantDb.forTenant(id).run(async (tx) => {
          await tx.delete(courses);
          await tx.insert(courses).values({ title: `${id} secret`, code: `${id}_code` });
        });
      }
    });
    afterAll(async () => {
      await admin?.end();
      // Tenant databases (database mode) outlive the test database: drop them.
      if (mode === 'database') {
        for (const id of ['rst_a', 'rst_b'])
          await environment?.tenantDb.dropTenantStorage(id).catch(() => {});
      }
      await environment?.close();
    });

    it('the next unit sees no cursor, temp table, listener, setting, prepared statement, role or lock', async () => {
      const { tenantDb } = environment;
      for (let round = 0; round < 3; round += 1) {
        await tenantDb.forTenant(first).run((tx) => leaveSessionState(tx, first));
        // The advisory lock is released as soon as the unit is over, not when the connection is next used.
        await expect
          .poll(async () => {
            const { rows } = await admin.query('SELECT pg_try_advisory_lock($1::bigint) AS got', [LEAK_LOCK]);
            if (rows[0].got) await admin.query('SELECT pg_advisory_unlock($1::bigint)', [LEAK_LOCK]);
            return rows[0].got;
          })
          .toBe(true);
        const probe = await tenantDb.forTenant(second).run(probeSession);
        expect(probe).toEqual(CLEAN(environment.appRole));
        await expect(tenantDb.forTenant(second).run(fetchLeakedCursor)).rejects.toThrow(/mt_leak/);
      }
    });

    it('a unit whose COMMIT fails after leaving session state leaves nothing to the next unit either', async () => {
      const { tenantDb } = environment;
      for (let round = 0; round < 2; round += 1) {
        let callbackReturned = false;
        await expect(
          tenantDb.forTenant(first).run(async (tx) => {
            await leaveSessionState(tx, first);
            // Fails only at COMMIT (deferred unique check): the failure path after a failed COMMIT.
            await tx.execute(
              sql.raw('CREATE TEMP TABLE mt_deferred (n int UNIQUE DEFERRABLE INITIALLY DEFERRED)'),
            );
            await tx.execute(sql.raw('INSERT INTO mt_deferred VALUES (1), (1)'));
            callbackReturned = true;
          }),
        ).rejects.toSatisfy((error) => isMtPaasError(error, 'INTERNAL'));
        // The callback itself succeeded: the failure came from the COMMIT.
        expect(callbackReturned).toBe(true);
        const probe = await tenantDb.forTenant(second).run(probeSession);
        expect(probe).toEqual(CLEAN(environment.appRole));
        await expect(tenantDb.forTenant(second).run(fetchLeakedCursor)).rejects.toThrow(/mt_leak/);
      }
    });

    it("a TEMP table left by one unit does not capture the next unit's writes", async () => {
      const { tenantDb } = environment;
      await tenantDb.forTenant(first).run((tx) => leaveSessionState(tx, first));
      await tenantDb
        .forTenant(second)
        .run((tx) => tx.insert(courses).values({ title: 'written after', code: `${second}_after` }));
      // The write landed in the real table, RLS-scoped: its tenant sees it, the other one does not.
      const own = await tenantDb.forTenant(second).run((tx) => tx.select().from(courses));
      expect(own.map((row) => row.code)).toContain(`${second}_after`);
      expect(own.every((row) => row.tenantId === second)).toBe(true);
      if (first !== second) {
        const other = await tenantDb.forTenant(first).run((tx) => tx.select().from(courses));
        expect(other.map((row) => row.tenantId)).toEqual([first]);
      }
    });

    it('a role or setting changed at session level by a committed unit does not reach the next one', async () => {
      const { tenantDb } = environment;
      await tenantDb
        .forTenant(first)
        .run((tx) => tx.execute(sql`select set_config('statement_timeout', '1234', false)`));
      const timeout = await tenantDb
        .forTenant(second)
        .run(
          async (tx) =>
            ((await tx.execute(sql`show statement_timeout`)) as unknown as { rows: unknown[] }).rows[0],
        );
      expect(timeout).toEqual({ statement_timeout: '0' });
    });

    it('named prepared statements keep working across units (the client forgets what DISCARD ALL removed)', async () => {
      const { tenantDb } = environment;
      for (let index = 0; index < 3; index += 1) {
        const rows = await tenantDb
          .forTenant(second)
          .run((tx) => tx.select().from(courses).prepare('mt_named_courses').execute());
        expect(rows.every((row) => row.tenantId === second)).toBe(true);
      }
    });

    if (mode !== 'database') {
      it('unscoped() sees no tenant a previous unit left at session level', async () => {
        const { tenantDb } = environment;
        await tenantDb
          .forTenant(first)
          .run((tx) => tx.execute(sql`select set_config('app.tenant_id', ${first}, false)`));
        const seen = await tenantDb.unscoped(async (tx) => {
          const setting = await tx.execute(sql`select current_setting('app.tenant_id', true) as t`);
          const rows = mode === 'row' ? await tx.select().from(courses) : [];
          return {
            setting: (setting as unknown as { rows: Array<{ t: string }> }).rows[0]?.t,
            rows: rows.length,
          };
        });
        expect(seen).toEqual({ setting: '', rows: 0 });
      });
    }
  });
}

describeWithPostgres('session reset with a shared pool and concurrency (row mode, pool of 2)', () => {
  const database = useTestDatabase({ label: 'reset_shared' });
  let environment: ModeEnvironment;
  let pool: pg.Pool;
  let tenantDb: TenantDb;

  beforeAll(async () => {
    environment = await openModeEnvironment('row', database.url, 'rsts');
    for (const id of ['sh_a', 'sh_b']) {
      await environment.catalog.tenants.upsert({ id, name: id, status: 'active' });
      await environment.tenantDb
        .forTenant(id)
        .run((tx) => tx.insert(courses).values({ title: `${id} secret`, code: `${id}_code` }));
    }
    const admin = new pg.Client({ connectionString: database.url });
    await admin.connect();
    // A harmless role the app role may SET ROLE to (NOBYPASSRLS): changing role inside a unit is still refused.
    await admin.query(
      `DO $$ BEGIN CREATE ROLE rst_member NOLOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$`,
    );
    await admin.query(`GRANT rst_member TO "${environment.appRole}"`);
    await admin.query('GRANT SELECT, INSERT ON courses TO rst_member');
    await admin.end();
    pool = new pg.Pool({ connectionString: environment.appUrl, max: 2, ...({ pipeline: true } as object) });
    pool.on('error', () => {});
    tenantDb = await createTenantDb({
      mode: 'row',
      catalog: environment.catalog,
      pool,
      migrationsFolder: FIXTURE_MIGRATIONS,
    });
  });
  afterAll(async () => {
    await tenantDb?.close();
    await pool?.end();
    await environment?.close();
  });

  it('state left by other code on the shared pool does not reach a unit or unscoped()', async () => {
    const clients = await Promise.all([pool.connect(), pool.connect()]);
    for (const client of clients) {
      await client.query("SELECT set_config('app.tenant_id', 'sh_a', false)");
      await client.query('CREATE TEMP TABLE courses (tenant_id text, code text)');
      await client.query("INSERT INTO courses VALUES ('sh_a', 'planted')");
      client.release();
    }
    expect(await tenantDb.unscoped((tx) => tx.select().from(courses))).toEqual([]);
    const rows = await tenantDb.forTenant('sh_b').run((tx) => tx.select().from(courses));
    expect(rows.map((row) => row.code)).toEqual(['sh_b_code']);
  });

  it('interleaved leaking and probing units of two tenants never see each other', async () => {
    const work = Array.from({ length: 40 }, async (_, index) => {
      const tenant = index % 2 === 0 ? 'sh_a' : 'sh_b';
      if (index % 4 < 2) {
        await tenantDb.forTenant(tenant).run(async (tx) => {
          await tx.execute(
            sql.raw('DECLARE mt_leak CURSOR WITH HOLD FOR SELECT tenant_id, code FROM courses'),
          );
          await tx.execute(sql.raw(`SELECT set_config('mt_leak.marker', '${tenant}', false)`));
          await tx.execute(sql.raw('LISTEN mt_leak_channel'));
        });
        return [];
      }
      return tenantDb.forTenant(tenant).run(async (tx) => {
        const probe = await probeSession(tx);
        const cursor = await tx.transaction((inner) => fetchLeakedCursor(inner)).catch(() => []);
        return [probe.marker, ...probe.listening, ...cursor.map((row) => row.tenant_id)].filter(
          (value) => value !== '',
        );
      });
    });
    const seen = (await Promise.all(work)).flat();
    expect(seen).toEqual([]);
  });

  it('a unit that rescopes itself with set_config or SET ROLE fails and commits nothing (item 10)', async () => {
    const before = await tenantDb.forTenant('sh_a').run((tx) => tx.select().from(courses));
    for (const rescope of [
      sql`select set_config('app.tenant_id', 'sh_b', true)`,
      sql`select set_config('app.tenant_id', 'sh_b', false)`,
      sql`select set_config('app.tenant_id', '', true)`,
      sql`SET ROLE rst_member`,
      sql`select set_config('role', 'rst_member', true)`,
    ]) {
      for (const returned of [true, false]) {
        const unit = tenantDb.forTenant('sh_a').run(async (tx) => {
          await tx.insert(courses).values({ title: 'rescoped', code: `rescoped_${returned}` });
          if (returned) return tx.execute(rescope);
          await tx.execute(rescope);
        });
        await expect(unit).rejects.toSatisfy(
          (error) =>
            isMtPaasError(error, 'INTERNAL') && /changed its own scope/.test((error as Error).message),
        );
      }
    }
    expect(await tenantDb.forTenant('sh_a').run((tx) => tx.select().from(courses))).toEqual(before);
    expect(await tenantDb.forTenant('sh_b').run((tx) => tx.select().from(courses))).toHaveLength(1);
  });
});
