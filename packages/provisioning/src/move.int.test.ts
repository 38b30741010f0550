import { setTimeout as sleep } from 'node:timers/promises';
import { isMtPaasError } from '@mt-paas/context';
import { describeWithPostgres, useTestDatabase } from '@mt-paas/test-env';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { courses } from './__fixtures__/app-schema.js';
import {
  createRecordingBus,
  openEnvironment,
  type ProvisioningEnvironment,
} from './__fixtures__/environment.js';
import { MOVE_PAIRS, storageLeft as storageLeftIn } from './__fixtures__/moves.js';
import { readTenantData, seedTenantData } from './__fixtures__/tenant-data.js';
import type { Provisioner, StorageMode } from './provisioner.js';
import { createTenantRouter, type TenantRouter } from './tenant-router.js';
import { WRITE_FREEZE_KEY } from './tenant-transfer.js';

describeWithPostgres('moving a live tenant between isolation modes', () => {
  const database = useTestDatabase({ label: 'move' });
  let environment: ProvisioningEnvironment;
  let provisioner: Provisioner;
  let router: TenantRouter;
  const bus = createRecordingBus();

  beforeAll(async () => {
    environment = await openEnvironment(database.url, 'mv');
    provisioner = environment.provisioner({ events: bus, archive: { settleMs: 300 } });
    router = createTenantRouter({
      catalog: environment.catalog,
      tenantDbs: environment.tenantDbs,
      events: bus,
      cacheTtlMs: 100,
    });
  });
  afterAll(async () => {
    await router?.close();
    await environment?.close();
  });

  const storageLeft = (mode: StorageMode, id: string) => storageLeftIn(environment, mode, id);

  describe.each(MOVE_PAIRS)('%s → %s', (from, to) => {
    it('keeps every row, switches the placement, drops the old storage', async () => {
      const id = `mv_${from.slice(0, 3)}_${to.slice(0, 3)}`;
      await provisioner.onboard({ id, name: `Move ${from}→${to}`, mode: from });
      await seedTenantData(provisioner.tenantDbFor(from), id);
      const before = await readTenantData(router.forTenant(id) as never);
      expect(before.courses).toHaveLength(6);

      const moved = await provisioner.moveTenant(id, to);
      expect(moved.placement).toEqual({ mode: to });
      expect(moved.status).toBe('active');
      expect(moved.metadata?.[WRITE_FREEZE_KEY]).toBeUndefined();
      router.invalidate(id);
      expect(await readTenantData(router.forTenant(id) as never)).toEqual(before);
      expect(await storageLeft(from, id)).toBe(0);
      expect(await storageLeft(to, id)).toBeGreaterThan(0);
      if (to !== 'row') {
        const recorded = await environment.query(
          'SELECT version FROM mt_paas.tenant_migrations WHERE tenant_id = $1 ORDER BY version',
          [id],
        );
        expect(recorded.map((row) => row.version)).toEqual(['0000_app_init', '0001_users']);
      }
      // writes work again, in the new storage
      await router.forTenant(id).run((tx) => tx.insert(courses).values({ title: 'after', code: 'after' }));
      expect((await readTenantData(router.forTenant(id) as never)).courses).toHaveLength(7);
      const [job] = await provisioner.jobs(id);
      expect(job).toMatchObject({ action: 'move', state: 'succeeded', step: 'done' });
    });
  });

  it('pauses writes with a 503 carrying retry-after while reads go on, then resumes them', async () => {
    const id = 'mv_pause';
    await provisioner.onboard({ id, name: 'Pause', mode: 'schema' });
    await seedTenantData(provisioner.tenantDbFor('schema'), id);
    const slow = environment.provisioner({ events: bus, archive: { settleMs: 2500 } });
    const moving = slow.moveTenant(id, 'database');
    let frozen = false;
    for (let attempt = 0; attempt < 200 && !frozen; attempt += 1) {
      const tenant = await environment.catalog.directory.get(id as never);
      frozen = tenant?.metadata?.[WRITE_FREEZE_KEY] !== undefined;
      if (!frozen) await sleep(10);
    }
    expect(frozen).toBe(true);
    router.invalidate(id);
    try {
      await router.forTenant(id).run((tx) => tx.insert(courses).values({ title: 'x', code: 'during' }));
      expect.unreachable('a write during the move must be refused');
    } catch (error) {
      expect(isMtPaasError(error, 'SERVICE_UNAVAILABLE'), String(error)).toBe(true);
      expect((error as { httpStatus: number }).httpStatus).toBe(503);
      expect((error as { retryAfterSeconds: number }).retryAfterSeconds).toBeGreaterThan(0);
      expect((error as Error).message).toMatch(/writes are paused/);
    }
    const read = await router.forTenant(id).run((tx) => tx.select({ code: courses.code }).from(courses));
    expect(read).toHaveLength(6);
    const moved = await moving;
    expect(moved.placement.mode).toBe('database');
    router.invalidate(id);
    await router.forTenant(id).run((tx) => tx.insert(courses).values({ title: 'x', code: 'after' }));
    const codes = await router.forTenant(id).run((tx) => tx.select({ code: courses.code }).from(courses));
    expect(codes.map((row) => row.code)).not.toContain('during');
    expect(codes).toHaveLength(7);
  });

  it('refuses a move to the same mode, of a deleted tenant, and to an unknown mode', async () => {
    await provisioner.onboard({ id: 'mv_refuse', name: 'Refuse', mode: 'row' });
    await expect(provisioner.moveTenant('mv_refuse', 'row')).rejects.toThrow(/already in row mode/);
    await expect(provisioner.moveTenant('mv_refuse', 'docker' as never)).rejects.toSatisfy((error) =>
      isMtPaasError(error, 'INVALID_REQUEST'),
    );
    await provisioner.offboard('mv_refuse');
    await expect(provisioner.moveTenant('mv_refuse', 'schema')).rejects.toThrow(/it is deleted/);
    expect((await provisioner.get('mv_refuse')).placement).toEqual({ mode: 'row' });
  });
});
