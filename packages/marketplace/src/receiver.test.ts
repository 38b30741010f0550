import { describe, expect, it } from 'vitest';
import { createMemoryReceiptStore } from './receipts.js';
import { createMarketplaceReceiver, type MarketplaceHandlers, type MarketplaceRequest } from './receiver.js';
import { generateWebhookSecret, signWebhook } from './standard-webhooks.js';

function handlers(calls: string[]): MarketplaceHandlers {
  const record = (name: string) => (data: unknown) => {
    calls.push(`${name}:${(data as { tenantId?: string }).tenantId ?? ''}`);
  };
  return {
    onProvisionRequested: record('provision'),
    onSubscriptionUpdated: record('subscription'),
    onServiceCancelled: record('cancelled'),
    onUserDeleted: () => ({ deletedTenants: [] }),
    onBlocked: record('blocked'),
    onUnblocked: record('unblocked'),
  };
}

const parse = (body: string) => JSON.parse(body);

describe('marketplace receiver core', () => {
  it('refuses a captured delivery replayed after the tolerance; within it, answers the first answer', async () => {
    const secret = generateWebhookSecret();
    let clock = new Date('2026-01-03T12:00:00Z');
    const calls: string[] = [];
    const receiver = createMarketplaceReceiver({
      serviceId: 'keli_tutor',
      secrets: [secret],
      handlers: handlers(calls),
      now: () => clock,
    });
    const body = JSON.stringify({
      type: 'tenant.unblocked',
      version: 1,
      timestamp: clock.toISOString(),
      data: { tenant_id: 'hallym' },
    });
    const captured: MarketplaceRequest = {
      method: 'POST',
      path: '/api/mt-paas/v1/events',
      headers: { ...signWebhook({ id: 'msg_captured', timestamp: clock, body, secrets: [secret] }) },
      body,
    };
    const first = await receiver.handle(captured);
    expect(first.status).toBe(200);
    clock = new Date(clock.getTime() + 60_000);
    const duplicate = await receiver.handle(captured);
    expect(duplicate.body).toBe(first.body);
    expect(duplicate.headers['x-mt-paas-receipt']).toBe('duplicate');
    clock = new Date(clock.getTime() + 10 * 60_000);
    const replay = await receiver.handle(captured);
    expect(replay.status).toBe(401);
    expect(parse(replay.body).error).toMatchObject({
      code: 'WEBHOOK_SIGNATURE_INVALID',
      details: { reason: 'stale_timestamp' },
    });
    expect(calls).toEqual(['unblocked:hallym']);
  });

  it('fails closed when nothing is configured: no key, no legacy secret, no signing secret', async () => {
    const calls: string[] = [];
    const receiver = createMarketplaceReceiver({ serviceId: 'keli_tutor', handlers: handlers(calls) });
    const attempts: MarketplaceRequest[] = [
      { method: 'POST', path: '/api/tenant/create', headers: { 'x-api-key': '' }, body: '{}' },
      {
        method: 'POST',
        path: '/api/tenant/webhook/service-cancelled',
        headers: { 'x-webhook-secret': '' },
        body: '{"application_id":1}',
      },
      {
        method: 'POST',
        path: '/api/v1/services/keli_tutor/tenants/hallym/block',
        headers: { 'x-api-key': 'anything' },
        body: '{"reason":"x"}',
      },
      { method: 'POST', path: '/api/mt-paas/v1/events', headers: {}, body: '{}' },
    ];
    for (const attempt of attempts) expect((await receiver.handle(attempt)).status).toBe(401);
    expect(calls).toEqual([]);
  });

  it('takes the API key (header or bearer) on block routes when no signing secret is configured', async () => {
    const calls: string[] = [];
    const receiver = createMarketplaceReceiver({
      serviceId: 'keli_tutor',
      apiKeys: ['mk_1', 'mk_2'],
      handlers: handlers(calls),
    });
    const path = '/api/v1/services/keli_tutor/tenants/hallym/block';
    const body = '{"reason":"violation"}';
    expect(
      (await receiver.handle({ method: 'POST', path, headers: { 'x-api-key': 'mk_2' }, body })).status,
    ).toBe(200);
    expect(
      (await receiver.handle({ method: 'POST', path, headers: { authorization: 'Bearer mk_1' }, body }))
        .status,
    ).toBe(200);
    expect(
      (await receiver.handle({ method: 'POST', path, headers: { authorization: 'Basic mk_1' }, body }))
        .status,
    ).toBe(401);
    expect(
      (await receiver.handle({ method: 'POST', path, headers: { 'x-api-key': 'mk_3' }, body })).status,
    ).toBe(401);
    expect(calls).toEqual(['blocked:hallym', 'blocked:hallym']);
  });

  it('dedupes unsigned deliveries that carry an Idempotency-Key, and only those', async () => {
    const calls: string[] = [];
    const receiver = createMarketplaceReceiver({
      serviceId: 'keli_tutor',
      legacySecret: 'webhook_secret_12345',
      handlers: handlers(calls),
    });
    const request = (headers: Record<string, string>): MarketplaceRequest => ({
      method: 'POST',
      path: '/api/tenant/webhook/service-cancelled',
      headers: { 'x-webhook-secret': 'webhook_secret_12345', ...headers },
      body: '{"application_id": 9}',
    });
    await receiver.handle(request({ 'idempotency-key': 'cancel-9' }));
    const again = await receiver.handle(request({ 'idempotency-key': 'cancel-9' }));
    expect(again.headers['x-mt-paas-receipt']).toBe('duplicate');
    await receiver.handle(request({}));
    await receiver.handle(request({}));
    expect(calls).toEqual(['cancelled:', 'cancelled:', 'cancelled:']);
  });

  it('ends in the newest state whatever the interleaving of concurrent block / unblock deliveries', async () => {
    const secret = generateWebhookSecret();
    const applied = new Map<string, string[]>();
    const note = (kind: string) => async (data: { tenantId: string }) => {
      await new Promise((resolve) => setTimeout(resolve, Math.random() * 5));
      applied.set(data.tenantId, [...(applied.get(data.tenantId) ?? []), kind]);
    };
    const receiver = createMarketplaceReceiver({
      serviceId: 'keli_tutor',
      secrets: [secret],
      receipts: createMemoryReceiptStore(),
      handlers: { ...handlers([]), onBlocked: note('blocked'), onUnblocked: note('unblocked') },
    });
    const now = Date.now();
    const deliveries = [];
    for (let index = 0; index < 20; index++) {
      const tenant = `race_${index}`;
      // Three events in time order: unblocked (old), blocked (newer), and the newest — alternating.
      const newestIsBlock = index % 2 === 0;
      const events = [
        { type: 'tenant.unblocked', at: now - 30_000 },
        { type: 'tenant.blocked', at: now - 20_000 },
        { type: newestIsBlock ? 'tenant.blocked' : 'tenant.unblocked', at: now - 10_000 },
      ].sort(() => Math.random() - 0.5);
      for (const [position, event] of events.entries()) {
        const body = JSON.stringify({
          type: event.type,
          version: 1,
          timestamp: new Date(event.at).toISOString(),
          data: { tenant_id: tenant, reason: 'r' },
        });
        const headers = signWebhook({
          id: `msg_${tenant}_${position}`,
          timestamp: new Date(),
          body,
          secrets: [secret],
        });
        deliveries.push(
          receiver.handle({ method: 'POST', path: '/api/mt-paas/v1/events', headers: { ...headers }, body }),
        );
      }
    }
    for (const response of await Promise.all(deliveries)) expect(response.status).toBe(200);
    for (let index = 0; index < 20; index++) {
      expect(applied.get(`race_${index}`)?.at(-1)).toBe(index % 2 === 0 ? 'blocked' : 'unblocked');
    }
  });

  it('tells onHandlerError about a failed handler and answers without its internals', async () => {
    const seen: string[] = [];
    const receiver = createMarketplaceReceiver({
      serviceId: 'keli_tutor',
      apiKeys: ['mk_1'],
      handlers: {
        ...handlers([]),
        onBlocked: () => {
          throw new Error('connection to 10.0.0.5:5432 refused');
        },
      },
      onHandlerError: (error, context) => seen.push(`${context.type}:${(error as Error).message}`),
    });
    const response = await receiver.handle({
      method: 'POST',
      path: '/api/v1/services/keli_tutor/tenants/hallym/block',
      headers: { 'x-api-key': 'mk_1' },
      body: '{"reason":"x"}',
    });
    expect(response.status).toBe(500);
    expect(response.body).not.toMatch(/10\.0\.0\.5/);
    expect(seen).toEqual(['tenant.blocked:connection to 10.0.0.5:5432 refused']);
  });

  it('answers unknown paths 404 and a wrong method 405 with Allow', async () => {
    const receiver = createMarketplaceReceiver({ serviceId: 'keli_tutor', handlers: handlers([]) });
    expect(receiver.matches('/api/tenant/create')).toBe(true);
    expect(receiver.matches('/api/tenant/create/')).toBe(false);
    expect((await receiver.handle({ method: 'POST', path: '/nope', headers: {} })).status).toBe(404);
    const wrong = await receiver.handle({ method: 'PUT', path: '/api/tenant/create', headers: {} });
    expect(wrong.status).toBe(405);
    expect(wrong.headers.allow).toBe('POST');
    expect(Object.keys(parse(wrong.body))).toEqual(['detail']);
  });
});
