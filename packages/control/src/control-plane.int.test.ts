import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { type Catalog, createCatalog } from '@mt-paas/db';
import { createMarketplaceClient } from '@mt-paas/marketplace';
import { mtPaasFastify } from '@mt-paas/middleware/fastify';
import { describeWithPostgres, useTestDatabase } from '@mt-paas/test-env';
import Fastify, { type FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { captureLogger } from './__fixtures__/capture-logger.js';
import { catalogOutbox } from './__fixtures__/catalog-outbox.js';
import { heartbeatBodySchema, type MarketStandIn, startMarketStandIn } from './__fixtures__/market-server.js';
import { createControlPlane } from './control-plane.js';
import { createRegistryMetricsSource } from './registry-metrics-source.js';

/** The control plane on a real Postgres catalog, wired to a real Fastify pipeline as a vendor would. */
describeWithPostgres('control plane on the Postgres catalog', () => {
  const database = useTestDatabase({ label: 'control' });
  let catalog: Catalog;
  let market: MarketStandIn;

  beforeAll(async () => {
    catalog = await createCatalog({ connectionString: database.url });
    await catalog.migrate();
    for (const [id, status, plan] of [
      ['hallym', 'active', 'starter'],
      ['korea', 'active', 'enterprise'],
      ['snu', 'grace', 'starter'],
      ['gone', 'suspended', 'free'],
    ] as const) {
      await catalog.tenants.upsert({ id, name: id, status, plan });
    }
    market = await startMarketStandIn();
  });
  afterAll(async () => {
    await market?.close();
    await catalog?.close();
  });

  async function appWith(
    crossTenantAudit: boolean,
    extend?: (app: FastifyInstance, control: ReturnType<typeof createControlPlane>) => void,
  ) {
    const outbox = catalogOutbox(catalog);
    const control = createControlPlane({
      serviceId: 'keli_tutor',
      catalog,
      outbox,
      audit: { crossTenantAudit },
      logger: captureLogger(),
    });
    const app: FastifyInstance = Fastify();
    await app.register(mtPaasFastify, {
      directory: catalog.directory,
      auditSink: control.audit,
      strategies: [{ type: 'header' }, { type: 'query', name: 'tenant_id' }],
      logger: pino({ level: 'silent' }),
      metrics: false,
    });
    app.get('/api/courses/:id', async () => ({ ok: true }));
    extend?.(app, control);
    await app.ready();
    return { control, app };
  }

  async function rows<R>(text: string, params: unknown[] = []): Promise<R[]> {
    return (await catalog.driver.query<R>(text.replaceAll('$schema', `"${catalog.schema}"`), params)).rows;
  }

  describe('audit: pipeline events land in audit_log and high ones reach the market outbox', () => {
    it('a cross-tenant attempt through the real pipeline → one audit row and one seed §5.3 alert; a flood stays bounded', async () => {
      const { control, app } = await appWith(true);
      const attempt = () =>
        app.inject({
          method: 'GET',
          url: '/api/courses/123?tenant_id=korea',
          headers: { 'x-tenant-id': 'hallym' },
          remoteAddress: '123.45.67.89',
        });
      const first = await attempt();
      expect(first.statusCode).toBe(403);
      expect(first.json().error.code).toBe('CROSS_TENANT_ACCESS');
      for (let index = 0; index < 200; index++) await attempt();
      await control.stop();
      const audits = await rows<{ type: string; severity: string; details: Record<string, unknown> }>(
        "select type, severity, details from $schema.audit_log where type = 'cross_tenant_access_attempt' and tenant_id = 'hallym' order by id",
      );
      expect(audits).toHaveLength(2);
      expect(audits[1]?.details).toMatchObject({ aggregated: true, count: 200 });
      const alerts = await rows<{ type: string; payload: Record<string, unknown> }>(
        "select type, payload from $schema.outbox where type = 'audit.alert' order by created_at",
      );
      expect(alerts).toHaveLength(2);
      expect(alerts[0]?.payload).toMatchObject({
        service_id: 'keli_tutor',
        alert_type: 'cross_tenant_access_attempt',
        severity: 'high',
        details: {
          source_tenant: 'hallym',
          target_tenant: 'korea',
          endpoint: '/api/courses/123',
          ip_address: '123.45.67.89',
        },
      });
      expect(Number.isNaN(Date.parse(String(alerts[0]?.payload.timestamp)))).toBe(false);
      await app.close();
    });

    it('security.cross_tenant_audit: false — the request is still refused, but nothing is written or forwarded', async () => {
      const before = await rows<{ n: string }>('select count(*) as n from $schema.audit_log');
      const outboxBefore = await rows<{ n: string }>('select count(*) as n from $schema.outbox');
      const { control, app } = await appWith(false);
      const response = await app.inject({
        method: 'GET',
        url: '/api/courses/1?tenant_id=snu',
        headers: { 'x-tenant-id': 'korea' },
      });
      expect(response.statusCode).toBe(403);
      await control.stop();
      expect(control.audit.suppressed).toBe(1);
      expect(await rows('select count(*) as n from $schema.audit_log')).toEqual(before);
      expect(await rows('select count(*) as n from $schema.outbox')).toEqual(outboxBefore);
      // Other security events are still audited.
      await control.audit.record({
        type: 'admin_login',
        severity: 'low',
        actor: { userId: 'ops' },
        at: new Date(),
      });
      expect(await rows("select type from $schema.audit_log where type = 'admin_login'")).toHaveLength(1);
      await app.close();
    });
  });

  it('authentication failures under a flood (500 requests without a token) → at most two audit rows per tenant and reason', async () => {
    const { control, app } = await appWith(true, (app, control) => {
      // The wiring a vendor (or @mt-paas/framework) adds: every 401 is counted by the audit logger.
      app.addHook('onResponse', async (request, reply) => {
        if (reply.statusCode !== 401) return;
        control.audit.authFailure({
          tenantId: request.tenant?.tenantId ?? String(request.headers['x-tenant-id'] ?? ''),
          reason: 'unauthenticated',
          ip: request.ip,
          endpoint: request.routeOptions.url ?? request.url,
        });
      });
      app.get('/api/private', { config: { mtPaas: { auth: 'jwt' } } }, async () => ({ ok: true }));
    });
    for (let index = 0; index < 500; index++) {
      const response = await app.inject({
        method: 'GET',
        url: '/api/private',
        headers: { 'x-tenant-id': 'snu' },
      });
      expect(response.statusCode).toBe(401);
    }
    await control.stop();
    const audits = await rows<{ details: Record<string, unknown> }>(
      "select details from $schema.audit_log where type = 'auth_failed' and tenant_id = 'snu' order by id",
    );
    expect(audits).toHaveLength(2);
    expect(audits.map((row) => row.details.count ?? 1)).toEqual([1, 499]);
    // Medium severity: not forwarded to the market.
    expect(await rows("select 1 from $schema.outbox where payload->>'alert_type' = 'auth_failed'")).toEqual(
      [],
    );
    await app.close();
  });

  it('heartbeat: active tenants from the catalog, request metrics from the pipeline registry, to a local market', async () => {
    const app = Fastify();
    await app.register(mtPaasFastify, {
      directory: catalog.directory,
      logger: pino({ level: 'silent' }),
    });
    app.get('/ok', async () => ({ ok: true }));
    app.get('/boom', async () => {
      throw new Error('handler failed');
    });
    await app.ready();
    const registry = app.mtPaas.metrics!.registry;
    const control = createControlPlane({
      serviceId: 'keli_tutor',
      catalog,
      heartbeat: {
        sender: createMarketplaceClient({ apiUrl: market.url, apiKey: 'k', serviceId: 'keli_tutor' }),
        intervalMs: 60_000,
        metrics: createRegistryMetricsSource({ registry }),
      },
      metrics: { registry },
      logger: captureLogger(),
    });
    for (let index = 0; index < 9; index++) {
      await app.inject({ method: 'GET', url: '/ok', headers: { 'x-tenant-id': 'hallym' } });
    }
    await app.inject({ method: 'GET', url: '/boom', headers: { 'x-tenant-id': 'hallym' } });
    expect(await control.heartbeat!.beat()).toBe(true);
    const body = heartbeatBodySchema.parse(market.beats.at(-1)?.body);
    expect(body.active_tenants).toEqual(['hallym', 'korea', 'snu']); // active and grace, not suspended
    expect(body.metrics.error_rate).toBe(0.1);
    expect(body.metrics.requests_per_minute).toBeGreaterThan(0);
    expect(body.status).toBe('healthy');
    const { body: exposition } = await control.metrics.render();
    expect(exposition).toContain('mtpaas_heartbeats_total{result="ok"} 1');
    expect(exposition).toContain('mtpaas_tenants{status="active",plan="starter"} 1');
    expect(exposition).toContain('mtpaas_tenants{status="suspended",plan="free"} 1');
    const promtool = ['/usr/bin/promtool', '/usr/local/bin/promtool'].find((path) => existsSync(path));
    if (promtool !== undefined) {
      const check = spawnSync(promtool, ['check', 'metrics'], { input: exposition, encoding: 'utf8' });
      expect(`${check.stdout}${check.stderr}`).toBe('');
      expect(check.status).toBe(0);
    }
    await control.stop();
    await app.close();
  });

  it('activity log off when not configured; start/stop leave nothing running', async () => {
    const control = createControlPlane({ serviceId: 'keli_tutor', catalog, logger: captureLogger() });
    control.start();
    expect(control.logActivity({ verb: 'asked', object: 'ai_tutor' })).toBeUndefined();
    expect(control.heartbeat).toBeUndefined();
    await control.stop();
  });
});
