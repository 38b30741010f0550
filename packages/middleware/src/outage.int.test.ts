import { createCatalog } from '@mt-paas/db';
import { describeWith, testRedis } from '@mt-paas/test-env';
import { send } from '@mt-paas/test-env/http-client';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { ADAPTERS } from './__fixtures__/apps.js';
import { entitlements, makeTenant, memoryDirectory } from './__fixtures__/tenants.js';
import { createTenantPipeline, type TenantPipeline } from './pipeline.js';
import { createRedisClient } from './redis-client.js';

/** What a 503 must never show a client: driver text, addresses, ports, database names. */
const LEAKS = [
  'ECONNREFUSED',
  '127.0.0.1',
  ':1 ',
  ':1.',
  'mtpaas_secret_catalog',
  'connect ',
  'Postgres',
  'Redis',
];

describeWith(['redis'], 'a fresh instance before Redis has connected', () => {
  const clients: Array<{ disconnect(): void }> = [];
  afterAll(async () => {
    await testRedis().flush();
    for (const client of clients) client.disconnect();
  });

  function freshPipeline(label: string): TenantPipeline {
    // A brand-new client: still connecting when the first requests arrive.
    const redis = createRedisClient({ url: testRedis().url });
    clients.push(redis);
    return createTenantPipeline({
      directory: memoryDirectory([makeTenant('rpm_twenty', { entitlements: entitlements({ rpm: 20 }) })]),
      rateLimit: { redis },
      quota: { redis },
      keyPrefix: `${testRedis().prefix}${label}`,
      logger: pino({ level: 'silent' }),
      metrics: false,
    });
  }

  it('admits exactly 20 of 200 requests at 20 rpm when they arrive before the connection (pipeline)', async () => {
    const pipeline = freshPipeline('direct');
    const outcomes = await Promise.allSettled(
      Array.from({ length: 200 }, () =>
        pipeline.admit({ method: 'GET', path: '/x', headers: { 'x-tenant-id': 'rpm_twenty' } }),
      ),
    );
    expect(outcomes.filter((outcome) => outcome.status === 'fulfilled').length).toBe(20);
    await pipeline.close();
  });

  describe.each(ADAPTERS)('%s', (name, boot) => {
    it('admits exactly 20 of 200 requests sent as soon as the app is up', async () => {
      const pipeline = freshPipeline(name);
      const app = await boot(pipeline);
      try {
        const responses = await Promise.all(
          Array.from({ length: 200 }, () =>
            send(app.url, { path: '/api/whoami', headers: { 'x-tenant-id': 'rpm_twenty' } }),
          ),
        );
        const statuses = responses.map((response) => response.status);
        expect(statuses.filter((status) => status === 200).length).toBe(20);
        expect(statuses.filter((status) => status === 429).length).toBe(180);
      } finally {
        await app.close();
        await pipeline.close();
      }
    });
  });
});

describe.each(ADAPTERS)('503 answers without internals: %s', (_name, boot) => {
  it('a directory whose database is down answers 503 with a fixed text', async () => {
    const catalog = await createCatalog({
      connectionString: 'postgres://postgres@127.0.0.1:1/mtpaas_secret_catalog',
      maxConnections: 1,
    });
    const pipeline = createTenantPipeline({
      directory: catalog.directory,
      logger: pino({ level: 'silent' }),
      metrics: false,
    });
    const app = await boot(pipeline);
    try {
      const response = await send(app.url, { path: '/api/whoami', headers: { 'x-tenant-id': 'univ_8' } });
      expect(response.status).toBe(503);
      expect(response.json.error.code).toBe('TENANT_STORAGE_UNAVAILABLE');
      for (const leak of LEAKS) expect(response.text).not.toContain(leak);
    } finally {
      await app.close();
      await pipeline.close();
      await catalog.close();
    }
  });

  it('Redis down with failMode closed answers 503 with a fixed text', async () => {
    const redis = createRedisClient({ url: 'redis://127.0.0.1:1', connectTimeoutMs: 100 });
    redis.on('error', () => {});
    const pipeline = createTenantPipeline({
      directory: memoryDirectory([makeTenant('univ_8', { entitlements: entitlements({ rpm: 100 }) })]),
      rateLimit: { redis, failMode: 'closed' },
      quota: { enabled: false },
      storeStartTimeoutMs: 200,
      logger: pino({ level: 'silent' }),
      metrics: false,
    });
    const app = await boot(pipeline);
    try {
      const response = await send(app.url, { path: '/api/whoami', headers: { 'x-tenant-id': 'univ_8' } });
      expect(response.status).toBe(503);
      expect(response.json.error.code).toBe('SERVICE_UNAVAILABLE');
      expect(Number(response.headers['retry-after'])).toBeGreaterThan(0);
      for (const leak of LEAKS) expect(response.text).not.toContain(leak);
    } finally {
      await app.close();
      await pipeline.close();
      redis.disconnect();
    }
  });
});
