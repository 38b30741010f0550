import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type MarketServer, startMarketServer } from './__fixtures__/market-server.js';
import { createMarketplaceClient, retryAfterMs } from './client.js';

let market: MarketServer;
const waits: number[] = [];

beforeAll(async () => {
  market = await startMarketServer();
});
afterAll(() => market.stop());
beforeEach(() => {
  market.requests.length = 0;
  market.answers = [];
  waits.length = 0;
});

function client(retries = 3) {
  return createMarketplaceClient({
    apiUrl: market.url,
    apiKey: 'mk_live_123',
    serviceId: 'keli_tutor',
    retries,
    backoffBaseMs: 100,
    backoffMaxMs: 5000,
    sleep: async (ms) => {
      waits.push(ms);
    },
  });
}

describe('marketplace client', () => {
  it('sends the seed 001 §5.1 heartbeat with the bearer API key', async () => {
    await client().heartbeat({
      status: 'healthy',
      activeTenants: ['hallym', 'korea', 'snu'],
      metrics: { requestsPerMinute: 150, errorRate: 0.01, avgResponseTimeMs: 250 },
      timestamp: new Date('2026-01-03T12:00:00Z'),
    });
    const [request] = market.requests;
    expect(request?.method).toBe('POST');
    expect(request?.path).toBe('/api/v1/services/keli_tutor/heartbeat');
    expect(request?.headers.authorization).toBe('Bearer mk_live_123');
    expect(request?.body).toEqual({
      service_id: 'keli_tutor',
      status: 'healthy',
      active_tenants: ['hallym', 'korea', 'snu'],
      metrics: { requests_per_minute: 150, error_rate: 0.01, avg_response_time_ms: 250 },
      timestamp: '2026-01-03T12:00:00.000Z',
    });
  });

  it('appends /api/v1 to a bare marketplace URL', async () => {
    const bare = createMarketplaceClient({
      apiUrl: market.url.replace('/api/v1', '/'),
      serviceId: 'keli_tutor',
    });
    await bare.sendAuditAlert({
      service_id: 'keli_tutor',
      alert_type: 'cross_tenant_access_attempt',
      severity: 'high',
      details: {
        source_tenant: 'hallym',
        target_tenant: 'korea',
        endpoint: '/api/courses/123',
        ip_address: '123.45.67.89',
      },
      timestamp: '2026-01-03T12:00:00Z',
    });
    expect(market.requests[0]?.path).toBe('/api/v1/audit/alerts');
    expect(market.requests[0]?.headers.authorization).toBeUndefined();
  });

  it('retries 503 and 429 honouring Retry-After (seconds and HTTP date), then succeeds', async () => {
    market.answers = [
      { status: 503, headers: { 'retry-after': '2' } },
      { status: 429, headers: { 'retry-after': new Date(Date.now() + 3000).toUTCString() } },
      { status: 200, body: { ok: true } },
    ];
    await client().syncTenantStatus(
      { tenantId: 'hallym', status: 'blocked', reason: 'expired', at: new Date() },
      { idempotencyKey: 'k1' },
    );
    expect(market.requests).toHaveLength(3);
    expect(waits[0]).toBe(2000);
    expect(waits[1]).toBeGreaterThan(1000);
    expect(waits[1]).toBeLessThanOrEqual(3000);
    for (const request of market.requests) expect(request.headers['idempotency-key']).toBe('k1');
  });

  it('backs off with jitter inside the exponential bound when there is no Retry-After', async () => {
    market.answers = [{ status: 502 }, { status: 500 }, { status: 504 }, { status: 200 }];
    await client().reportUsage([]);
    expect(waits).toHaveLength(3);
    waits.forEach((wait, attempt) => {
      expect(wait).toBeGreaterThanOrEqual(0);
      expect(wait).toBeLessThanOrEqual(100 * 2 ** attempt);
    });
  });

  it('gives up after the retries with SERVICE_UNAVAILABLE', async () => {
    market.answers = Array.from({ length: 5 }, () => ({ status: 503 }));
    await expect(client(2).reportUsage([])).rejects.toMatchObject({
      code: 'SERVICE_UNAVAILABLE',
      details: { status: 503, retryable: true },
    });
    expect(market.requests).toHaveLength(3);
  });

  it('does not retry a refusal (400, 401, 404 on POST): PROVIDER_ERROR', async () => {
    for (const status of [400, 401, 404, 422]) {
      market.requests.length = 0;
      market.answers = [{ status }];
      await expect(client().reportUsage([])).rejects.toMatchObject({
        code: 'PROVIDER_ERROR',
        details: { status, retryable: false },
      });
      expect(market.requests).toHaveLength(1);
    }
  });

  it('reads a subscription, and undefined for an unknown tenant', async () => {
    market.answers = [
      {
        status: 200,
        body: {
          tenant_id: 'hallym',
          plan: 'professional',
          features: { quiz: true },
          expires_at: '2027-01-01T00:00:00Z',
        },
      },
      { status: 404, body: { detail: 'not found' } },
      { status: 200, body: { tenant_id: 'hallym', plan: 7 } },
    ];
    const subscription = await client().getSubscription('hallym');
    expect(subscription).toMatchObject({
      tenantId: 'hallym',
      plan: 'professional',
      features: { quiz: true },
    });
    expect(market.requests[0]?.path).toBe('/api/v1/services/keli_tutor/tenants/hallym/subscription');
    expect(await client().getSubscription('nobody')).toBeUndefined();
    await expect(client().getSubscription('hallym')).rejects.toMatchObject({ code: 'PROVIDER_ERROR' });
  });

  it('reports an unreachable marketplace as SERVICE_UNAVAILABLE after retrying', async () => {
    const down = createMarketplaceClient({
      apiUrl: 'http://127.0.0.1:9/api/v1',
      serviceId: 'keli_tutor',
      retries: 1,
      sleep: async (ms) => {
        waits.push(ms);
      },
    });
    await expect(down.heartbeat({ status: 'healthy', activeTenants: [] })).rejects.toMatchObject({
      code: 'SERVICE_UNAVAILABLE',
    });
    expect(waits).toHaveLength(1);
  });

  it('parses Retry-After', () => {
    expect(retryAfterMs('5')).toBe(5000);
    expect(retryAfterMs(new Date(10_000).toUTCString(), 4000)).toBe(6000);
    expect(retryAfterMs('soon')).toBeUndefined();
    expect(retryAfterMs(undefined)).toBeUndefined();
  });
});
