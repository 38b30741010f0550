import type { AuditEvent, TenantId } from '@mt-paas/context';
import { type Catalog, createCatalog } from '@mt-paas/db';
import {
  createMarketplaceClient,
  createOutbox,
  type MarketplaceClient,
  type Outbox,
  type TenantBlocked,
  type TenantUnblocked,
} from '@mt-paas/marketplace';
import { afterAll, beforeAll, describe, expect, expectTypeOf, it } from 'vitest';
import { captureLogger } from './__fixtures__/capture-logger.js';
import { type MarketStandIn, startMarketStandIn } from './__fixtures__/market-server.js';
import { createControlPlane } from './control-plane.js';
import type { BlockInput, KillSwitch } from './kill-switch.js';
import type { HeartbeatSender, MarketOutbox } from './market.js';

/** `@mt-paas/marketplace`'s own objects, passed to control as they are, on the embedded catalog (PGlite). */
describe('the marketplace package plugs into control as is', () => {
  let catalog: Catalog;
  let market: MarketStandIn;

  beforeAll(async () => {
    catalog = await createCatalog({ dataDir: 'memory' });
    await catalog.migrate();
    await catalog.tenants.upsert({ id: 'hallym', name: 'Hallym', status: 'active' });
    await catalog.tenants.upsert({ id: 'korea', name: 'Korea', status: 'active' });
    market = await startMarketStandIn();
  }, 60_000);
  afterAll(async () => {
    await market?.close();
    await catalog?.close();
  });

  it('its outbox, client and receiver data fit control (type level)', () => {
    expectTypeOf<Outbox>().toExtend<MarketOutbox>();
    expectTypeOf<MarketplaceClient>().toExtend<HeartbeatSender>();
    // onBlocked: (data) => control.block(data.tenantId, data); onUnblocked: (data) => control.unblock(data.tenantId, data)
    expectTypeOf<TenantBlocked>().toExtend<BlockInput>();
    expectTypeOf<TenantUnblocked>().toExtend<NonNullable<Parameters<KillSwitch['unblock']>[1]>>();
  });

  it('beats through createMarketplaceClient, reports blocks and alerts through createOutbox', async () => {
    const outbox = createOutbox({ driver: catalog.driver, schema: catalog.schema });
    const client = createMarketplaceClient({ apiUrl: market.url, apiKey: 'mk', serviceId: 'keli_tutor' });
    const control = createControlPlane({
      serviceId: 'keli_tutor',
      catalog,
      outbox,
      heartbeat: {
        sender: client,
        intervalMs: 60_000,
        metrics: () => ({ requestsPerMinute: 150, errorRate: 0.01, avgResponseTimeMs: 250 }),
      },
      logger: captureLogger(),
    });

    expect(await control.heartbeat!.beat()).toBe(true);
    expect(market.invalid).toEqual([]);
    expect(market.beats.at(-1)).toMatchObject({
      path: '/api/v1/services/keli_tutor/heartbeat',
      headers: { authorization: 'Bearer mk' },
      body: {
        service_id: 'keli_tutor',
        status: 'healthy',
        active_tenants: ['hallym', 'korea'],
        metrics: { requests_per_minute: 150, error_rate: 0.01, avg_response_time_ms: 250 },
      },
    });

    await control.block('hallym', { reason: 'policy_violation', message: 'Blocked for review.' });
    await control.unblock('hallym');
    const alert: AuditEvent = {
      type: 'cross_tenant_access_attempt',
      severity: 'high',
      tenantId: 'korea' as TenantId,
      targetTenantId: 'hallym',
      actor: { ip: '123.45.67.89' },
      details: { path: '/api/courses/123' },
      at: new Date('2026-01-03T12:00:00Z'),
    };
    await control.audit.record(alert);
    await control.stop();

    // What the marketplace's dispatcher will deliver, read back through the marketplace's own outbox.
    const claimed = await outbox.claim(10, 30);
    const statuses = claimed.filter((message) => message.type === 'tenant.status');
    expect(statuses.map((message) => [message.tenantId, message.payload.status])).toEqual(
      expect.arrayContaining([
        ['hallym', 'blocked'],
        ['hallym', 'active'],
      ]),
    );
    expect(statuses).toHaveLength(2);
    expect(claimed.filter((message) => message.type === 'audit.alert').map((m) => m.payload)).toEqual([
      {
        service_id: 'keli_tutor',
        alert_type: 'cross_tenant_access_attempt',
        severity: 'high',
        details: {
          source_tenant: 'korea',
          target_tenant: 'hallym',
          endpoint: '/api/courses/123',
          ip_address: '123.45.67.89',
        },
        timestamp: '2026-01-03T12:00:00.000Z',
      },
    ]);
    expect((await outbox.stats()).pending).toBe(3);
    const { body } = await control.metrics.render();
    expect(body).toMatch(/^mtpaas_outbox_pending_messages 3$/m);
  });
});
