import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_PLAN_NAMES } from '@mt-paas/config';
import { isMtPaasError } from '@mt-paas/context';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, seedApplication } from './__fixtures__/api.js';
import { type FakeService, startFakeService, startTestSim, type TestSim } from './__fixtures__/sim.js';
import { loadSettings } from './settings.js';

describe('the REST API', () => {
  let sim: TestSim;
  let fake: FakeService;

  beforeAll(async () => {
    sim = await startTestSim();
    fake = await startFakeService();
  }, 60_000);
  afterAll(async () => {
    await sim?.close();
    await fake?.close();
  });

  it('offers the plans of seed 003 from @mt-paas/config', async () => {
    const { plans } = (await api(sim, 'GET', '/sim/v1/plans')).body;
    expect(plans.map((plan: { id: string }) => plan.id)).toEqual(DEFAULT_PLAN_NAMES);
    const enterprise = plans.find((plan: { id: string }) => plan.id === 'enterprise');
    expect(enterprise.quotas.api_requests).toEqual({ limit: null, period: 'monthly', enforcement: 'alert' });
  });

  it('refuses bad input with a 400 that names the field, and writes nothing', async () => {
    const cases: Array<[string, string, unknown, string]> = [
      ['POST', '/sim/v1/services', { id: 'x', base_url: 'ftp://nope', protocol: 'signed' }, 'base_url'],
      [
        'POST',
        '/sim/v1/services',
        { id: 'x', base_url: 'http://a.test', protocol: 'carrier-pigeon' },
        'protocol',
      ],
      [
        'POST',
        '/sim/v1/services',
        { id: 'x', base_url: 'http://a.test', webhook_secrets: ['secret'] },
        'webhook_secrets.0',
      ],
      ['POST', '/sim/v1/services', { id: 'x y', base_url: 'http://a.test' }, 'id'],
      ['POST', '/sim/v1/services', { id: 'x', base_url: 'http://a.test', surprise: true }, 'surprise'],
      ['POST', '/sim/v1/users', { email: 'not-an-email', name: 'N' }, 'email'],
      ['POST', '/sim/v1/applications', { service_id: 'x', user_id: 1, kind: 'trial' }, 'kind'],
      ['PUT', '/sim/v1/faults', { deliveries: { drop: -1 } }, 'deliveries.drop'],
    ];
    for (const [method, url, body, field] of cases) {
      const answer = await api(sim, method as 'POST', url, body);
      expect(answer.status, `${url} ${JSON.stringify(body)}`).toBe(400);
      expect(answer.body.error.code).toBe('INVALID_REQUEST');
      expect(answer.body.error.message).toContain(field);
    }
    expect((await api(sim, 'GET', '/sim/v1/services')).body.services).toEqual([]);
    const institution = await api(sim, 'POST', '/sim/v1/institutions', { id: 'Bad-Id', name: 'Bad' });
    expect(institution.status).toBe(400);
    expect(institution.body.error.code).toBe('INVALID_TENANT_ID');
    expect(
      (await api(sim, 'POST', '/sim/v1/users', { email: 'a@b.c', name: 'A', institution_id: 'nowhere' }))
        .status,
    ).toBe(404);
  });

  it('walks applications through requested → approved → completed | rejected, refusing other moves', async () => {
    const serviceId = 'tutor';
    const { applicationId, userId } = await seedApplication(sim, {
      serviceId: 'tutor',
      tenantId: 'hallym',
      baseUrl: fake.url,
      protocol: 'signed',
    });
    expect((await api(sim, 'POST', `/sim/v1/applications/${applicationId}/cancel`, {})).status).toBe(409);
    expect((await api(sim, 'POST', `/sim/v1/applications/${applicationId}/approve`)).status).toBe(200);
    const twice = await api(sim, 'POST', `/sim/v1/applications/${applicationId}/approve`);
    expect(twice.status).toBe(409);
    expect(twice.body.error.message).toContain('approved');
    expect((await api(sim, 'POST', `/sim/v1/applications/${applicationId}/reject`, {})).status).toBe(409);
    await sim.market.outbox.runOnce();
    expect((await api(sim, 'GET', `/sim/v1/applications/${applicationId}`)).body.status).toBe('completed');

    // a second application for the same tenant cannot be approved while the tenant lives
    const again = await api(sim, 'POST', '/sim/v1/applications', {
      service_id: serviceId,
      user_id: userId,
      kind: 'service',
    });
    const conflict = await api(sim, 'POST', `/sim/v1/applications/${again.body.id}/approve`);
    expect(conflict.status).toBe(409);
    const rejected = await api(sim, 'POST', `/sim/v1/applications/${again.body.id}/reject`, {
      reason: 'duplicate',
    });
    expect(rejected.body).toEqual({ application_id: again.body.id, status: 'rejected' });
    expect((await api(sim, 'POST', '/sim/v1/applications/999/approve')).status).toBe(404);
    expect(
      (
        await api(sim, 'POST', '/sim/v1/applications', {
          service_id: serviceId,
          user_id: userId,
          kind: 'service',
          plan: 'platinum',
        })
      ).body.error.message,
    ).toContain('free, starter, professional, enterprise');
  });

  it("changes plans (upgrade, downgrade) with the plan's features and limits", async () => {
    await seedApplication(sim, {
      serviceId: 'plans_svc',
      tenantId: 'korea',
      baseUrl: fake.url,
      protocol: 'signed',
    });
    const app = (await api(sim, 'GET', '/sim/v1/applications')).body.applications.find(
      (a: { tenantId: string }) => a.tenantId === 'korea',
    );
    await api(sim, 'POST', `/sim/v1/applications/${app.id}/approve`);
    const expiresAt = '2027-01-01T00:00:00.000Z';
    const up = await api(sim, 'POST', '/sim/v1/services/plans_svc/tenants/korea/plan', {
      plan: 'enterprise',
      expires_at: expiresAt,
    });
    expect(up.body).toMatchObject({
      plan: 'enterprise',
      features: { white_labeling: true },
      limits: { rpm: 6000 },
      expires_at: expiresAt,
    });
    const down = await api(sim, 'POST', '/sim/v1/services/plans_svc/tenants/korea/plan', { plan: 'free' });
    expect(down.body).toMatchObject({ plan: 'free', limits: { rpm: 60 }, expires_at: expiresAt });
    fake.requests.length = 0;
    await sim.market.outbox.runOnce();
    const sent = fake.requests
      .map((r) => JSON.parse(r.body))
      .filter((e) => e.type === 'subscription.updated');
    expect(sent.map((e) => e.data.plan)).toEqual(['enterprise', 'free']);
    expect((await api(sim, 'GET', '/sim/v1/services/plans_svc/tenants/korea')).body).toMatchObject({
      plan: 'free',
    });
  });

  it('expires demos and subscriptions: the tenant is blocked with the reason', async () => {
    const { applicationId } = await seedApplication(sim, {
      serviceId: 'demo_svc',
      tenantId: 'demo_u',
      baseUrl: fake.url,
      protocol: 'signed',
      kind: 'demo',
      application: { demo_expires_at: new Date(Date.now() - 1000).toISOString() },
    });
    await api(sim, 'POST', `/sim/v1/applications/${applicationId}/approve`);
    expect((await api(sim, 'POST', '/sim/v1/expire')).body.expired).toEqual([]); // still provisioning
    await sim.market.outbox.runOnce();
    expect((await api(sim, 'POST', '/sim/v1/expire')).body.expired).toEqual([
      { service_id: 'demo_svc', tenant_id: 'demo_u', reason: 'demo_expired' },
    ]);
    expect((await api(sim, 'GET', '/sim/v1/services/demo_svc/tenants/demo_u')).body.status).toBe('expired');
    fake.requests.length = 0;
    await sim.market.outbox.runOnce();
    expect(JSON.parse(fake.requests[0]!.body)).toMatchObject({
      type: 'tenant.blocked',
      data: { tenant_id: 'demo_u', reason: 'demo_expired' },
    });
    expect((await api(sim, 'POST', '/sim/v1/expire')).body.expired).toEqual([]); // once
    // renewal: unblock and a plan with a future end
    await api(sim, 'POST', '/sim/v1/services/demo_svc/tenants/demo_u/unblock', {});
    await api(sim, 'POST', '/sim/v1/services/demo_svc/tenants/demo_u/plan', {
      plan: 'starter',
      expires_at: null,
    });
    expect((await api(sim, 'POST', '/sim/v1/expire')).body.expired).toEqual([]);
  });

  it('documents every route in OpenAPI at /docs', async () => {
    const spec = (await api(sim, 'GET', '/docs/json')).body;
    expect(spec.openapi).toMatch(/^3\./);
    for (const path of [
      '/api/v1/services/{serviceId}/heartbeat',
      '/api/v1/services/{serviceId}/usage',
      '/api/v1/services/{serviceId}/tenants/{tenantId}/status',
      '/api/v1/audit/alerts',
      '/sim/v1/applications/{id}/approve',
      '/sim/v1/faults',
      '/.well-known/jwks.json',
    ]) {
      expect(spec.paths, path).toHaveProperty([path]);
    }
    expect(
      spec.paths['/sim/v1/services'].post.requestBody.content['application/json'].schema.required,
    ).toEqual(expect.arrayContaining(['id', 'base_url']));
    expect((await sim.app.inject({ method: 'GET', url: '/docs' })).statusCode).toBeLessThan(400);
  });
});

