import { isMtPaasError, type Tenant } from '@mt-paas/context';
import { describeWithPostgres, useTestDatabase } from '@mt-paas/test-env';
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { courses, users } from './__fixtures__/app-schema.js';
import {
  createRecordingBus,
  openEnvironment,
  type ProvisioningEnvironment,
  type RecordingBus,
} from './__fixtures__/environment.js';
import { createProvisioner, type Provisioner, type StorageMode } from './provisioner.js';

async function expectConflict(promise: Promise<unknown>, status: string) {
  try {
    await promise;
    expect.unreachable('expected CONFLICT');
  } catch (error) {
    expect(isMtPaasError(error, 'CONFLICT'), String(error)).toBe(true);
    expect((error as Error).message).toContain(`it is ${status}`);
  }
}

describeWithPostgres('tenant lifecycle', () => {
  const database = useTestDatabase({ label: 'lifecycle' });
  let environment: ProvisioningEnvironment;
  let bus: RecordingBus;
  let provisioner: Provisioner;
  const seeded: string[] = [];

  beforeAll(async () => {
    environment = await openEnvironment(database.url, 'lc');
    bus = createRecordingBus();
    provisioner = createProvisioner({
      catalog: environment.catalog,
      tenantDbs: environment.tenantDbs,
      events: bus,
      retentionDays: 30,
      hooks: {
        async afterOnboard({ tenant, scope, input }) {
          seeded.push(tenant.id);
          await scope.run(async (tx) => {
            await tx
              .insert(users)
              .values({ email: input.adminEmail ?? 'admin@example.org', role: 'admin' })
              .onConflictDoNothing();
            await tx.insert(courses).values({ title: 'Welcome', code: 'welcome' }).onConflictDoNothing();
          });
        },
      },
    });
  });
  afterAll(async () => {
    await environment?.close();
  });

  /** Whether the tenant's storage exists (schema / database) or holds rows (row mode). */
  const storageExists = async (mode: StorageMode, tenantId: string): Promise<boolean> => {
    if (mode === 'schema') {
      return (
        (await environment.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [`t_${tenantId}`])).length >
        0
      );
    }
    if (mode === 'database') {
      return (
        (
          await environment.query('SELECT 1 FROM pg_database WHERE datname = $1', [
            `${environment.databasePrefix}${tenantId}`,
          ])
        ).length > 0
      );
    }
    return (
      (await environment.query('SELECT 1 FROM public.users WHERE tenant_id = $1', [tenantId])).length > 0
    );
  };

  const adminsOf = (tenantId: string, mode: StorageMode) =>
    provisioner
      .tenantDbFor(mode)
      .forTenant(tenantId)
      .run((tx) => tx.select({ email: users.email, role: users.role }).from(users));

  describe.each(['row', 'schema', 'database'] as const)('%s mode', (mode) => {
    const id = `lc_${mode}`;

    it('onboards: provisioning → storage → seed hook → active, as one recorded job, published and audited', async () => {
      const before = bus.events.length;
      const tenant = await provisioner.onboard({
        id,
        name: `University ${mode}`,
        adminEmail: `admin@${mode}.ac.kr`,
        mode,
        plan: 'pro',
        domains: [`${mode}.keli.example.ac.kr`],
      });
      expect(tenant.status).toBe('active');
      expect(tenant.placement.mode).toBe(mode);
      expect(tenant.domains).toEqual([`${mode}.keli.example.ac.kr`]);
      expect(await storageExists(mode, id)).toBe(true);
      expect(await adminsOf(id, mode)).toEqual([{ email: `admin@${mode}.ac.kr`, role: 'admin' }]);
      const jobs = await provisioner.jobs(id);
      expect(jobs.map((job) => [job.action, job.state, job.step, job.attempts])).toEqual([
        ['onboard', 'succeeded', 'done', 1],
      ]);
      expect(bus.events.slice(before)).toMatchObject([
        { type: 'tenant.changed', tenantId: id, status: 'active' },
      ]);
      const audit = await environment.query<{ type: string }>(
        'SELECT type FROM mt_paas.audit_log WHERE tenant_id = $1 ORDER BY id',
        [id],
      );
      expect(audit.map((row) => row.type)).toEqual(['tenant_onboarded']);
    });

    it('onboarding an active tenant again is a no-op: no new job, the seed hook does not run again', async () => {
      const runs = seeded.filter((seen) => seen === id).length;
      const tenant = await provisioner.onboard({ id, name: 'ignored', mode });
      expect(tenant.name).toBe(`University ${mode}`);
      expect(seeded.filter((seen) => seen === id).length).toBe(runs);
      expect((await provisioner.jobs(id)).length).toBe(1);
    });

    it('suspends and resumes; repeating suspend is a no-op, resuming an active tenant is a CONFLICT', async () => {
      const suspended = await provisioner.suspend(id, { reason: 'service_cancelled' });
      expect(suspended.status).toBe('suspended');
      expect((await provisioner.suspend(id)).status).toBe('suspended');
      expect(bus.events.at(-1)).toMatchObject({ type: 'tenant.changed', status: 'suspended' });
      expect((await provisioner.resume(id)).status).toBe('active');
      await expectConflict(provisioner.resume(id), 'active');
      const actions = (await provisioner.jobs(id)).map((job) => `${job.action}:${job.state}`);
      expect(actions).toEqual(['resume:succeeded', 'suspend:succeeded', 'onboard:succeeded']);
    });

    it('blocks with a message (kill switch) and unblocks; a blocked tenant cannot be resumed', async () => {
      const until = new Date(Date.now() + 3_600_000);
      const blocked = await provisioner.block(id, {
        reason: 'subscription_expired',
        message: 'Renew',
        until,
      });
      expect(blocked.status).toBe('blocked');
      expect(blocked.block).toMatchObject({ reason: 'subscription_expired', message: 'Renew' });
      expect(bus.events.at(-1)).toMatchObject({
        type: 'tenant.blocked',
        tenantId: id,
        block: { reason: 'subscription_expired', message: 'Renew' },
      });
      await expectConflict(provisioner.resume(id), 'blocked');
      await expectConflict(provisioner.purge(id, { force: true }), 'blocked');
      const unblocked = await provisioner.unblock(id);
      expect(unblocked.status).toBe('active');
      expect(unblocked.block).toBeUndefined();
      expect(bus.events.at(-1)).toMatchObject({ type: 'tenant.unblocked', tenantId: id });
    });

    it('offboards softly: data kept and restorable; purge waits for the retention unless forced', async () => {
      const deleted = await provisioner.offboard(id, { reason: 'user_deleted' });
      expect(deleted.status).toBe('deleted');
      expect(await storageExists(mode, id)).toBe(true);
      const until = await provisioner.retainedUntil(id);
      expect(until!.getTime()).toBeGreaterThan(Date.now() + 29 * 86_400_000);
      try {
        await provisioner.purge(id);
        expect.unreachable();
      } catch (error) {
        expect(isMtPaasError(error, 'CONFLICT')).toBe(true);
        expect((error as Error).message).toMatch(/retained until/);
      }
      expect(await provisioner.purgeExpired()).toEqual([]);
      await expectConflict(provisioner.suspend(id), 'deleted');
      const restored = await provisioner.restore(id);
      expect(restored.status).toBe('active');
      expect(await adminsOf(id, mode)).toHaveLength(1);
    });

    it('purges: storage dropped, domains freed, status purged, tenant.deleted published; the id can be onboarded again', async () => {
      await expectConflict(provisioner.purge(id, { force: true }), 'active');
      await provisioner.offboard(id);
      const purged = await provisioner.purge(id, { force: true, reason: 'retention over' });
      expect(purged.status).toBe('purged');
      expect(purged.domains).toEqual([]);
      expect(await storageExists(mode, id)).toBe(false);
      expect(bus.events.at(-1)).toMatchObject({ type: 'tenant.deleted', tenantId: id });
      await expectConflict(provisioner.restore(id), 'purged');
      const failedJobs = (await provisioner.jobs(id)).filter((job) => job.state === 'failed');
      expect(failedJobs.map((job) => job.action)).toEqual(['purge']); // the early purge refused by retention
      const again = await provisioner.onboard({ id, name: 'Reborn', mode, adminEmail: 'new@x.ac.kr' });
      expect(again.status).toBe('active');
      expect(await adminsOf(id, mode)).toEqual([{ email: 'new@x.ac.kr', role: 'admin' }]);
    });
  });

  it('serialises concurrent onboarding of one id: one job, one seed, one admin', async () => {
    const id = 'lc_concurrent';
    const results = await Promise.all(
      Array.from({ length: 6 }, () => provisioner.onboard({ id, name: 'Concurrent', mode: 'schema' })),
    );
    expect(new Set(results.map((tenant: Tenant) => tenant.status))).toEqual(new Set(['active']));
    expect(seeded.filter((seen) => seen === id)).toHaveLength(1);
    expect((await provisioner.jobs(id)).map((job) => job.action)).toEqual(['onboard']);
    expect(await adminsOf(id, 'schema')).toHaveLength(1);
  });

  it('serialises racing transitions of one tenant: every one succeeds or is refused with CONFLICT, the jobs tell the same story', async () => {
    const id = 'lc_race';
    await provisioner.onboard({ id, name: 'Race', mode: 'row' });
    const actions = [
      'suspend',
      'resume',
      'block',
      'unblock',
      'offboard',
      'restore',
      'suspend',
      'resume',
    ] as const;
    const outcomes = await Promise.allSettled(
      [...actions, ...actions].map((action) =>
        (provisioner[action] as (tenantId: string) => Promise<Tenant>)(id),
      ),
    );
    for (const outcome of outcomes) {
      if (outcome.status === 'rejected')
        expect(isMtPaasError(outcome.reason, 'CONFLICT'), String(outcome.reason)).toBe(true);
    }
    const jobs = await provisioner.jobs(id, { limit: 100 });
    expect(jobs.every((job) => job.state === 'succeeded' || job.state === 'failed')).toBe(true);
    // replaying the succeeded jobs in order from 'active' ends in the tenant's stored state
    const targets: Record<string, string> = {
      suspend: 'suspended',
      resume: 'active',
      block: 'blocked',
      unblock: 'active',
      offboard: 'deleted',
      restore: 'active',
    };
    const replayed = jobs
      .filter((job) => job.state === 'succeeded' && job.action !== 'onboard')
      .reverse()
      .reduce((state, job) => targets[job.action] ?? state, 'active');
    expect((await provisioner.get(id)).status).toBe(replayed);
    // each succeeded job started from the state the previous one left
    const succeeded = jobs.filter((job) => job.state === 'succeeded').reverse();
    for (let index = 1; index < succeeded.length; index += 1) {
      expect(succeeded[index]!.details?.from).toBe(succeeded[index - 1]!.details?.to ?? 'active');
    }
  });

  it('a second process waiting past lockTimeoutMs gets CONFLICT with retry-after, and nothing is written', async () => {
    let release!: () => void;
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    let entered!: () => void;
    const inside = new Promise<void>((resolve) => {
      entered = resolve;
    });
    const holder = provisioner.withTenantLock('lc_locked', async () => {
      entered();
      await held;
    });
    await inside;
    const impatient = createProvisioner({
      catalog: environment.catalog,
      tenantDbs: environment.tenantDbs,
      lockTimeoutMs: 300,
    });
    try {
      await impatient.onboard({ id: 'lc_locked', name: 'Locked', mode: 'row' });
      expect.unreachable('must time out');
    } catch (error) {
      expect(isMtPaasError(error, 'CONFLICT')).toBe(true);
      expect((error as { retryAfterSeconds?: number }).retryAfterSeconds).toBeGreaterThan(0);
      expect((error as Error).message).toMatch(/being provisioned by another process/);
    }
    expect(await environment.catalog.directory.get('lc_locked' as never)).toBeUndefined();
    release();
    await holder;
    expect((await impatient.onboard({ id: 'lc_locked', name: 'Locked', mode: 'row' })).status).toBe('active');
  });

  it('resumes a failed onboarding on the next call (same job, attempts 2), without duplicating storage', async () => {
    let fail = true;
    const flaky = createProvisioner({
      catalog: environment.catalog,
      tenantDbs: environment.tenantDbs,
      hooks: {
        async afterOnboard({ scope }) {
          await scope.run((tx) =>
            tx.insert(users).values({ email: 'admin@flaky.ac.kr', role: 'admin' }).onConflictDoNothing(),
          );
          if (fail) throw new Error('mail server down');
        },
      },
    });
    await expect(flaky.onboard({ id: 'lc_flaky', name: 'Flaky', mode: 'database' })).rejects.toThrow(
      'mail server down',
    );
    expect((await flaky.get('lc_flaky')).status).toBe('provisioning');
    const [failed] = await flaky.jobs('lc_flaky');
    expect(failed).toMatchObject({ state: 'failed', step: 'hooks.afterOnboard', error: 'mail server down' });
    // Suspending a tenant that is still provisioning is refused, naming the state.
    await expectConflict(flaky.suspend('lc_flaky'), 'provisioning');
    fail = false;
    expect((await flaky.onboard({ id: 'lc_flaky', name: 'Flaky', mode: 'database' })).status).toBe('active');
    const jobs = await flaky.jobs('lc_flaky');
    expect(jobs.map((job) => [job.id, job.state, job.attempts])).toEqual([[failed!.id, 'succeeded', 2]]);
    const databases = await environment.query('SELECT datname FROM pg_database WHERE datname LIKE $1', [
      `${environment.databasePrefix}lc_flaky%`,
    ]);
    expect(databases).toHaveLength(1);
    expect(await adminsOf('lc_flaky', 'database')).toHaveLength(1);
  });

  it('refuses bad input before writing anything', async () => {
    for (const id of ['../etc', 'A_upper', "x'; drop table", 'pg_catalog', '']) {
      await expect(provisioner.onboard({ id, name: 'Bad' })).rejects.toSatisfy((error) =>
        isMtPaasError(error, 'INVALID_TENANT_ID'),
      );
    }
    await expect(provisioner.onboard({ id: 'lc_noname', name: ' ' })).rejects.toSatisfy((error) =>
      isMtPaasError(error, 'INVALID_REQUEST'),
    );
    const only = createProvisioner({
      catalog: environment.catalog,
      tenantDbs: { row: environment.tenantDbs.row },
    });
    await expect(only.onboard({ id: 'lc_nomode', name: 'x', mode: 'schema' })).rejects.toSatisfy((error) =>
      isMtPaasError(error, 'CONFIG_INVALID'),
    );
    const rows = await environment.query('SELECT id FROM mt_paas.tenants WHERE id IN ($1, $2)', [
      'lc_noname',
      'lc_nomode',
    ]);
    expect(rows).toEqual([]);
    await expect(provisioner.suspend('lc_missing')).rejects.toSatisfy((error) =>
      isMtPaasError(error, 'TENANT_NOT_FOUND'),
    );
  });

  it('counts every course row of a tenant only in its own storage (scoped query after onboarding)', async () => {
    await provisioner.onboard({ id: 'lc_scope_a', name: 'A', mode: 'row' });
    await provisioner.onboard({ id: 'lc_scope_b', name: 'B', mode: 'row' });
    const count = (id: string) =>
      provisioner
        .tenantDbFor('row')
        .forTenant(id)
        .run(async (tx) => (await tx.select({ n: sql<number>`count(*)::int` }).from(courses))[0]!.n);
    expect(await count('lc_scope_a')).toBe(1);
    expect(await count('lc_scope_b')).toBe(1);
  });
});
