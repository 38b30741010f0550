/**
 * The crash window of the marketplace actions: a process that dies after a delivery's receipt committed
 * but before (or while) its deferred action ran. The action is recorded with the receipt; the next start
 * completes it exactly once — one transition, one audit row, one status report — and the marketplace's
 * retry of the same delivery is a duplicate.
 */
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { EVENTS_ROUTE, signWebhook } from '@mt-paas/marketplace';
import { childExited, describeWithPostgres, startTsChild, useTestDatabase } from '@mt-paas/test-env';
import { beforeAll, expect, it } from 'vitest';
import { buildApp, FIXTURE_MIGRATIONS, seedAdmin } from './__fixtures__/app.js';
import { eventually, WEBHOOK_SECRET } from './__fixtures__/market.js';
import { adminQuery } from './__fixtures__/postgres.js';
import { createServiceFramework, type ServiceFramework } from './index.js';

const CHILD = fileURLToPath(new URL('./__fixtures__/crash-child.ts', import.meta.url));

describeWithPostgres('marketplace actions killed between the receipt and the action (SIGKILL)', () => {
  const database = useTestDatabase({ label: 'fw_crash' });
  let config: string;

  const open = (start = true, actionSweepIntervalMs?: number) =>
    createServiceFramework({
      config,
      env: {},
      appRole: 'mtp_fw_app',
      migrationsFolder: FIXTURE_MIGRATIONS,
      hooks: seedAdmin,
      start,
      ...(actionSweepIntervalMs === undefined ? {} : { actionSweepIntervalMs }),
    });

  beforeAll(async () => {
    config = `
service:
  id: fw_crash
  public_url: https://tutor.example
marketplace:
  enabled: false
  webhooks:
    secrets: ${WEBHOOK_SECRET}
database:
  central:
    url: ${database.url}
    pool_size: 3
logging:
  level: silent
`;
    const mt = await open(false);
    try {
      for (const id of [
        'cr_block',
        'cr_block_after',
        'cr_unblock',
        'cr_cancel',
        'cr_deleted',
        'cr_changed',
      ]) {
        await mt.onboard({
          id,
          name: `University ${id}`,
          adminEmail: `admin@${id}.ac.kr`,
          applicationId: `app-${id}`,
          applicationKind: 'service',
        });
      }
      await mt.control.block('cr_unblock', { reason: 'policy_violation' });
    } finally {
      await mt.close();
    }
  });

  const count = async (sql: string, params: unknown[]) =>
    Number((await adminQuery<{ n: string }>(database.url, sql, params))[0]!.n);
  const audits = (tenantId: string, type: string) =>
    count('SELECT count(*) AS n FROM mt_paas.audit_log WHERE tenant_id = $1 AND type = $2', [tenantId, type]);
  const statusReports = (tenantId: string) =>
    count("SELECT count(*) AS n FROM mt_paas.outbox WHERE tenant_id = $1 AND type = 'tenant.status'", [
      tenantId,
    ]);
  const jobsOf = (tenantId: string) =>
    adminQuery<{ action: string; state: string; step: string; attempts: number }>(
      database.url,
      "SELECT action, state, step, attempts FROM mt_paas.provisioning_jobs WHERE tenant_id = $1 AND action LIKE 'marketplace.%' ORDER BY created_at",
      [tenantId],
    );

  async function redeliver(mt: ServiceFramework, webhookId: string, type: string, data: object) {
    const app = await buildApp(mt);
    try {
      const body = JSON.stringify({ type, version: 1, timestamp: new Date().toISOString(), data });
      return await app.inject({
        method: 'POST',
        url: EVENTS_ROUTE,
        headers: {
          ...signWebhook({ id: webhookId, timestamp: new Date(), body, secrets: [WEBHOOK_SECRET] }),
          'content-type': 'application/json',
        },
        payload: body,
      });
    } finally {
      await app.close();
    }
  }

  const cases = [
    {
      name: 'tenant.blocked, killed before control.block',
      tenantId: 'cr_block',
      type: 'tenant.blocked',
      data: { tenant_id: 'cr_block', reason: 'subscription_expired', message: '구독이 만료되었습니다.' },
      hang: 'before',
      action: 'marketplace.block',
      status: 'blocked',
      audit: 'tenant_blocked',
    },
    {
      // The non-idempotent one: a repeated block would audit and report again.
      name: 'tenant.blocked, killed after control.block and before its job was marked done',
      tenantId: 'cr_block_after',
      type: 'tenant.blocked',
      data: { tenant_id: 'cr_block_after', reason: 'policy_violation' },
      hang: 'after',
      action: 'marketplace.block',
      status: 'blocked',
      audit: 'tenant_blocked',
    },
    {
      name: 'tenant.unblocked, killed before control.unblock',
      tenantId: 'cr_unblock',
      type: 'tenant.unblocked',
      data: { tenant_id: 'cr_unblock' },
      hang: 'before',
      action: 'marketplace.unblock',
      status: 'active',
      audit: 'tenant_unblocked',
    },
    {
      name: 'service.cancelled, killed before the suspension',
      tenantId: 'cr_cancel',
      type: 'service.cancelled',
      data: { application_id: 'app-cr_cancel' },
      hang: 'before',
      action: 'marketplace.suspend',
      status: 'suspended',
      audit: 'tenant_suspended',
    },
    {
      name: 'user.deleted, killed after the offboarding',
      tenantId: 'cr_deleted',
      type: 'user.deleted',
      data: { user_id: 9, email: 'admin@cr_deleted.ac.kr', deleted_at: new Date().toISOString() },
      hang: 'after',
      action: 'marketplace.offboard',
      status: 'deleted',
      audit: 'tenant_offboarded',
    },
    {
      name: 'subscription.updated, killed before the cache event',
      tenantId: 'cr_changed',
      type: 'subscription.updated',
      data: { tenant_id: 'cr_changed', plan: 'starter', features: { quiz: false }, limits: { rpm: 100 } },
      hang: 'before',
      action: 'marketplace.tenant_changed',
      status: 'active',
      audit: undefined,
    },
  ] as const;

  it.each(cases)('$name: the next start completes it exactly once', async (scenario) => {
    const { tenantId } = scenario;
    const auditsBefore = scenario.audit === undefined ? 0 : await audits(tenantId, scenario.audit);
    const reportsBefore = await statusReports(tenantId);
    const webhookId = `msg_${randomUUID()}`;
    const { child, seen } = startTsChild({
      script: CHILD,
      input: {
        config,
        secret: WEBHOOK_SECRET,
        webhookId,
        type: scenario.type,
        data: scenario.data,
        hang: scenario.hang,
      },
      marker: 'HANGING',
      timeoutMs: 60_000,
    });
    await seen;
    child.kill('SIGKILL');
    await childExited(child);

    // What the killed process left: the committed receipt and the action's job, started, never finished.
    expect(
      await count('SELECT count(*) AS n FROM mt_paas.webhook_receipts WHERE webhook_id = $1', [webhookId]),
    ).toBe(1);
    expect(await jobsOf(tenantId)).toEqual([
      { action: scenario.action, state: 'running', step: 'acting', attempts: 1 },
    ]);
    if (scenario.hang === 'before') {
      expect(scenario.audit === undefined ? 0 : await audits(tenantId, scenario.audit)).toBe(auditsBefore);
    }

    const mt = await open();
    try {
      await eventually(
        async () => (await jobsOf(tenantId))[0]?.state === 'succeeded',
        'the next start completes the interrupted action',
        30_000,
      );
      expect(await jobsOf(tenantId)).toEqual([
        { action: scenario.action, state: 'succeeded', step: 'done', attempts: 2 },
      ]);
      expect((await mt.catalog.directory.get(tenantId as never))?.status).toBe(scenario.status);
      if (scenario.audit !== undefined) expect(await audits(tenantId, scenario.audit)).toBe(auditsBefore + 1);
      if (scenario.action === 'marketplace.block' || scenario.action === 'marketplace.unblock') {
        expect(await statusReports(tenantId)).toBe(reportsBefore + 1);
      }

      // The marketplace's retry of the same delivery: a duplicate, no second job, nothing done again.
      const retried = await redeliver(mt, webhookId, scenario.type, scenario.data);
      expect(retried.statusCode).toBe(200);
      expect(retried.headers['x-mt-paas-receipt']).toBe('duplicate');
      expect(await jobsOf(tenantId)).toHaveLength(1);
      if (scenario.audit !== undefined) expect(await audits(tenantId, scenario.audit)).toBe(auditsBefore + 1);
    } finally {
      await mt.close();
    }
  });

  it('the periodic sweep of two running instances runs an action left pending exactly once', async () => {
    const instances = [await open(true, 100), await open(true, 100)];
    try {
      const auditsBefore = await audits('cr_block', 'tenant_unblocked');
      // A job as a receipt transaction writes it, whose after-commit run never happened.
      await adminQuery(
        database.url,
        `INSERT INTO mt_paas.provisioning_jobs (tenant_id, action, step, state, attempts, details)
         VALUES ('cr_block', 'marketplace.unblock', 'queued', 'pending', 0, $1::jsonb)`,
        [JSON.stringify({ action: { kind: 'unblock', tenantId: 'cr_block', reason: 'swept' } })],
      );
      await eventually(
        async () =>
          (await jobsOf('cr_block')).some(
            (job) => job.action === 'marketplace.unblock' && job.state === 'succeeded',
          ),
        'a sweep runs the pending action',
        30_000,
      );
      // both instances swept (100 ms) many times meanwhile
      await new Promise((resolve) => setTimeout(resolve, 500));
      expect((await jobsOf('cr_block')).filter((job) => job.action === 'marketplace.unblock')).toEqual([
        { action: 'marketplace.unblock', state: 'succeeded', step: 'done', attempts: 1 },
      ]);
      expect((await instances[0]!.catalog.directory.get('cr_block' as never))?.status).toBe('active');
      expect(await audits('cr_block', 'tenant_unblocked')).toBe(auditsBefore + 1);
    } finally {
      for (const mt of instances) await mt.close();
    }
  });

  it('a newer block / unblock delivery supersedes an unfinished older one: the sweep never runs a stale block', async () => {
    const auditsBefore = await audits('cr_changed', 'tenant_blocked');
    // An older "blocked" whose action failed (its receipt removed for the marketplace's retry).
    await adminQuery(
      database.url,
      `INSERT INTO mt_paas.provisioning_jobs (tenant_id, action, step, state, attempts, error, details)
       VALUES ('cr_changed', 'marketplace.block', 'acting', 'failed', 1, 'the catalog was down', $1::jsonb)`,
      [JSON.stringify({ action: { kind: 'block', tenantId: 'cr_changed', reason: 'policy_violation' } })],
    );
    const receiving = await open(false);
    try {
      const unblocked = await redeliver(receiving, `msg_${randomUUID()}`, 'tenant.unblocked', {
        tenant_id: 'cr_changed',
      });
      expect(unblocked.statusCode).toBe(200);
    } finally {
      await receiving.close();
    }
    const access = async () =>
      (await jobsOf('cr_changed')).filter((job) => job.action !== 'marketplace.tenant_changed');
    expect((await access()).map((job) => [job.action, job.state])).toEqual([
      ['marketplace.block', 'cancelled'],
      ['marketplace.unblock', 'succeeded'],
    ]);
    // A later pending job: once a sweep ran it, the sweep has passed the older block job (oldest first).
    await adminQuery(
      database.url,
      `INSERT INTO mt_paas.provisioning_jobs (tenant_id, action, step, state, attempts, details)
       VALUES ('cr_changed', 'marketplace.tenant_changed', 'queued', 'pending', 0, $1::jsonb)`,
      [JSON.stringify({ action: { kind: 'tenant_changed', tenantId: 'cr_changed' } })],
    );
    const sweeping = await open(true, 50);
    try {
      await eventually(
        async () => (await jobsOf('cr_changed')).every((job) => job.state !== 'pending'),
        'a sweep ran',
        30_000,
      );
      expect((await sweeping.catalog.directory.get('cr_changed' as never))?.status).toBe('active');
    } finally {
      await sweeping.close();
    }
    expect((await access()).map((job) => job.state)).toEqual(['cancelled', 'succeeded']);
    expect(await audits('cr_changed', 'tenant_blocked')).toBe(auditsBefore);
  });
});