describe('storage', () => {
  it('keeps everything in its PGlite folder across restarts', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'market-sim-'));
    try {
      const first = await startTestSim({ dataDir: dir });
      await api(first, 'POST', '/sim/v1/services', { id: 'kept', base_url: 'http://kept.test' });
      const kid = (await api(first, 'GET', '/.well-known/jwks.json')).body.keys[0].kid;
      await first.close();
      const second = await startTestSim({ dataDir: dir });
      try {
        expect((await api(second, 'GET', '/sim/v1/services/kept')).body.baseUrl).toBe('http://kept.test');
        expect(
          (await api(second, 'GET', '/.well-known/jwks.json')).body.keys.map((k: { kid: string }) => k.kid),
        ).toEqual([kid]);
      } finally {
        await second.close();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 120_000); // two file-backed PGlite starts: slow on a busy machine
});

describe('settings', () => {
  it('reads the environment with defaults, and names a bad variable', () => {
    expect(loadSettings({})).toMatchObject({
      port: 8505,
      host: '127.0.0.1',
      dataDir: '.data/market-sim',
      pollMs: 250,
    });
    expect(
      loadSettings({ MARKET_SIM_RETRY_SCHEDULE: '0.5, 2,10', DATABASE_URL: 'postgres://x/y' }),
    ).toMatchObject({
      retrySchedule: [0.5, 2, 10],
      databaseUrl: 'postgres://x/y',
    });
    for (const [name, value] of [
      ['PORT', 'eighty'],
      ['MARKET_SIM_RETRY_SCHEDULE', '1,soon'],
      ['MARKET_SIM_SSO_ALG', 'HS256'],
    ]) {
      const failure = (() => {
        try {
          loadSettings({ [name as string]: value });
        } catch (error) {
          return error;
        }
      })();
      expect(isMtPaasError(failure, 'CONFIG_INVALID')).toBe(true);
      expect((failure as Error).message).toContain(name);
    }
  });
});
