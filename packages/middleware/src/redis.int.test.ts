import type { Tenant, TenantId } from '@mt-paas/context';
import { describeWithRedis, testRedis } from '@mt-paas/test-env';
import type { Redis } from 'ioredis';
import { pino } from 'pino';
import { afterAll, beforeAll, expect, it, vi } from 'vitest';
import { describeEventBus } from './__fixtures__/event-bus-suite.js';
import { describeQuotaStore, describeRateLimitStore } from './__fixtures__/store-suites.js';
import { entitlements, makeTenant, memoryDirectory } from './__fixtures__/tenants.js';
import { createTenantPipeline } from './pipeline.js';
import { createQuotaMeter, createRedisQuotaStore, type QuotaEvent } from './quota.js';
import { createRedisRateLimitStore } from './rate-limiter.js';
import { createRedisClient } from './redis-client.js';
import { createRedisEventBus } from './redis-event-bus.js';
import { tenantKey } from './redis-keys.js';

describeWithRedis('Redis stores', () => {
  let redisA: Redis;
  let redisB: Redis;
  let prefix: string;

  beforeAll(async () => {
    const server = testRedis();
    prefix = `${server.prefix}mw`;
    redisA = createRedisClient({ url: server.url });
    redisB = createRedisClient({ url: server.url });
    await Promise.all(
      [redisA, redisB].map((client) => new Promise((resolve) => client.once('ready', resolve))),
    );
  });

  afterAll(async () => {
    await testRedis().flush();
    redisA.disconnect();
    redisB.disconnect();
  });

  it('admits exactly 10 of 100 concurrent requests across two connections (one Lua call each)', async () => {
    const storeA = createRedisRateLimitStore({ redis: redisA });
    const storeB = createRedisRateLimitStore({ redis: redisB });
    const key = tenantKey(prefix, 'univ_8', 'rl');
    const decisions = await Promise.all(
      Array.from({ length: 100 }, (_, index) => (index % 2 === 0 ? storeA : storeB).consume(key, 10, 60_000)),
    );
    expect(decisions.filter((decision) => decision.allowed).length).toBe(10);
    const refused = decisions.filter((decision) => !decision.allowed);
    expect(refused.every((decision) => decision.remaining === 0 && decision.retryAfterSeconds > 0)).toBe(
      true,
    );
    expect(await redisA.pttl(key)).toBeGreaterThan(0);
  });

  it('takes one Redis command (one EVALSHA round trip) per rate limit decision and per quota check', async () => {
    const redis = createRedisClient({ url: testRedis().url });
    try {
      await new Promise((resolve) => redis.once('ready', resolve));
      const rateStore = createRedisRateLimitStore({ redis });
      const quotaStore = createRedisQuotaStore({ redis });
      const rateKey = tenantKey(prefix, 'univ_rt', 'rl');
      const quotaKey = tenantKey(prefix, 'univ_rt', 'q', 'api_requests', 'all');
      await rateStore.consume(rateKey, 100, 60_000); // loads the scripts once
      await quotaStore.add(quotaKey, 1, null, false, 0);
      const sent = vi.spyOn(redis, 'sendCommand');
      for (let index = 0; index < 5; index++) await rateStore.consume(rateKey, 100, 60_000);
      expect(sent.mock.calls.map(([command]) => command.name)).toEqual(Array(5).fill('evalsha'));
      sent.mockClear();
      for (let index = 0; index < 5; index++) await quotaStore.add(quotaKey, 1, 100, true, 3600);
      expect(sent.mock.calls.map(([command]) => command.name)).toEqual(Array(5).fill('evalsha'));
      sent.mockRestore();
    } finally {
      redis.disconnect();
    }
  });

  it('a pipeline whose rate limit and quota share one client decides both in one EVALSHA per request', async () => {
    const redis = createRedisClient({ url: testRedis().url });
    const tenants = memoryDirectory([
      makeTenant('univ_one', {
        entitlements: entitlements({
          rpm: 1000,
          limits: {
            rpm: 1000,
            quotas: { api_requests: { limit: 1000, period: 'daily', enforcement: 'block' } },
          },
        }),
      }),
    ]);
    const pipeline = createTenantPipeline({
      directory: tenants,
      logger: pino({ level: 'silent' }),
      metrics: false,
      keyPrefix: prefix,
      rateLimit: { redis },
      quota: { redis },
    });
    try {
      await pipeline.start();
      const request = { method: 'GET', path: '/x', headers: { 'x-tenant-id': 'univ_one' } };
      await pipeline.admit(request); // caches the tenant, loads the script
      const sent = vi.spyOn(redis, 'sendCommand');
      for (let index = 0; index < 5; index++) {
        const admission = await pipeline.admit(request);
        expect(admission.headers['ratelimit-limit']).toBe('1000');
      }
      expect(sent.mock.calls.map(([command]) => command.name)).toEqual(Array(5).fill('evalsha'));
      sent.mockRestore();
      expect(await pipeline.quotas?.usage('univ_one' as TenantId, 'api_requests', 'daily')).toBe(6);
    } finally {
      await pipeline.close();
      redis.disconnect();
    }
  });

  it('one script, still exact: of 60 concurrent requests over two instances, exactly min(rpm, quota) pass, and rate refusals are not metered', async () => {
    const cases = [
      { id: 'univ_rate', rpm: 10, quota: 1000, admitted: 10 },
      { id: 'univ_quota', rpm: 1000, quota: 7, admitted: 7 },
    ];
    for (const { id, rpm, quota, admitted } of cases) {
      const tenants = memoryDirectory([
        makeTenant(id, {
          entitlements: entitlements({
            rpm,
            limits: {
              rpm,
              quotas: { api_requests: { limit: quota, period: 'daily', enforcement: 'block' } },
            },
          }),
        }),
      ]);
      const build = (redis: Redis) =>
        createTenantPipeline({
          directory: tenants,
          logger: pino({ level: 'silent' }),
          metrics: false,
          keyPrefix: prefix,
          rateLimit: { redis },
          quota: { redis },
        });
      const pipelines = [build(redisA), build(redisB)];
      await Promise.all(pipelines.map((pipeline) => pipeline.start()));
      const request = { method: 'GET', path: '/x', headers: { 'x-tenant-id': id } };
      const results = await Promise.allSettled(
        Array.from({ length: 60 }, (_, index) => pipelines[index % 2]!.admit(request)),
      );
      const refusedCodes = new Set(
        results.flatMap((result) =>
          result.status === 'rejected' ? [(result.reason as { code: string }).code] : [],
        ),
      );
      expect({ id, admitted: results.filter((result) => result.status === 'fulfilled').length }).toEqual({
        id,
        admitted,
      });
      expect(refusedCodes).toEqual(new Set([rpm < quota ? 'RATE_LIMITED' : 'QUOTA_EXCEEDED']));
      expect(await pipelines[0]!.quotas?.usage(id as TenantId, 'api_requests', 'daily')).toBe(
        rpm < quota ? admitted : quota,
      );
      await Promise.all(pipelines.map((pipeline) => pipeline.close()));
    }
  });

  it('one script, two fail modes: a Redis outage refuses when either limit fails closed, admits when both fail open', async () => {
    const redis = createRedisClient({ url: 'redis://127.0.0.1:1', connectTimeoutMs: 100 });
    redis.on('error', () => {});
    const tenants = memoryDirectory([
      makeTenant('univ_down', {
        entitlements: entitlements({
          rpm: 100,
          limits: {
            rpm: 100,
            quotas: { api_requests: { limit: 100, period: 'daily', enforcement: 'block' } },
          },
        }),
      }),
    ]);
    const request = { method: 'GET', path: '/x', headers: { 'x-tenant-id': 'univ_down' } };
    try {
      for (const [rate, quota, expected] of [
        ['open', 'open', 'admitted'],
        ['open', 'closed', 'SERVICE_UNAVAILABLE'],
        ['closed', 'open', 'SERVICE_UNAVAILABLE'],
      ] as const) {
        const pipeline = createTenantPipeline({
          directory: tenants,
          logger: pino({ level: 'silent' }),
          metrics: false,
          keyPrefix: prefix,
          storeStartTimeoutMs: 200,
          rateLimit: { redis, failMode: rate },
          quota: { redis, failMode: quota },
        });
        const outcome = await pipeline.admit(request).then(
          () => 'admitted',
          (error: { code: string }) => error.code,
        );
        expect({ rate, quota, outcome }).toEqual({ rate, quota, outcome: expected });
        await pipeline.close();
      }
    } finally {
      redis.disconnect();
    }
  });

  /** Two instances' quota meters over the two Redis connections, one event list. */
  function twoMeters() {
    const events: QuotaEvent[] = [];
    const onEvent = (event: QuotaEvent) => events.push(event);
    const meter = (redis: typeof redisA) =>
      createQuotaMeter({ store: createRedisQuotaStore({ redis }), keyPrefix: prefix, onEvent });
    return { events, meterA: meter(redisA), meterB: meter(redisB) };
  }

  it('emits each soft limit once per period across two instances sharing Redis', async () => {
    const { events, meterA, meterB } = twoMeters();
    const quota = { limit: 50, period: 'daily', enforcement: 'block' } as const;
    const tenantId = 'quota_t' as TenantId;
    const results = await Promise.all(
      Array.from({ length: 80 }, (_, index) =>
        (index % 2 === 0 ? meterA : meterB).consume(tenantId, 'api_requests', quota),
      ),
    );
    expect(results.filter((result) => result.allowed).length).toBe(50);
    // Each threshold exactly once; the two connections' answers may arrive in either order.
    expect(events.map((event) => event.percent).sort((a, b) => a - b)).toEqual([80, 90, 95, 100]);
    expect(await meterA.usage(tenantId, 'api_requests', 'daily')).toBe(50);
    await Promise.all([meterA.close(), meterB.close()]);
  });

  it('record counts every spent amount past a block limit across two instances, each threshold once', async () => {
    const { events, meterA, meterB } = twoMeters();
    const quota = { limit: 150, period: 'daily', enforcement: 'block' } as const;
    const tenantId = 'spent_t' as TenantId;
    await Promise.all(
      Array.from({ length: 40 }, (_, index) =>
        (index % 2 === 0 ? meterA : meterB).record(tenantId, 'llm_tokens', quota, 7),
      ),
    );
    expect(await meterB.usage(tenantId, 'llm_tokens', 'daily')).toBe(280);
    expect(events.map((event) => event.percent).sort((a, b) => a - b)).toEqual([80, 90, 95, 100]);
    expect((await meterA.consume(tenantId, 'llm_tokens', quota, 1)).allowed).toBe(false);
    await Promise.all([meterA.close(), meterB.close()]);
  });

  it('carries a status change to every instance within 1 s (two pipelines, two Redis connections)', async () => {
    const tenants = memoryDirectory([makeTenant('univ_ev')]);
    const busA = createRedisEventBus({ redis: redisA });
    const busB = createRedisEventBus({ redis: redisB });
    const options = { directory: tenants, logger: pino({ level: 'silent' }), metrics: false as const };
    const pipelineA = createTenantPipeline({ ...options, events: busA });
    const pipelineB = createTenantPipeline({ ...options, events: busB });
    await Promise.all([pipelineA.start(), pipelineB.start()]);
    const request = { method: 'GET', path: '/x', headers: { 'x-tenant-id': 'univ_ev' } };
    await pipelineA.admit(request);
    await pipelineB.admit(request);
    const suspended: Tenant = makeTenant('univ_ev', { status: 'suspended' });
    tenants.put(suspended);
    // Both still serve from their caches until the event arrives.
    await expect(pipelineB.admit(request)).resolves.toBeDefined();
    await busA.publish({
      type: 'tenant.changed',
      tenantId: suspended.id,
      status: 'suspended',
      at: new Date().toISOString(),
    });
    await vi.waitFor(
      async () => {
        await expect(pipelineB.admit(request)).rejects.toMatchObject({ code: 'TENANT_SUSPENDED' });
        await expect(pipelineA.admit(request)).rejects.toMatchObject({ code: 'TENANT_SUSPENDED' });
      },
      { timeout: 1_000, interval: 20 },
    );
    await Promise.all([pipelineA.close(), pipelineB.close(), busA.close(), busB.close()]);
  });

  describeRateLimitStore(
    'Redis (Lua GCRA)',
    () => createRedisRateLimitStore({ redis: redisA }),
    () => `${prefix}:{contract}`,
  );
  describeQuotaStore(
    'Redis (Lua check-and-add)',
    () => createRedisQuotaStore({ redis: redisB }),
    () => `${prefix}:{contract}`,
  );

  describeEventBus('Redis pub/sub on two connections', async () => {
    const channel = `${prefix}:contract:${Math.random().toString(36).slice(2)}`;
    const first = createRedisEventBus({ redis: redisA, channel });
    const second = createRedisEventBus({ redis: redisB, channel });
    return {
      first,
      second,
      close: async () => {
        await Promise.all([first.close(), second.close()]);
      },
    };
  });

  it('drops malformed events instead of acting on them', async () => {
    const invalid: string[] = [];
    const bus = createRedisEventBus({
      redis: redisB,
      channel: `${prefix}:events`,
      onInvalidMessage: (raw) => invalid.push(raw),
    });
    const seen: unknown[] = [];
    await bus.subscribe((event) => void seen.push(event));
    await redisA.publish(
      `${prefix}:events`,
      JSON.stringify({ type: 'tenant.changed', tenantId: 'Bad:Id', at: 'x' }),
    );
    await redisA.publish(`${prefix}:events`, 'not json');
    await bus.publish({
      type: 'tenant.deleted',
      tenantId: 'univ_ok' as TenantId,
      at: new Date().toISOString(),
    });
    await vi.waitFor(() => expect(seen.length).toBe(1), { timeout: 2_000 });
    expect(invalid.length).toBe(2);
    await bus.close();
  });
});
