import type { TenantEventBus } from '@mt-paas/context';
import { type Catalog, createCatalog } from '@mt-paas/db';
import { createRedisClient, createRedisEventBus } from '@mt-paas/middleware';
import { mtPaasFastify } from '@mt-paas/middleware/fastify';
import { describeWith, testRedis, useTestDatabase } from '@mt-paas/test-env';
import Fastify, { type FastifyInstance } from 'fastify';
import type { Redis } from 'ioredis';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { captureLogger } from './__fixtures__/capture-logger.js';
import { catalogOutbox } from './__fixtures__/catalog-outbox.js';
import { type ControlPlane, createControlPlane } from './control-plane.js';
import { createKillSwitch, parseBlockRequest, UNBLOCK_STATUS_KEY } from './kill-switch.js';

/**
 * The kill switch on real Postgres (one catalog) and real Redis: two Fastify instances, each with its own
 * pipeline, tenant cache (60 s TTL) and Redis connection, and a control plane on a third connection.
 */
describeWith(['postgres', 'redis'], 'kill switch across two instances (Postgres + Redis)', () => {
  const database = useTestDatabase({ label: 'killswitch' });
  let catalog: Catalog;
  const redis: Redis[] = [];
  const buses: TenantEventBus[] = [];
  const apps: FastifyInstance[] = [];
  let control: ControlPlane;
  let outbox: ReturnType<typeof catalogOutbox>;
  const tenants = ['univ_a', 'univ_b', 'univ_f', 'univ_g', 'univ_u', 'univ_s', 'univ_d', 'univ_x', 'univ_n'];

  async function newBus(): Promise<TenantEventBus> {
    const client = createRedisClient({ url: testRedis().url });
    redis.push(client);
    const bus = createRedisEventBus({ redis: client, channel: `${testRedis().prefix}tenant-events` });
    buses.push(bus);
    return bus;
  }

  async function newApp(): Promise<FastifyInstance> {
    const app = Fastify();
    await app.register(mtPaasFastify, {
      directory: catalog.directory,
      events: await newBus(),
      logger: pino({ level: 'silent' }),
      metrics: false,
      cache: { ttlMs: 60_000 },
    });
    app.get('/courses', async () => ({ courses: [] }));
    await app.ready();
    apps.push(app);
    return app;
  }

  const get = (app: FastifyInstance, tenantId: string) =>
    app.inject({ method: 'GET', url: '/courses', headers: { 'x-tenant-id': tenantId } });

  async function sql<R>(text: string, params: unknown[] = []): Promise<R[]> {
    return (await catalog.driver.query<R>(text.replaceAll('$schema', `"${catalog.schema}"`), params)).rows;
  }

  beforeAll(async () => {
    catalog = await createCatalog({ connectionString: database.url });
    await catalog.migrate();
    for (const id of tenants) {
      await catalog.tenants.upsert({ id, name: id, status: id === 'univ_s' ? 'suspended' : 'active' });
    }
    await catalog.tenants.setStatus('univ_d', 'deleted', { reason: 'offboarded' });
    await newApp();
    await newApp();
    outbox = catalogOutbox(catalog);
    control = createControlPlane({
      serviceId: 'keli_tutor',
      catalog,
      events: await newBus(),
      outbox,
      expiryCheckIntervalMs: 100,
      logger: captureLogger(),
    });
    control.start();
  });

  afterAll(async () => {
    await control?.stop();
    for (const app of apps) await app.close();
    for (const bus of buses) await bus.close();
    for (const client of redis) client.disconnect();
    await catalog?.close();
  });

  it('refuses the tenant on both instances with the block message soon after block() (elapsed time measured)', async () => {
    for (const app of apps) expect((await get(app, 'univ_a')).statusCode).toBe(200); // both caches warm
    const message = 'Blocked by the marketplace: the subscription has expired. Renew it to continue.';
    const started = performance.now();
    const result = await control.block(
      'univ_a',
      { reason: 'subscription_expired', message },
      { service: 'marketplace' },
    );
    const refusedAt: number[] = [];
    await Promise.all(
      apps.map(async (app, index) => {
        for (;;) {
          const response = await get(app, 'univ_a');
          if (response.statusCode === 403) {
            refusedAt[index] = performance.now() - started;
            expect(response.json().error).toMatchObject({ code: 'TENANT_BLOCKED', message });
            return;
          }
          expect(response.statusCode).toBe(200);
          if (performance.now() - started > 5_000) throw new Error('instance still serves after 5 s');
          await new Promise((resolve) => setTimeout(resolve, 5));
        }
      }),
    );
    const elapsed = Math.max(...refusedAt);
    console.log(
      `[kill switch] block → refused on both instances in ${elapsed.toFixed(1)} ms (instance A ${refusedAt[0]?.toFixed(1)} ms, B ${refusedAt[1]?.toFixed(1)} ms)`,
    );
    expect(elapsed).toBeLessThan(5_000);
    expect(result.propagated).toBe(true);
    // Another tenant is untouched.
    for (const app of apps) expect((await get(app, 'univ_b')).statusCode).toBe(200);
  });

  it('without the event bus the cached instances keep serving: the refusal above came through the event', async () => {
    for (const app of apps) expect((await get(app, 'univ_n')).statusCode).toBe(200);
    const silent = createKillSwitch({ catalog, serviceId: 'keli_tutor', logger: captureLogger() });
    const result = await silent.block('univ_n', { reason: 'test' });
    expect(result.propagated).toBe(false);
    await new Promise((resolve) => setTimeout(resolve, 300));
    for (const app of apps) expect((await get(app, 'univ_n')).statusCode).toBe(200);
  });

  it('writes the catalog row, the market status report (same transaction) and the audit row', async () => {
    const [row] = await sql<Record<string, unknown>>(
      'select status, block_reason, block_message, block_at, block_until, blocked_at from $schema.tenants where id = $1',
      ['univ_a'],
    );
    expect(row).toMatchObject({
      status: 'blocked',
      block_reason: 'subscription_expired',
      block_at: null,
      block_until: null,
    });
    expect(row?.blocked_at).toBeInstanceOf(Date);
    const reports = await sql<{ type: string; payload: Record<string, unknown> }>(
      'select type, payload from $schema.outbox where tenant_id = $1 order by created_at',
      ['univ_a'],
    );
    expect(reports).toHaveLength(1);
    // The shape @mt-paas/marketplace's dispatcher turns into POST /services/{id}/tenants/{tenant}/status.
    expect(reports[0]).toEqual({
      type: 'tenant.status',
      payload: {
        tenantId: 'univ_a',
        status: 'blocked',
        reason: 'subscription_expired',
        at: expect.any(String),
      },
    });
    const audits = await sql<{ type: string; severity: string; actor: unknown }>(
      'select type, severity, actor from $schema.audit_log where tenant_id = $1',
      ['univ_a'],
    );
    expect(audits).toEqual([
      { type: 'tenant_blocked', severity: 'medium', actor: { service: 'marketplace' } },
    ]);
  });

  it('rolls the block back when the status report cannot be written: no block without its report', async () => {
    outbox.failNext = true;
    await expect(control.block('univ_x', { reason: 'policy_violation' })).rejects.toThrow(
      'outbox unavailable',
    );
    const [row] = await sql<{ status: string }>('select status from $schema.tenants where id = $1', [
      'univ_x',
    ]);
    expect(row?.status).toBe('active');
    for (const app of apps) expect((await get(app, 'univ_x')).statusCode).toBe(200);
  });

  it('serves a future blockAt with the warning header on both instances, then refuses', async () => {
    for (const app of apps) await get(app, 'univ_f');
    const blockAt = new Date(Date.now() + 1_500);
    await control.block('univ_f', { reason: 'subscription_expired', message: 'Renew now.', blockAt });
    for (const app of apps) {
      const response = await get(app, 'univ_f');
      expect(response.statusCode).toBe(200);
      expect(response.headers['x-tenant-warning']).toBe(
        `Access for this tenant will be blocked at ${blockAt.toISOString()}: Renew now.`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, blockAt.getTime() - Date.now() + 50));
    for (const app of apps) {
      const response = await get(app, 'univ_f');
      expect(response.statusCode).toBe(403);
      expect(response.json().error).toMatchObject({ code: 'TENANT_BLOCKED', message: 'Renew now.' });
    }
  });

  it('adds grace_period_hours to block_at (the seed body), served with a warning meanwhile', async () => {
    const input = parseBlockRequest({
      reason: 'subscription_expired',
      block_at: new Date().toISOString(),
      grace_period_hours: 24,
      message: '구독이 만료되었습니다. 갱신해주세요.',
    });
    const result = await control.block('univ_g', input);
    expect(Math.abs(result.effectiveAt.getTime() - (Date.now() + 24 * 3_600_000))).toBeLessThan(60_000);
    for (const app of apps) {
      const response = await get(app, 'univ_g');
      expect(response.statusCode).toBe(200);
      // Non-ASCII is replaced in the header; the instant is exact.
      expect(response.headers['x-tenant-warning']).toContain(result.effectiveAt.toISOString());
    }
  });

  it('lifts a block by itself when until passes (the sweep), back to active on both instances', async () => {
    const until = new Date(Date.now() + 800);
    await control.block('univ_u', { reason: 'temporary_violation', message: 'Paused for a moment.', until });
    for (const app of apps) expect((await get(app, 'univ_u')).statusCode).toBe(403);
    await expect
      .poll(
        async () =>
          (await sql<{ status: string }>('select status from $schema.tenants where id = $1', ['univ_u']))[0]
            ?.status,
        { timeout: 5_000, interval: 50 },
      )
      .toBe('active');
    for (const app of apps) expect((await get(app, 'univ_u')).statusCode).toBe(200);
    const audits = await sql<{ type: string }>(
      "select type from $schema.audit_log where tenant_id = $1 and type like 'tenant_%' order by id",
      ['univ_u'],
    );
    expect(audits.map((row) => row.type)).toEqual(['tenant_blocked', 'tenant_block_expired']);
    const reports = await sql<{ payload: { status: string } }>(
      'select payload from $schema.outbox where tenant_id = $1 order by created_at',
      ['univ_u'],
    );
    expect(reports.map((row) => row.payload.status)).toEqual(['blocked', 'active']);
  });

  it('lifts each expired block exactly once when many instances sweep at the same moment', async () => {
    await control.killSwitch.stop(); // only the racing sweepers below
    const ids = Array.from({ length: 6 }, (_, index) => `race_${index}`);
    const hourAgo = Date.now() - 3_600_000;
    for (const id of ids) {
      await catalog.tenants.upsert({ id, name: id, status: 'active' });
      // Took effect two hours ago, ended one hour ago.
      await control.block(id, {
        reason: 'old',
        blockAt: new Date(hourAgo - 3_600_000),
        until: new Date(hourAgo),
      });
    }
    const sweepers = Array.from({ length: 4 }, () =>
      createKillSwitch({ catalog, serviceId: 'keli_tutor', outbox, logger: captureLogger() }),
    );
    const results = await Promise.all(sweepers.map((sweeper) => sweeper.liftExpired()));
    const lifted = results.flat().filter((id) => id.startsWith('race_'));
    expect([...lifted].sort()).toEqual(ids);
    const reports = await sql<{ tenant_id: string; n: string }>(
      "select tenant_id, count(*) as n from $schema.outbox where tenant_id like 'race_%' and payload->>'status' = 'active' group by tenant_id",
    );
    expect(reports.map((row) => Number(row.n))).toEqual(Array(6).fill(1));
    const statuses = await sql<{ status: string }>(
      "select status from $schema.tenants where id like 'race_%'",
    );
    expect(statuses.every((row) => row.status === 'active')).toBe(true);
    control.killSwitch.start();
  });

  it('unblock returns the tenant to the status the block interrupted and is idempotent', async () => {
    await control.block('univ_s', { reason: 'policy_violation' });
    await control.block('univ_s', { reason: 'policy_violation_again' }); // re-block keeps the original status
    const first = await control.unblock('univ_s', { reason: 'appeal_accepted' });
    expect(first).toEqual({ tenantId: 'univ_s', unblocked: true, status: 'suspended' });
    const [row] = await sql<{ status: string; metadata: Record<string, unknown> }>(
      'select status, metadata from $schema.tenants where id = $1',
      ['univ_s'],
    );
    expect(row?.status).toBe('suspended'); // a block never reactivates a suspended tenant
    expect(row?.metadata).not.toHaveProperty(UNBLOCK_STATUS_KEY);
    expect(await control.unblock('univ_s')).toEqual({ tenantId: 'univ_s', unblocked: false });
    expect(await control.unblock('univ_b')).toEqual({ tenantId: 'univ_b', unblocked: false });
  });

  it('concurrent blocks and unblocks of one tenant: the interrupted status survives, one report per change', async () => {
    await catalog.tenants.upsert({ id: 'univ_c', name: 'univ_c', status: 'grace' });
    await Promise.all(
      Array.from({ length: 12 }, (_, index) => control.block('univ_c', { reason: `concurrent_${index}` })),
    );
    const unblocks = await Promise.all(Array.from({ length: 6 }, () => control.unblock('univ_c')));
    expect(unblocks.filter((result) => result.unblocked)).toHaveLength(1);
    const [row] = await sql<{ status: string }>('select status from $schema.tenants where id = $1', [
      'univ_c',
    ]);
    expect(row?.status).toBe('grace');
    const reports = await sql<{ status: string }>(
      "select payload->>'status' as status from $schema.outbox where tenant_id = $1 order by created_at",
      ['univ_c'],
    );
    expect(reports.map((report) => report.status)).toEqual([...Array(12).fill('blocked'), 'grace']);
  });

  it('unblock reaches both instances', async () => {
    await control.unblock('univ_a', { reason: 'renewed', actor: { userId: 'ops' } });
    await expect
      .poll(async () => Promise.all(apps.map(async (app) => (await get(app, 'univ_a')).statusCode)), {
        timeout: 5_000,
        interval: 10,
      })
      .toEqual([200, 200]);
  });

  describe('refuses bad requests with a clear error and changes nothing', () => {
    it.each([
      ['an unknown tenant', 'univ_missing', { reason: 'x' }, 'TENANT_NOT_FOUND'],
      ['a deleted tenant', 'univ_d', { reason: 'x' }, 'CONFLICT'],
      ['a malformed tenant id', "univ_b'; drop table tenants; --", { reason: 'x' }, 'INVALID_TENANT_ID'],
      ['an upper-case tenant id', 'UNIV_B', { reason: 'x' }, 'INVALID_TENANT_ID'],
      ['an empty reason', 'univ_b', { reason: '  ' }, 'INVALID_REQUEST'],
      ['a date without offset', 'univ_b', { reason: 'x', until: '2030-01-01T00:00:00' }, 'INVALID_REQUEST'],
      ['a date that is not one', 'univ_b', { reason: 'x', blockAt: 'tomorrow' }, 'INVALID_REQUEST'],
      ['a negative grace', 'univ_b', { reason: 'x', gracePeriodHours: -1 }, 'INVALID_REQUEST'],
      [
        'until before the block takes effect',
        'univ_b',
        { reason: 'x', blockAt: new Date(Date.now() + 7_200_000), until: new Date(Date.now() + 3_600_000) },
        'INVALID_REQUEST',
      ],
    ] as const)('%s', async (_name, tenantId, input, code) => {
      await expect(control.block(tenantId, input as never)).rejects.toMatchObject({ code });
      const [row] = await sql<{ status: string }>('select status from $schema.tenants where id = $1', [
        'univ_b',
      ]);
      expect(row?.status).toBe('active');
    });

    it('parseBlockRequest refuses a seed body with wrong types, naming the field', () => {
      expect(() => parseBlockRequest({ reason: 'x', grace_period_hours: '24' })).toThrow(
        expect.objectContaining({ code: 'INVALID_REQUEST', details: { field: 'grace_period_hours' } }),
      );
      expect(() => parseBlockRequest(null)).toThrow(expect.objectContaining({ code: 'INVALID_REQUEST' }));
    });
  });
});
