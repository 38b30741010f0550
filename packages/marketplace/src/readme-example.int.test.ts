import type { AddressInfo } from 'node:net';
import { type Catalog, createCatalog } from '@mt-paas/db';
import { mtPaasFastify } from '@mt-paas/middleware/fastify';
import { createTestDatabase, describeWithPostgres, type TestDatabase } from '@mt-paas/test-env';
import { send } from '@mt-paas/test-env/http-client';
import Fastify, { type FastifyInstance } from 'fastify';
import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { SEED_CREATE_BODY } from './__fixtures__/conformance.js';
import { type MarketServer, startMarketServer } from './__fixtures__/market-server.js';
import { createMarketplaceClient } from './client.js';
import { marketplaceFastify } from './fastify.js';
import { createOutbox, createOutboxDispatcher, type Outbox, tenantStatusMessage } from './outbox.js';
import { createCatalogReceiptStore } from './receipts.js';
import { createMarketplaceReceiver } from './receiver.js';
import { generateWebhookSecret } from './standard-webhooks.js';

/**
 * The README's wiring, run: the catalog as the app's state, the handlers of the README, the
 * marketplace routes next to @mt-paas/middleware's tenant pipeline on one Fastify app, and the
 * outbox reaching a local marketplace.
 */
describeWithPostgres('README wiring', () => {
  const secret = generateWebhookSecret();
  let database: TestDatabase;
  let catalog: Catalog;
  let outbox: Outbox;
  let market: MarketServer;
  let app: FastifyInstance;
  let url: string;

  beforeAll(async () => {
    database = await createTestDatabase({ label: 'market_readme' });
    catalog = await createCatalog({ connectionString: database.url });
    await catalog.migrate();
    outbox = createOutbox({ driver: catalog.driver, schema: catalog.schema });
    market = await startMarketServer();
    const receiver = createMarketplaceReceiver({
      serviceId: 'keli_tutor',
      secrets: [secret],
      apiKeys: ['your_api_key'],
      receipts: createCatalogReceiptStore({ driver: catalog.driver, schema: catalog.schema }),
      handlers: {
        async onProvisionRequested(data) {
          await catalog.tenants.upsert({
            id: data.tenantId,
            name: data.tenantName,
            status: 'active',
            adminEmail: data.adminEmail,
            applicationId: data.applicationId,
            applicationKind: data.applicationKind,
          });
          return { accessUrl: `https://tutor.example.com?tenant=${data.tenantId}` };
        },
        async onSubscriptionUpdated(data) {
          await catalog.tenants.setEntitlements(data.tenantId, {
            plan: data.plan,
            features: data.features,
            limits: data.limits,
            expiresAt: data.expiresAt,
            source: 'marketplace',
          });
        },
        async onBlocked(data, { transaction }) {
          await catalog.tenants.setStatus(data.tenantId, 'blocked', { reason: data.reason });
          await outbox.enqueue(
            [tenantStatusMessage({ tenantId: data.tenantId, status: 'blocked', reason: data.reason })],
            { executor: transaction },
          );
        },
        async onUnblocked(data) {
          await catalog.tenants.setStatus(data.tenantId, 'active');
        },
        async onServiceCancelled() {},
        async onUserDeleted() {
          return { deletedTenants: [] };
        },
      },
    });
    app = Fastify();
    await app.register(mtPaasFastify, { directory: catalog.directory, strategies: [{ type: 'header' }] });
    await app.register(marketplaceFastify, { receiver });
    app.get('/courses', async (request) => ({ tenant: request.tenant?.tenantId }));
    await app.listen({ port: 0, host: '127.0.0.1' });
    url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await app?.close();
    await market?.stop();
    await catalog?.close();
    await database?.drop();
  });

  it('onboards, updates the plan, blocks (reported to the market) — through the tenant pipeline', async () => {
    const created = await send(url, {
      method: 'POST',
      path: '/api/tenant/create',
      rawBody: SEED_CREATE_BODY,
      headers: { 'x-api-key': 'your_api_key' },
    });
    expect(created.status).toBe(200);
    expect(created.json).toEqual({
      success: true,
      tenant_id: 'test_univ',
      access_url: 'https://tutor.example.com?tenant=test_univ',
    });

    const courses = await send(url, { path: '/courses', headers: { 'x-tenant-id': 'test_univ' } });
    expect(courses.json).toEqual({ tenant: 'test_univ' });
    // The app's own routes still need a tenant: the pipeline is in force.
    expect((await send(url, { path: '/courses' })).status).toBe(400);

    const peer = new Webhook(secret);
    const signedPost = (path: string, body: string, id: string) => {
      const at = new Date();
      return send(url, {
        method: 'POST',
        path,
        rawBody: body,
        headers: {
          'webhook-id': id,
          'webhook-timestamp': String(Math.floor(at.getTime() / 1000)),
          'webhook-signature': peer.sign(id, at, body),
        },
      });
    };
    const subscription = JSON.stringify({
      type: 'subscription.updated',
      version: 1,
      timestamp: new Date().toISOString(),
      data: {
        tenant_id: 'test_univ',
        plan: 'professional',
        features: { quiz: true },
        limits: { rpm: 600, quotas: {} },
        expires_at: null,
      },
    });
    expect((await signedPost('/api/mt-paas/v1/events', subscription, 'msg_sub_1')).status).toBe(200);
    expect((await catalog.directory.get('test_univ' as never))?.entitlements.features).toMatchObject({
      quiz: true,
    });

    const block = JSON.stringify({
      reason: 'subscription_expired',
      block_at: '2026-01-03T12:00:00Z',
      grace_period_hours: 0,
      message: '만료',
    });
    expect(
      (await signedPost('/api/v1/services/keli_tutor/tenants/test_univ/block', block, 'msg_block_1')).status,
    ).toBe(200);
    expect((await catalog.directory.get('test_univ' as never))?.status).toBe('blocked');

    const client = createMarketplaceClient({ apiUrl: market.url, serviceId: 'keli_tutor', apiKey: 'mk' });
    expect(await createOutboxDispatcher({ outbox, client }).runOnce()).toEqual({
      delivered: 1,
      retried: 0,
      parked: 0,
    });
    expect(market.requests.map((request) => [request.path, request.body.status])).toEqual([
      ['/api/v1/services/keli_tutor/tenants/test_univ/status', 'blocked'],
    ]);
  });
});
