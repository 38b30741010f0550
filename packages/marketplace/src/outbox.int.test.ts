import type { AuditEvent, TenantId, UsageRecord } from '@mt-paas/context';
import { type Catalog, createCatalog } from '@mt-paas/db';
import { createTestDatabase, describeWithPostgres, type TestDatabase } from '@mt-paas/test-env';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type MarketServer, startMarketServer } from './__fixtures__/market-server.js';
import { createMarketplaceClient, type MarketplaceClient } from './client.js';
import {
  createOutbox,
  createOutboxAuditSink,
  createOutboxDispatcher,
  createOutboxUsageSink,
  type Outbox,
  type OutboxDispatcher,
  tenantStatusMessage,
} from './outbox.js';
import { createCatalogReceiptStore } from './receipts.js';
import { createMarketplaceReceiver } from './receiver.js';
import { createCatalogReplayStore } from './sso.js';
import { generateWebhookSecret, signWebhook } from './standard-webhooks.js';

const SERVICE_ID = 'keli_tutor';
const tenant = (id: string) => id as TenantId;

describeWithPostgres('outbox on Postgres', () => {
  let database: TestDatabase;
  let catalog: Catalog;
  let market: MarketServer;
  let outbox: Outbox;
  let client: MarketplaceClient;

  beforeAll(async () => {
    database = await createTestDatabase({ label: 'market_outbox' });
    catalog = await createCatalog({ connectionString: database.url, maxConnections: 8 });
    await catalog.migrate();
    market = await startMarketServer();
    outbox = createOutbox({ driver: catalog.driver, schema: catalog.schema });
    client = createMarketplaceClient({
      apiUrl: market.url,
      apiKey: 'mk_test',
      serviceId: SERVICE_ID,
      timeoutMs: 2000,
      retries: 0,
    });
  });
  afterAll(async () => {
    await market?.stop().catch(() => {});
    await catalog?.close();
    await database?.drop();
  });
  beforeEach(async () => {
    await catalog.driver.query(`DELETE FROM "${catalog.schema}".outbox`);
    market.requests.length = 0;
    market.answers = [];
  });

  const dispatcher = (): OutboxDispatcher =>
    createOutboxDispatcher({
      outbox,
      client,
      batchSize: 5,
      leaseSeconds: 30,
      retryBaseSeconds: 0.05,
      maxRetryDelaySeconds: 0.2,
    });

  async function drain(worker: OutboxDispatcher) {
    for (let round = 0; round < 400; round++) {
      const stats = await outbox.stats();
      if (stats.pending === 0) return;
      const done = await worker.runOnce();
      if (done.delivered + done.retried + done.parked === 0)
        await new Promise((resolve) => setTimeout(resolve, 20));
    }
    throw new Error('the outbox did not drain');
  }

  function usage(index: number): UsageRecord {
    return {
      tenantId: tenant(index % 2 === 0 ? 'hallym' : 'korea'),
      meter: 'api_requests',
      quantity: index + 1,
      at: new Date('2026-01-03T12:00:00Z'),
      idempotencyKey: `flush-${index}`,
    };
  }

  function alert(index: number, severity: AuditEvent['severity']): AuditEvent {
    return {
      type: 'cross_tenant_access_attempt',
      severity,
      tenantId: tenant('hallym'),
      targetTenantId: 'korea',
      actor: { ip: `10.0.0.${index}` },
      details: { path: `/api/courses/${index}`, method: 'GET' },
      at: new Date('2026-01-03T12:00:00Z'),
    };
  }

  it('delivers every usage record and high audit alert produced while the market was down: all once, none twice, two dispatchers', async () => {
    const usageSink = createOutboxUsageSink({ outbox, next: catalog.usage });
    const auditSink = createOutboxAuditSink({ outbox, serviceId: SERVICE_ID, next: catalog.audit });
    await market.stop();
    const records = Array.from({ length: 40 }, (_, index) => usage(index));
    for (let index = 0; index < records.length; index += 8)
      await usageSink.record(records.slice(index, index + 8));
    await usageSink.record(records.slice(0, 5)); // a flush retried by the middleware: same keys
    for (let index = 0; index < 12; index++)
      await auditSink.record(alert(index, index % 3 === 0 ? 'medium' : 'high'));
    const highAlerts = 8;

    const first = dispatcher();
    const failed = await first.runOnce();
    expect(failed.delivered).toBe(0);
    expect(failed.retried).toBe(5);
    const stats = await outbox.stats();
    expect(stats.pending).toBe(records.length + highAlerts);
    expect(stats.oldestPendingAgeSeconds).not.toBeNull();

    await market.start();
    // A "restart": two fresh dispatchers (two instances) share the work.
    await Promise.all([drain(dispatcher()), drain(dispatcher())]);

    expect(await outbox.stats()).toMatchObject({ pending: 0, parked: 0, oldestPendingAgeSeconds: null });
    const keys = market.requests.map((request) => request.headers['idempotency-key']);
    expect(new Set(keys).size).toBe(keys.length); // none twice
    expect(keys).toHaveLength(records.length + highAlerts); // all of them
    const usageRequests = market.requests.filter(
      (request) => request.path === `/api/v1/services/${SERVICE_ID}/usage`,
    );
    const sentKeys = usageRequests.map((request) => request.body.records[0].idempotency_key).sort();
    expect(sentKeys).toEqual(records.map((record) => record.idempotencyKey).sort());
    expect(usageRequests[0]?.body.records[0]).toEqual({
      tenant_id: expect.any(String),
      meter: 'api_requests',
      quantity: expect.any(Number),
      at: '2026-01-03T12:00:00.000Z',
      period_start: null,
      idempotency_key: expect.any(String),
      attributes: {},
    });
    const alerts = market.requests.filter((request) => request.path === '/api/v1/audit/alerts');
    expect(alerts).toHaveLength(highAlerts);
    expect(alerts[0]?.body).toEqual({
      service_id: SERVICE_ID,
      alert_type: 'cross_tenant_access_attempt',
      severity: 'high',
      details: {
        source_tenant: 'hallym',
        target_tenant: 'korea',
        endpoint: expect.stringMatching(/^\/api\/courses\/\d+$/),
        ip_address: expect.stringMatching(/^10\.0\.0\./),
      },
      timestamp: '2026-01-03T12:00:00.000Z',
    });
    // The catalog kept its own copy of every event through `next`.
    const audit = await catalog.driver.query<{ count: string }>(
      `SELECT count(*) AS count FROM "${catalog.schema}".audit_log`,
    );
    expect(Number(audit.rows[0]?.count)).toBe(12);
  });

  it('two dispatchers racing on the same due messages never send one twice', async () => {
    await outbox.enqueue(
      Array.from({ length: 60 }, (_, index) =>
        tenantStatusMessage({ tenantId: 'hallym', status: 'active', id: `race-${index}` }),
      ),
    );
    const workers = [dispatcher(), dispatcher(), dispatcher()];
    await Promise.all(workers.map((worker) => drain(worker)));
    const keys = market.requests.map((request) => request.headers['idempotency-key']);
    expect(keys).toHaveLength(60);
    expect(new Set(keys).size).toBe(60);
  });

  it('picks up a message whose dispatcher died holding the lease, once the lease ends', async () => {
    await outbox.enqueue([
      tenantStatusMessage({ tenantId: 'korea', status: 'blocked', reason: 'expired', id: 'crash-1' }),
    ]);
    const leased = await outbox.claim(10, 0.3); // this "instance" crashes before delivering
    expect(leased.map((message) => message.id)).toEqual(['crash-1']);
    expect((await dispatcher().runOnce()).delivered).toBe(0); // still leased
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect((await dispatcher().runOnce()).delivered).toBe(1);
    expect(market.requests.map((request) => request.path)).toEqual([
      `/api/v1/services/${SERVICE_ID}/tenants/korea/status`,
    ]);
    expect(market.requests[0]?.body).toMatchObject({
      tenant_id: 'korea',
      status: 'blocked',
      reason: 'expired',
    });
  });

  it('stops a slow round before its lease ends and gives the rest back at once', async () => {
    await outbox.enqueue(
      Array.from({ length: 5 }, (_, index) =>
        tenantStatusMessage({ tenantId: 'hallym', status: 'active', id: `slow-${index}` }),
      ),
    );
    const sent: string[] = [];
    const slowClient: MarketplaceClient = {
      ...client,
      async syncTenantStatus(_report, call) {
        await new Promise((resolve) => setTimeout(resolve, 300));
        sent.push(call?.idempotencyKey as string);
      },
    };
    const worker = createOutboxDispatcher({
      outbox,
      client: slowClient,
      leaseSeconds: 1,
      deliveryBudgetMs: 500,
    });
    const round = await worker.runOnce();
    // Five deliveries of 300 ms cannot fit in a 1 s lease: the round delivered some and released the rest.
    expect(round.delivered).toBeGreaterThan(0);
    expect(round.delivered).toBeLessThan(5);
    expect((await outbox.stats()).pending).toBe(5 - round.delivered);
    const released = await outbox.claim(10, 30); // due again right away, not after the lease
    expect(released).toHaveLength(5 - round.delivered);
    expect(released.every((message) => message.attempts === 1)).toBe(true);
    await outbox.release(released.map((message) => message.id));
    await drain(createOutboxDispatcher({ outbox, client: slowClient, leaseSeconds: 30 }));
    expect([...sent].sort()).toEqual(['slow-0', 'slow-1', 'slow-2', 'slow-3', 'slow-4']);
  });

  it('parks a message the market refuses (4xx) and honours Retry-After on a 503', async () => {
    await outbox.enqueue([
      tenantStatusMessage({
        tenantId: 'hallym',
        status: 'active',
        id: 'refused-1',
        at: new Date('2026-01-01T00:00:00Z'),
      }),
      tenantStatusMessage({
        tenantId: 'hallym',
        status: 'active',
        id: 'later-1',
        at: new Date('2026-01-01T00:00:01Z'),
      }),
    ]);
    market.answers = [
      { status: 422, body: { detail: 'bad' } },
      { status: 503, headers: { 'retry-after': '120' } },
    ];
    const worker = createOutboxDispatcher({ outbox, client, retryBaseSeconds: 0.05 });
    expect(await worker.runOnce()).toEqual({ delivered: 0, retried: 1, parked: 1 });
    expect(await outbox.stats()).toMatchObject({ pending: 1, parked: 1 });
    const row = await catalog.driver.query<{ wait: number }>(
      `SELECT extract(epoch FROM next_attempt_at - now()) AS wait FROM "${catalog.schema}".outbox WHERE event_id = 'later-1'`,
    );
    expect(Number(row.rows[0]?.wait)).toBeGreaterThan(100);
    expect(await worker.runOnce()).toEqual({ delivered: 0, retried: 0, parked: 0 });
  });

  it('prunes delivered messages only', async () => {
    await outbox.enqueue([
      tenantStatusMessage({ tenantId: 'hallym', status: 'active', id: 'prune-delivered' }),
      tenantStatusMessage({ tenantId: 'hallym', status: 'active', id: 'prune-pending' }),
    ]);
    await outbox.complete('prune-delivered');
    expect(await outbox.prune(3600)).toBe(0); // delivered just now: kept
    await catalog.driver.query(
      `UPDATE "${catalog.schema}".outbox SET delivered_at = now() - interval '2 days' WHERE event_id = 'prune-delivered'`,
    );
    expect(await outbox.prune(3600)).toBe(1);
    const rows = await catalog.driver.query<{ event_id: string }>(
      `SELECT event_id FROM "${catalog.schema}".outbox`,
    );
    expect(rows.rows.map((row) => row.event_id)).toEqual(['prune-pending']);
  });

  it('writes in the caller’s transaction: rolled back with it, committed with it', async () => {
    await expect(
      catalog.driver.transaction(async (session) => {
        await outbox.enqueue(
          [tenantStatusMessage({ tenantId: 'hallym', status: 'suspended', id: 'tx-rollback' })],
          { executor: session },
        );
        throw new Error('the state change failed');
      }),
    ).rejects.toThrow('the state change failed');
    await catalog.driver.transaction(async (session) => {
      await outbox.enqueue(
        [tenantStatusMessage({ tenantId: 'hallym', status: 'suspended', id: 'tx-commit' })],
        { executor: session },
      );
    });
    const rows = await catalog.driver.query<{ event_id: string }>(
      `SELECT event_id FROM "${catalog.schema}".outbox`,
    );
    expect(rows.rows.map((row) => row.event_id)).toEqual(['tx-commit']);
  });

  it('a webhook handler’s outbox write commits with the receipt, or not at all when the handler fails', async () => {
    const secret = generateWebhookSecret();
    let fail = true;
    const receiver = createMarketplaceReceiver({
      serviceId: SERVICE_ID,
      secrets: [secret],
      receipts: createCatalogReceiptStore({ driver: catalog.driver, schema: catalog.schema }),
      handlers: {
        onProvisionRequested: () => {},
        onSubscriptionUpdated: () => {},
        onServiceCancelled: () => {},
        onUserDeleted: () => {},
        async onBlocked(data, context) {
          await outbox.enqueue(
            [
              tenantStatusMessage({
                tenantId: data.tenantId,
                status: 'blocked',
                reason: data.reason,
                id: `blocked:${context.webhookId}`,
              }),
            ],
            { executor: context.transaction },
          );
          if (fail) throw new Error('kill switch broadcast failed');
        },
        onUnblocked: () => {},
      },
    });
    const body = JSON.stringify({
      reason: 'subscription_expired',
      block_at: '2026-01-03T12:00:00Z',
      grace_period_hours: 24,
      message: 'x',
    });
    const request = () => ({
      method: 'POST',
      path: `/api/v1/services/${SERVICE_ID}/tenants/hallym/block`,
      headers: { ...signWebhook({ id: 'msg_tx_1', timestamp: new Date(), body, secrets: [secret] }) },
      body,
    });
    expect((await receiver.handle(request())).status).toBe(500);
    expect(await outbox.stats()).toMatchObject({ pending: 0 });
    fail = false;
    expect((await receiver.handle(request())).status).toBe(200);
    expect((await receiver.handle(request())).headers['x-mt-paas-receipt']).toBe('duplicate');
    const rows = await catalog.driver.query<{ event_id: string }>(
      `SELECT event_id FROM "${catalog.schema}".outbox`,
    );
    expect(rows.rows.map((row) => row.event_id)).toEqual(['blocked:msg_tx_1']);
  });

  it('the catalog replay store lets one jti through once across instances', async () => {
    const [a, b] = [
      createCatalogReplayStore({ driver: catalog.driver, schema: catalog.schema }),
      createCatalogReplayStore({ driver: catalog.driver, schema: catalog.schema }),
    ];
    const expires = new Date(Date.now() + 60_000);
    const results = await Promise.all([
      a.claim('jti-1', expires),
      b.claim('jti-1', expires),
      a.claim('jti-1', expires),
    ]);
    expect(results.filter(Boolean)).toHaveLength(1);
    expect(await b.claim('jti-2', expires)).toBe(true);
  });

  describe('start / stop', () => {
    it('delivers in the background until stopped', async () => {
      await outbox.enqueue([tenantStatusMessage({ tenantId: 'hallym', status: 'active', id: 'bg-1' })]);
      const worker = createOutboxDispatcher({ outbox, client, pollIntervalMs: 20 });
      worker.start();
      for (let tries = 0; tries < 100 && (await outbox.stats()).pending > 0; tries++) {
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      await worker.stop();
      expect(market.requests.map((request) => request.headers['idempotency-key'])).toEqual(['bg-1']);
    });
  });
});
