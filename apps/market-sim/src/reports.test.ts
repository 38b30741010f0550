import { isMtPaasError } from '@mt-paas/context';
import { createMarketplaceClient } from '@mt-paas/marketplace';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, seedApplication } from './__fixtures__/api.js';
import { type FakeService, startFakeService, startTestSim, type TestSim } from './__fixtures__/sim.js';

/**
 * What services send to the market, sent by @mt-paas/marketplace's own client (the simulator's
 * peer): the same paths, bodies and bearer key a real service uses.
 */
describe('reports from services', () => {
  let sim: TestSim;
  let fake: FakeService;
  const API_KEY = 'key_tutor_0123456789';

  beforeAll(async () => {
    sim = await startTestSim({ heartbeatIntervalSeconds: 1, missedBeats: 2 });
    fake = await startFakeService();
    await seedApplication(sim, {
      serviceId: 'tutor',
      tenantId: 'hallym',
      baseUrl: fake.url,
      protocol: 'signed',
      service: { api_key: API_KEY },
    });
    await seedApplication(sim, {
      serviceId: 'other',
      tenantId: 'korea',
      baseUrl: fake.url,
      protocol: 'signed',
      service: { api_key: 'key_other_0123456789' },
    });
  }, 60_000);
  afterAll(async () => {
    await sim?.close();
    await fake?.close();
  });

  const client = (apiKey = API_KEY, serviceId = 'tutor') =>
    createMarketplaceClient({ apiUrl: sim.url, apiKey, serviceId, retries: 0 });

  it("authenticates every report by the service's bearer key, for that service only", async () => {
    const beat = { status: 'healthy' as const, activeTenants: ['hallym'] };
    await expect(client().heartbeat(beat)).resolves.toBeUndefined();
    for (const [key, status] of [
      ['key_wrong_0123456789', 401],
      ['key_other_0123456789', 403], // another service's key
    ] as const) {
      const failure = await client(key)
        .heartbeat(beat)
        .catch((error: unknown) => error);
      expect(isMtPaasError(failure, 'PROVIDER_ERROR')).toBe(true);
      expect((failure as { details: { status: number } }).details.status).toBe(status);
    }
    const anonymous = await api(sim, 'POST', '/api/v1/services/tutor/heartbeat', { status: 'healthy' });
    expect(anonymous.status).toBe(401);
    expect(anonymous.body.error.code).toBe('UNAUTHENTICATED');
    const alert = await api(
      sim,
      'POST',
      '/api/v1/audit/alerts',
      {
        service_id: 'other',
        alert_type: 'x',
        severity: 'high',
        details: {},
        timestamp: new Date().toISOString(),
      },
      { authorization: `Bearer ${API_KEY}` },
    );
    expect(alert.status).toBe(403);
  });

  it('tracks health from heartbeats and marks a service down after missed beats', async () => {
    await client().heartbeat({
      status: 'degraded',
      activeTenants: ['hallym'],
      metrics: { requestsPerMinute: 150, errorRate: 0.01, avgResponseTimeMs: 250 },
    });
    const health = (await api(sim, 'GET', '/sim/v1/services/tutor')).body.health;
    expect(health).toMatchObject({
      status: 'degraded',
      active_tenants: ['hallym'],
      metrics: { requests_per_minute: 150, error_rate: 0.01, avg_response_time_ms: 250 },
    });
    expect(health.beats).toBeGreaterThanOrEqual(1);
    // missed beats: 2 × 1 s without one
    await expect
      .poll(async () => (await api(sim, 'GET', '/sim/v1/services/tutor')).body.health.status, {
        timeout: 15_000,
      })
      .toBe('down');
    await client().heartbeat({ status: 'healthy', activeTenants: [] });
    expect((await api(sim, 'GET', '/sim/v1/services/tutor')).body.health.status).toBe('healthy');
    expect((await api(sim, 'GET', '/sim/v1/services/other')).body.health.status).toBe('unknown');
  });

  it('counts each usage record once (by its idempotency key, and by Idempotency-Key), totals per period', async () => {
    const at = new Date('2026-03-15T10:00:00Z');
    const record = (key: string, quantity: number, extra: Record<string, unknown> = {}) => ({
      tenantId: 'hallym' as never,
      meter: 'llm_tokens',
      quantity,
      at,
      idempotencyKey: key,
      ...extra,
    });
    await client().reportUsage([record('r1', 100), record('r2', 50)], { idempotencyKey: 'usage:batch-1' });
    await client().reportUsage([record('r1', 100), record('r2', 50)], { idempotencyKey: 'usage:batch-1' }); // retried call
    await client().reportUsage([record('r1', 100), record('r3', 7)], { idempotencyKey: 'usage:batch-2' }); // r1 again, new call
    await client().reportUsage([record('r4', 1000, { at: new Date('2026-04-01T00:00:01Z') })]);
    await client().reportUsage([
      record('r5', 5, { periodStart: '2026-03-01T00:00:00.000Z', at: new Date('2026-04-02T00:00:00Z') }),
    ]);
    const answer = await api(
      sim,
      'POST',
      '/api/v1/services/tutor/usage',
      {
        service_id: 'tutor',
        records: [
          {
            tenant_id: 'hallym',
            meter: 'llm_tokens',
            quantity: 1,
            at: at.toISOString(),
            idempotency_key: 'r2',
          },
        ],
      },
      { authorization: `Bearer ${API_KEY}` },
    );
    expect(answer.body).toMatchObject({ ok: true, duplicate: false, accepted: 0, duplicates: 1 });

    const totals = (await api(sim, 'GET', '/sim/v1/usage?service_id=tutor&tenant_id=hallym')).body.totals;
    expect(totals).toEqual([
      {
        serviceId: 'tutor',
        tenantId: 'hallym',
        meter: 'llm_tokens',
        period: '2026-03-01T00:00:00.000Z',
        quantity: 162,
        records: 4,
      },
      {
        serviceId: 'tutor',
        tenantId: 'hallym',
        meter: 'llm_tokens',
        period: '2026-04-01T00:00:00.000Z',
        quantity: 1000,
        records: 1,
      },
    ]);
  });

  it('keeps Idempotency-Keys per service: the same key from another service is another report', async () => {
    const record = {
      tenantId: 'shared' as never,
      meter: 'api_requests',
      quantity: 3,
      at: new Date('2026-05-02T00:00:00Z'),
      idempotencyKey: 'flush-1',
    };
    await client().reportUsage([record], { idempotencyKey: 'usage:shared:flush-1' });
    await client('key_other_0123456789', 'other').reportUsage([record], {
      idempotencyKey: 'usage:shared:flush-1',
    });
    const totals = (await api(sim, 'GET', '/sim/v1/usage?tenant_id=shared')).body.totals;
    expect(totals.map((t: { serviceId: string; quantity: number }) => [t.serviceId, t.quantity])).toEqual([
      ['other', 3],
      ['tutor', 3],
    ]);
  });

  it('refuses malformed reports with a clear 400 and keeps nothing of them', async () => {
    const bad = await api(
      sim,
      'POST',
      '/api/v1/services/tutor/usage',
      {
        service_id: 'tutor',
        records: [
          { tenant_id: 'hallym', meter: 'x', quantity: 'many', at: 'yesterday', idempotency_key: 'bad' },
        ],
      },
      { authorization: `Bearer ${API_KEY}` },
    );
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe('INVALID_REQUEST');
    expect(bad.body.error.message).toContain('records.0.quantity');
    const totals = (await api(sim, 'GET', '/sim/v1/usage?tenant_id=hallym')).body.totals;
    expect(totals.find((t: { meter: string }) => t.meter === 'x')).toBeUndefined();
  });

  it('keeps status syncs and audit alerts (once per Idempotency-Key), and answers subscription lookups', async () => {
    await client().syncTenantStatus(
      { tenantId: 'hallym' as never, status: 'blocked', reason: 'unpaid', at: new Date() },
      { idempotencyKey: 'status:1' },
    );
    await client().syncTenantStatus(
      { tenantId: 'hallym' as never, status: 'blocked', reason: 'unpaid', at: new Date() },
      { idempotencyKey: 'status:1' },
    );
    const syncs = (await api(sim, 'GET', '/sim/v1/status-syncs')).body.syncs;
    expect(syncs.filter((s: { tenantId: string }) => s.tenantId === 'hallym')).toHaveLength(1);

    const alert = {
      service_id: 'tutor',
      alert_type: 'cross_tenant_access_attempt',
      severity: 'high' as const,
      details: {
        source_tenant: 'hallym',
        target_tenant: 'korea',
        endpoint: '/api/courses/1',
        ip_address: '10.0.0.1',
      },
      timestamp: new Date().toISOString(),
    };
    await client().sendAuditAlert(alert, { idempotencyKey: 'audit:1' });
    await client().sendAuditAlert(alert, { idempotencyKey: 'audit:1' });
    const alerts = (await api(sim, 'GET', '/sim/v1/audit-alerts')).body.alerts;
    expect(alerts).toHaveLength(1);
    expect(alerts[0]).toMatchObject({
      serviceId: 'tutor',
      alertType: 'cross_tenant_access_attempt',
      severity: 'high',
      details: alert.details,
    });

    // no tenant yet: 404 → undefined; after approval the subscription parses with the package's schema
    expect(await client().getSubscription('hallym')).toBeUndefined();
    const app = (await api(sim, 'GET', '/sim/v1/applications')).body.applications.find(
      (a: { tenantId: string }) => a.tenantId === 'hallym',
    );
    await api(sim, 'POST', `/sim/v1/applications/${app.id}/approve`);
    expect(await client().getSubscription('hallym')).toMatchObject({
      tenantId: 'hallym',
      plan: 'starter',
      limits: {
        rpm: 300,
        quotas: { api_requests: { limit: 100_000, period: 'monthly', enforcement: 'block' } },
      },
      features: { sso: false },
      expiresAt: null,
    });
  });

  it('shows the newest status report by its timestamp, whatever order the reports arrive in', async () => {
    const tenantOf = async () =>
      (await api(sim, 'GET', '/sim/v1/services/other/tenants/korea')).body as {
        reportedStatus: string | null;
      };
    const app = (await api(sim, 'GET', '/sim/v1/applications')).body.applications.find(
      (a: { tenantId: string }) => a.tenantId === 'korea',
    );
    await api(sim, 'POST', `/sim/v1/applications/${app.id}/approve`);
    const other = client('key_other_0123456789', 'other');
    const t0 = Date.now();
    // the newer report (suspended) arrives first, the older one (active) after it: the tenant stays suspended
    await other.syncTenantStatus(
      {
        tenantId: 'korea' as never,
        status: 'suspended',
        reason: 'service_cancelled',
        at: new Date(t0 + 2_000),
      },
      { idempotencyKey: 'order:2' },
    );
    await other.syncTenantStatus(
      { tenantId: 'korea' as never, status: 'active', reason: 'onboarded', at: new Date(t0 + 1_000) },
      { idempotencyKey: 'order:1' },
    );
    expect((await tenantOf()).reportedStatus).toBe('suspended');
    // a newer one still moves it
    await other.syncTenantStatus(
      { tenantId: 'korea' as never, status: 'deleted', reason: 'user_deleted', at: new Date(t0 + 3_000) },
      { idempotencyKey: 'order:3' },
    );
    expect((await tenantOf()).reportedStatus).toBe('deleted');
    // both late and early reports are kept in the history
    const syncs = (await api(sim, 'GET', '/sim/v1/status-syncs')).body.syncs;
    expect(syncs.filter((s: { tenantId: string }) => s.tenantId === 'korea')).toHaveLength(3);
  });

  it('faults: answers 5xx (with Retry-After) for N reports, or delays them', async () => {
    await api(sim, 'PUT', '/sim/v1/faults', { reports: { status: 503, count: 2, retryAfterSeconds: 7 } });
    for (let i = 0; i < 2; i++) {
      const failure = await client()
        .heartbeat({ status: 'healthy', activeTenants: [] })
        .catch((error: unknown) => error);
      expect(isMtPaasError(failure, 'SERVICE_UNAVAILABLE')).toBe(true);
      expect((failure as { retryAfterSeconds: number }).retryAfterSeconds).toBe(7);
    }
    await expect(client().heartbeat({ status: 'healthy', activeTenants: [] })).resolves.toBeUndefined();
    expect((await api(sim, 'GET', '/sim/v1/faults')).body).toEqual({ reports: { retryAfterSeconds: 7 } });

    // until a time: failing now, not after it
    await api(sim, 'PUT', '/sim/v1/faults', {
      reports: { status: 500, until: new Date(Date.now() + 60_000).toISOString() },
    });
    expect(
      (
        await api(
          sim,
          'POST',
          '/api/v1/services/tutor/heartbeat',
          { status: 'healthy' },
          { authorization: `Bearer ${API_KEY}` },
        )
      ).status,
    ).toBe(500);
    await api(sim, 'PUT', '/sim/v1/faults', {
      reports: { status: 500, until: new Date(Date.now() - 1).toISOString() },
    });
    expect(
      (
        await api(
          sim,
          'POST',
          '/api/v1/services/tutor/heartbeat',
          { status: 'healthy' },
          { authorization: `Bearer ${API_KEY}` },
        )
      ).status,
    ).toBe(200);

    // a delay longer than the client's timeout is a timeout for the client
    await api(sim, 'PUT', '/sim/v1/faults', { reports: { delayMs: 400 } });
    const impatient = createMarketplaceClient({
      apiUrl: sim.url,
      apiKey: API_KEY,
      serviceId: 'tutor',
      retries: 0,
      timeoutMs: 50,
    });
    const timedOut = await impatient
      .heartbeat({ status: 'healthy', activeTenants: [] })
      .catch((error: unknown) => error);
    expect(isMtPaasError(timedOut, 'SERVICE_UNAVAILABLE')).toBe(true);
    await api(sim, 'DELETE', '/sim/v1/faults');
  });
});
