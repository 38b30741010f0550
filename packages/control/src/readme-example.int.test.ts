import { createCatalog } from '@mt-paas/db';
import { createMarketplaceClient, createOutbox } from '@mt-paas/marketplace';
import { createRedisClient, createRedisEventBus } from '@mt-paas/middleware';
import { metricsHandler, mtPaasFastify } from '@mt-paas/middleware/fastify';
import { describeWith, testRedis, useTestDatabase } from '@mt-paas/test-env';
import Fastify from 'fastify';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { expect, it } from 'vitest';
import { captureLogger } from './__fixtures__/capture-logger.js';
import { startLrsStandIn } from './__fixtures__/lrs-server.js';
import { startMarketStandIn } from './__fixtures__/market-server.js';
import { createControlPlane, createRegistryMetricsSource } from './index.js';

/** The README example, run against local servers (market and LRS stand-ins, Postgres, Redis). */
describeWith(['postgres', 'redis'], 'README example', () => {
  const database = useTestDatabase({ label: 'readme' });

  it('wires control beside the Fastify pipeline as the README shows', async () => {
    const market = await startMarketStandIn();
    const lrs = await startLrsStandIn({ username: 'lrs', password: 'secret' });
    const catalog = await createCatalog({ connectionString: database.url });
    await catalog.migrate();
    await catalog.tenants.upsert({ id: 'hallym', name: 'Hallym University', status: 'active' });
    const redis = createRedisClient({ url: testRedis().url });
    const events = createRedisEventBus({ redis, channel: `${testRedis().prefix}readme-events` });
    const registry = new Registry();
    const client = createMarketplaceClient({ apiUrl: market.url, apiKey: 'mk', serviceId: 'keli_tutor' });
    const outbox = createOutbox({ driver: catalog.driver, schema: catalog.schema });

    const control = createControlPlane({
      serviceId: 'keli_tutor',
      catalog,
      events,
      outbox,
      heartbeat: {
        sender: client,
        intervalMs: 60_000,
        metrics: createRegistryMetricsSource({ registry }),
      },
      audit: { crossTenantAudit: true },
      activityLog: {
        endpoint: lrs.endpoint,
        username: 'lrs',
        password: 'secret',
        serviceUrl: 'https://tutor.example',
      },
      metrics: { registry },
      logger: captureLogger(),
    });

    const app = Fastify();
    await app.register(mtPaasFastify, {
      directory: catalog.directory,
      events,
      auditSink: control.audit,
      metrics: { registry },
      logger: pino({ level: 'silent' }),
    });
    app.get('/metrics', { config: { mtPaas: { tenant: 'optional', auth: 'none' } } }, metricsHandler);
    app.post('/chat', async () => {
      control.logActivity({ verb: 'asked', object: 'ai_tutor', result: { message_length: 120 } });
      return { response: '…' };
    });
    control.start();

    const chat = await app.inject({ method: 'POST', url: '/chat', headers: { 'x-tenant-id': 'hallym' } });
    expect(chat.statusCode).toBe(200);
    expect(await control.heartbeat!.beat()).toBe(true);
    expect(market.beats.at(-1)?.body).toMatchObject({ service_id: 'keli_tutor', active_tenants: ['hallym'] });
    expect(market.beats.at(-1)?.body.metrics.requests_per_minute).toBeGreaterThan(0);
    expect(market.beats.at(-1)?.headers.authorization).toBe('Bearer mk');

    await control.block('hallym', {
      reason: 'subscription_expired',
      message: '구독이 만료되었습니다. 갱신해주세요.',
      gracePeriodHours: 24,
    });
    const warned = await app.inject({ method: 'POST', url: '/chat', headers: { 'x-tenant-id': 'hallym' } });
    expect(warned.statusCode).toBe(200);
    expect(warned.headers['x-tenant-warning']).toMatch(/^Access for this tenant will be blocked at /);
    await control.unblock('hallym');
    const reports = await catalog.driver.query<{ type: string; payload: { status: string } }>(
      `SELECT type, payload FROM "${catalog.schema}".outbox WHERE tenant_id = 'hallym' ORDER BY created_at, event_id`,
    );
    expect(reports.rows.map((row) => [row.type, row.payload.status])).toEqual([
      ['tenant.status', 'blocked'],
      ['tenant.status', 'active'],
    ]);

    const metrics = await app.inject({ method: 'GET', url: '/metrics' });
    expect(metrics.body).toContain('mtpaas_http_requests_total{');
    expect(metrics.body).toContain('mtpaas_kill_switch_actions_total{action="block"} 1');

    await control.stop();
    expect(lrs.refusals).toEqual([]);
    expect(lrs.statements).toHaveLength(2);
    expect(lrs.statements[0]).toMatchObject({
      context: { extensions: { 'https://tutor.example/xapi/extensions/tenant': 'hallym' } },
    });
    await app.close();
    await events.close();
    redis.disconnect();
    await catalog.close();
    await Promise.all([market.close(), lrs.close()]);
  });
});
