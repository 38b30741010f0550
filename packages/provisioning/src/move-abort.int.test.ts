import { setTimeout as sleep } from 'node:timers/promises';
import { isMtPaasError } from '@mt-paas/context';
import { createTenantDb, type TenantDb } from '@mt-paas/db';
import { describeWithPostgres, useTestDatabase } from '@mt-paas/test-env';
import { eq, sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { courses } from './__fixtures__/app-schema.js';
import {
  FIXTURE_MIGRATIONS,
  openEnvironment,
  type ProvisioningEnvironment,
} from './__fixtures__/environment.js';
import { MOVE_PAIRS, storageLeft as storageLeftIn } from './__fixtures__/moves.js';
import { readTenantData, seedTenantData } from './__fixtures__/tenant-data.js';
import type { Provisioner, StorageMode } from './provisioner.js';
import { type MoveStep, WRITE_FREEZE_KEY } from './tenant-transfer.js';

/**
 * The move window at the db level (every unit of the tenant db refuses writes, not only a router's) and
 * the abort path of a move: a failure before the switch leaves the tenant where it was, writable, with
 * the partial target dropped and the job failed; a rerun succeeds.
 */
describeWithPostgres('a move window and an aborted move', () => {
  const database = useTestDatabase({ label: 'moveabort' });
  let environment: ProvisioningEnvironment;
  let provisioner: Provisioner;

  beforeAll(async () => {
    environment = await openEnvironment(database.url, 'ma');
    provisioner = environment.provisioner({ archive: { settleMs: 30 } });
  });
  afterAll(async () => {
    await environment?.close();
  });

  /** How much of a tenant's storage exists in a mode (schema / database: 1 or 0; row: its course rows). */
  const storageLeft = (mode: StorageMode, id: string) => storageLeftIn(environment, mode, id);

  /** A write that slips past the pause: straight into the source storage as the owner (no tenant db). */
  const writeBehindThePause = async (mode: StorageMode, id: string) => {
    const insert = `INSERT INTO courses (tenant_id, title, code) VALUES ('${id}', 'slipped', 'slipped')`;
    if (mode === 'database') await environment.queryDatabase(`${environment.databasePrefix}${id}`, insert);
    else if (mode === 'schema')
      await environment.query(insert.replace('INTO courses', `INTO "t_${id}".courses`));
    else await environment.query(insert.replace('INTO courses', 'INTO public.courses'));
  };

  const failures = [
    ['load', 'the copy (target created, nothing loaded)'],
    ['verify', 'the verification (a write slipped past the pause)'],
  ] as const;

  describe.each(MOVE_PAIRS)('%s → %s', (from, to) => {
    it.each(failures)(
      'a failure at %s — %s — leaves the tenant on its old placement; a rerun moves it',
      async (failAt) => {
        const id = `ma_${failAt[0]}_${from.slice(0, 3)}_${to.slice(0, 3)}`;
        await provisioner.onboard({ id, name: `Abort ${from}→${to}`, mode: from });
        await seedTenantData(provisioner.tenantDbFor(from), id);
        const before = await readTenantData(provisioner.tenantDbFor(from).forTenant(id));
        const migrationsBefore = await environment.query(
          'SELECT version FROM mt_paas.tenant_migrations WHERE tenant_id = $1 ORDER BY version',
          [from === 'row' ? '*' : id],
        );
        const reached: MoveStep[] = [];
        const failure = await provisioner
          .moveTenant(id, to, {
            onStep: async (step) => {
              reached.push(step);
              if (step !== failAt) return;
              if (failAt === 'load') throw new Error('injected: the copy failed');
              await writeBehindThePause(from, id);
            },
          })
          .then(
            () => undefined,
            (error: unknown) => error,
          );
        if (failAt === 'load') expect((failure as Error).message).toBe('injected: the copy failed');
        else {
          expect(isMtPaasError(failure, 'CONFLICT'), String(failure)).toBe(true);
          expect((failure as Error).message).toMatch(/differs in the source after the copy/);
        }
        expect(reached.at(-1)).toBe(failAt);
        expect(reached).not.toContain('switch');

        // still on its old placement, no pause left, the partial target gone, the job recorded as failed
        const tenant = await provisioner.get(id);
        expect(tenant.placement).toEqual({ mode: from });
        expect(tenant.status).toBe('active');
        expect(tenant.metadata?.[WRITE_FREEZE_KEY]).toBeUndefined();
        expect(await storageLeft(to, id)).toBe(0);
        expect(await storageLeft(from, id)).toBeGreaterThan(0);
        const [job] = await provisioner.jobs(id);
        expect(job).toMatchObject({ action: 'move', state: 'failed', step: failAt });
        expect(
          await environment.query(
            'SELECT version FROM mt_paas.tenant_migrations WHERE tenant_id = $1 ORDER BY version',
            [from === 'row' ? '*' : id],
          ),
        ).toEqual(migrationsBefore);

        // the data is where it was, and writable again through the plain tenant db
        const source = provisioner.tenantDbFor(from).forTenant(id);
        const after = await readTenantData(source);
        expect(after.enrollments).toEqual(before.enrollments);
        expect(after.users).toEqual(before.users);
        expect(after.courses).toHaveLength(before.courses.length + (failAt === 'verify' ? 1 : 0));
        await source.run((tx) => tx.insert(courses).values({ title: 'after abort', code: 'after' }));

        // the rerun succeeds and carries everything, the slipped and the later write included
        const expected = await readTenantData(source);
        const moved = await provisioner.moveTenant(id, to);
        expect(moved.placement).toEqual({ mode: to });
        expect(await readTenantData(provisioner.tenantDbFor(to).forTenant(id))).toEqual(expected);
        expect(await storageLeft(from, id)).toBe(0);
        const [rerun] = await provisioner.jobs(id);
        expect(rerun).toMatchObject({ action: 'move', state: 'succeeded' });
      },
    );
  });

  it.each([
    ['schema', 'database'],
    ['database', 'row'],
  ] as const)(
    'a move of %s → %s that crashed before its switch (paused, a partial copy left) completes when run again',
    async (from, to) => {
      const id = `ma_crash_${from.slice(0, 3)}_${to.slice(0, 3)}`;
      await provisioner.onboard({ id, name: 'Crashed move', mode: from });
      await seedTenantData(provisioner.tenantDbFor(from), id);
      const expected = await readTenantData(provisioner.tenantDbFor(from).forTenant(id));
      // what the killed process left: the pause, and the target storage with part of a copy in it
      const tenants = environment.catalog.tables.tenants;
      await environment.catalog.driver.db
        .update(tenants)
        .set({
          metadata: sql`${tenants.metadata} || ${JSON.stringify({ [WRITE_FREEZE_KEY]: { reason: 'move' } })}::jsonb`,
        })
        .where(eq(tenants.id, id));
      const tenant = await provisioner.get(id);
      await provisioner.storeFor(to).createStorage({ ...tenant, placement: { mode: to } });
      const leftover = `INSERT INTO courses (tenant_id, title, code) VALUES ('${id}', 'half', 'half')`;
      if (to === 'database') await environment.queryDatabase(`${environment.databasePrefix}${id}`, leftover);
      else await environment.query(leftover.replace('INTO courses', 'INTO public.courses'));

      const moved = await provisioner.moveTenant(id, to);
      expect(moved.placement).toEqual({ mode: to });
      expect(moved.metadata?.[WRITE_FREEZE_KEY]).toBeUndefined();
      expect(await readTenantData(provisioner.tenantDbFor(to).forTenant(id))).toEqual(expected);
      expect(await storageLeft(from, id)).toBe(0);
    },
  );

  it('refuses writes through the plain tenant db API while a move runs (this and another instance), reads go on, and loses no acknowledged write', async () => {
    const id = 'ma_window';
    await provisioner.onboard({ id, name: 'Window', mode: 'schema' });
    await seedTenantData(provisioner.tenantDbFor('schema'), id);
    // another instance: its own tenant db (own tenant cache, not told by the provisioner), TTL below the settle time
    const other: TenantDb = await createTenantDb({
      mode: 'schema',
      catalog: environment.catalog,
      connectionString: environment.appUrl,
      adminConnectionString: environment.adminUrl,
      migrationsFolder: FIXTURE_MIGRATIONS,
      maxConnections: 2,
      tenantCacheTtlMs: 100,
    });
    const mover = environment.provisioner({ archive: { settleMs: 800 } });
    try {
      let phase: 'before' | 'paused' | 'switching' = 'before';
      const acknowledged: string[] = [];
      const refusals: unknown[] = [];
      const unexpected: unknown[] = [];
      let readsWhilePaused = 0;
      const writer = async (tenantDb: TenantDb, label: string) => {
        for (let index = 0; phase !== 'switching'; index += 1) {
          const code = `${label}${index}`;
          try {
            await tenantDb.forTenant(id).run((tx) => tx.insert(courses).values({ title: code, code }));
            acknowledged.push(code);
          } catch (error) {
            if (isMtPaasError(error, 'SERVICE_UNAVAILABLE')) refusals.push(error);
            else unexpected.push(error);
          }
          if (phase === 'paused') {
            const seen = await tenantDb
              .forTenant(id)
              .run((tx) => tx.select({ code: courses.code }).from(courses))
              .catch((error: unknown) => {
                unexpected.push(error);
                return [];
              });
            if (seen.length >= 6) readsWhilePaused += 1;
          }
          await sleep(15);
        }
      };
      const writers = Promise.all([writer(provisioner.tenantDbFor('schema'), 'w'), writer(other, 'o')]);
      await sleep(100);
      const moved = await mover.moveTenant(id, 'database', {
        onStep: async (step) => {
          if (step === 'freeze') phase = 'paused';
          // writers stop before the switch: a tenant db of the old mode, given the new placement, would
          // write into the old storage (following the placement is the router's job)
          if (step === 'verify') phase = 'switching';
        },
      });
      await writers;
      expect(unexpected).toEqual([]);
      expect(moved.placement).toEqual({ mode: 'database' });
      expect(refusals.length).toBeGreaterThan(0);
      for (const refusal of refusals) {
        expect(refusal).toMatchObject({ code: 'SERVICE_UNAVAILABLE', httpStatus: 503 });
        const seconds = (refusal as { retryAfterSeconds: number }).retryAfterSeconds;
        expect(seconds).toBeGreaterThan(0);
        expect((refusal as { headers: Record<string, string> }).headers['retry-after']).toBe(String(seconds));
      }
      expect(readsWhilePaused).toBeGreaterThan(0);
      // every acknowledged write was carried over; nothing refused was written
      const codes = (
        await provisioner
          .tenantDbFor('database')
          .forTenant(id)
          .run((tx) => tx.select({ code: courses.code }).from(courses))
      ).map((row) => row.code);
      expect(codes.filter((code) => /^[wo]\d+$/.test(code)).sort()).toEqual([...acknowledged].sort());
      expect(acknowledged.length).toBeGreaterThan(0);
      // and the moved tenant is writable again
      await provisioner
        .tenantDbFor('database')
        .forTenant(id)
        .run((tx) => tx.insert(courses).values({ title: 'after', code: 'after' }));
    } finally {
      await other.close();
    }
  });

  it('refuses a write in a move window with the whole unit rolled back, and migrations of that tenant wait', async () => {
    const id = 'ma_frozen';
    await provisioner.onboard({ id, name: 'Frozen', mode: 'schema' });
    const tenants = environment.catalog.tables.tenants;
    await environment.catalog.driver.db
      .update(tenants)
      .set({
        metadata: sql`${tenants.metadata} || ${JSON.stringify({ [WRITE_FREEZE_KEY]: { retryAfterSeconds: 4 } })}::jsonb`,
      })
      .where(eq(tenants.id, id));
    const tenantDb = provisioner.tenantDbFor('schema');
    tenantDb.forget(id);
    // a unit that reads, then writes: refused as a whole (503), its read worked, nothing is written
    const refusal = await tenantDb
      .forTenant(id)
      .run(async (tx) => {
        await tx.select().from(courses);
        await tx.insert(courses).values({ title: 'no', code: 'no' });
      })
      .then(
        () => undefined,
        (error: unknown) => error,
      );
    expect(refusal).toMatchObject({ code: 'SERVICE_UNAVAILABLE', httpStatus: 503, retryAfterSeconds: 4 });
    expect((refusal as { headers: Record<string, string> }).headers).toEqual({ 'retry-after': '4' });
    // a raw SQL write is refused the same way (the transaction is READ ONLY, not a drizzle check)
    await expect(
      tenantDb.forTenant(id).run((tx) => tx.execute(sql`DELETE FROM courses`)),
    ).rejects.toMatchObject({ code: 'SERVICE_UNAVAILABLE' });
    const migrated = await tenantDb.migrateTenants({ only: [id] });
    expect(migrated.failed).toHaveLength(1);
    expect(migrated.failed[0]!.error).toMatchObject({ code: 'SERVICE_UNAVAILABLE' });
    await environment.catalog.driver.db
      .update(tenants)
      .set({ metadata: sql`${tenants.metadata} - ${WRITE_FREEZE_KEY}` })
      .where(eq(tenants.id, id));
    tenantDb.forget(id);
    await tenantDb.forTenant(id).run((tx) => tx.insert(courses).values({ title: 'yes', code: 'yes' }));
    expect((await tenantDb.migrateTenants({ only: [id] })).failed).toEqual([]);
  });
});
