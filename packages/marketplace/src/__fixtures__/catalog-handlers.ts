import type { Catalog } from '@mt-paas/db';
import { expect, it } from 'vitest';
import { createOutbox, tenantStatusMessage } from '../outbox.js';
import { createCatalogReceiptStore } from '../receipts.js';
import { createMarketplaceReceiver, type MarketplaceRequest } from '../receiver.js';
import { generateWebhookSecret, signWebhook } from '../standard-webhooks.js';
import { SEED_CREATE_BODY, SERVICE_ID } from './conformance.js';

/**
 * Handlers that write through `catalog.tenants.*` (the README's wiring) while the receipt's catalog
 * transaction is open: they complete (on PGlite too, which has one connection), and a failing handler's
 * catalog writes roll back with the receipt. Shared by `embedded.test.ts` (PGlite) and
 * `catalog-handlers.int.test.ts` (Postgres).
 */
export function catalogHandlerSuite(getCatalog: () => Catalog): void {
  it('a handler writing through catalog.tenants.* inside the receipt transaction completes and commits', async () => {
    const catalog = getCatalog();
    const receipts = createCatalogReceiptStore(catalog);
    const stale = { status: 200, body: {} };
    const outcome = await receipts.once(
      { webhookId: 'cat_h_1', type: 'tenant.provision_requested', occurredAt: new Date() },
      async () => {
        await catalog.tenants.upsert({ id: 'cat_univ', name: 'Cat Univ', status: 'active' });
        await catalog.tenants.setEntitlements('cat_univ', {
          plan: 'pro',
          features: { quiz: true },
          limits: { rpm: 60, quotas: {} },
        });
        await catalog.tenants.addDomains('cat_univ', ['cat-univ.example']);
        await catalog.tenants.setStatus('cat_univ', 'blocked', { reason: 'test' });
        const tenant = await catalog.directory.get('cat_univ' as never);
        return { status: 200, body: { status: tenant?.status } };
      },
      stale,
    );
    expect(outcome).toEqual({ answer: { status: 200, body: { status: 'blocked' } }, result: 'processed' });
    expect(await catalog.directory.get('cat_univ' as never)).toMatchObject({
      status: 'blocked',
      plan: 'pro',
      domains: ['cat-univ.example'],
    });
  });

  it("through the receiver (README handlers): a failing handler's catalog writes roll back with the receipt", async () => {
    const catalog = getCatalog();
    const secret = generateWebhookSecret();
    const apiKey = 'cat_api_key';
    const outbox = createOutbox(catalog);
    let failBlock = true;
    const receiver = createMarketplaceReceiver({
      serviceId: SERVICE_ID,
      secrets: [secret],
      apiKeys: [apiKey],
      receipts: createCatalogReceiptStore(catalog),
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
        onSubscriptionUpdated: () => {},
        onServiceCancelled: () => {},
        onUserDeleted: () => ({ deletedTenants: [] }),
        async onBlocked(data, { transaction, webhookId }) {
          await catalog.tenants.setStatus(data.tenantId, 'blocked', { reason: data.reason });
          await catalog.tenants.update(data.tenantId, { description: 'blocked by the market' });
          await outbox.enqueue(
            [
              tenantStatusMessage({
                tenantId: data.tenantId,
                status: 'blocked',
                reason: data.reason,
                id: `cat:${webhookId}`,
              }),
            ],
            { executor: transaction },
          );
          if (failBlock) throw new Error('kill switch broadcast failed');
        },
        async onUnblocked(data) {
          await catalog.tenants.setStatus(data.tenantId, 'active');
        },
      },
    });
    const created = await receiver.handle({
      method: 'POST',
      path: '/api/tenant/create',
      headers: { 'x-api-key': apiKey, 'content-type': 'application/json' },
      body: SEED_CREATE_BODY,
    });
    expect(created.status).toBe(200);
    expect(await catalog.directory.get('test_univ' as never)).toMatchObject({ status: 'active' });

    const body = JSON.stringify({
      reason: 'subscription_expired',
      block_at: '2026-01-03T12:00:00Z',
      grace_period_hours: 0,
      message: 'x',
    });
    const block = (): MarketplaceRequest => ({
      method: 'POST',
      path: `/api/v1/services/${SERVICE_ID}/tenants/test_univ/block`,
      headers: { ...signWebhook({ id: 'cat_block_1', timestamp: new Date(), body, secrets: [secret] }) },
      body,
    });
    expect((await receiver.handle(block())).status).toBe(500);
    const unchanged = await catalog.directory.get('test_univ' as never);
    expect(unchanged?.status).toBe('active');
    expect(unchanged?.metadata.description).toBeUndefined();
    const outboxRows = await catalog.driver.query(
      `SELECT 1 FROM "${catalog.schema}".outbox WHERE event_id = 'cat:cat_block_1'`,
    );
    expect(outboxRows.rows).toEqual([]);

    failBlock = false;
    expect((await receiver.handle(block())).status).toBe(200);
    const blocked = await catalog.directory.get('test_univ' as never);
    expect(blocked).toMatchObject({ status: 'blocked', metadata: { description: 'blocked by the market' } });
    expect((await receiver.handle(block())).headers['x-mt-paas-receipt']).toBe('duplicate');
  });
}
