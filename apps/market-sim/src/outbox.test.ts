import { generateWebhookSecret, verifyWebhook } from '@mt-paas/marketplace';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { api, seedApplication } from './__fixtures__/api.js';
import { type FakeService, startFakeService, startTestSim, type TestSim } from './__fixtures__/sim.js';

/**
 * The market's own outbox: signed deliveries, retries on the schedule, the delivery log, replay by
 * hand, and the delivery faults — against a local fake service, the dispatcher driven by hand.
 */
describe('deliveries', () => {
  let sim: TestSim;
  let fake: FakeService;
  let n = 0;
  const secret = generateWebhookSecret();
  const previous = generateWebhookSecret();

  beforeAll(async () => {
    sim = await startTestSim({ retrySchedule: [0, 0] });
    fake = await startFakeService();
  }, 60_000);
  afterAll(async () => {
    await sim?.close();
    await fake?.close();
  });
  afterEach(async () => {
    sim.faults.clear();
    fake.answers.length = 0;
    fake.requests.length = 0;
  });

  /** A fresh service + approved application; returns the provisioning delivery id. */
  async function approved(protocol: 'signed' | 'legacy' = 'signed', service: Record<string, unknown> = {}) {
    n += 1;
    const serviceId = `svc_${n}`;
    const tenantId = `univ_${n}`;
    const seeded = await seedApplication(sim, {
      serviceId,
      tenantId,
      baseUrl: fake.url,
      protocol,
      service: {
        webhook_secrets: [secret, previous],
        legacy_secret: 'legacy_secret_value',
        api_key: `key_${serviceId}_secret`,
        ...service,
      },
    });
    const approval = await api(sim, 'POST', `/sim/v1/applications/${seeded.applicationId}/approve`);
    expect(approval.status).toBe(200);
    return { ...seeded, serviceId, tenantId, deliveryId: approval.body.delivery_id as string };
  }

  const delivery = async (id: string) => (await api(sim, 'GET', `/sim/v1/deliveries/${id}`)).body;

  it('signs with every secret (rotation) over the exact bytes, and the service can verify it', async () => {
    const { deliveryId, tenantId } = await approved();
    fake.answers.push({
      status: 200,
      body: { ok: true, access_url: `https://svc.test/?tenant=${tenantId}` },
    });
    expect(await sim.market.outbox.runOnce()).toBe(1);
    const [request] = fake.requests;
    expect(request?.path).toBe('/api/mt-paas/v1/events');
    const signatures = String(request?.headers['webhook-signature']).split(' ');
    expect(signatures).toHaveLength(2);
    for (const one of [secret, previous]) {
      expect(verifyWebhook({ headers: request!.headers, body: request!.body, secrets: [one] }).id).toBe(
        deliveryId,
      );
    }
    expect(() =>
      verifyWebhook({ headers: request!.headers, body: `${request!.body} `, secrets: [secret] }),
    ).toThrow();
    const event = JSON.parse(request!.body);
    expect(event).toMatchObject({
      type: 'tenant.provision_requested',
      version: 1,
      data: { tenant_id: tenantId, plan: 'starter' },
    });

    const logged = await delivery(deliveryId);
    expect(logged).toMatchObject({
      status: 'delivered',
      attempts: [expect.objectContaining({ attempt: 1, responseStatus: 200 })],
    });
    // the answer's access URL completes the application and activates the tenant
    const tenant = await api(sim, 'GET', `/sim/v1/services/${logged.serviceId}/tenants/${tenantId}`);
    expect(tenant.body).toMatchObject({
      status: 'active',
      accessUrl: `https://svc.test/?tenant=${tenantId}`,
    });
  });

  it('retries 5xx, 429 and network errors on the schedule, keeping the id; fails after the last step', async () => {
    const { deliveryId, serviceId, tenantId } = await approved();
    fake.answers.push({ status: 503 }, { status: 429 });
    await sim.market.outbox.runOnce();
    await sim.market.outbox.runOnce();
    expect((await delivery(deliveryId)).status).toBe('pending');
    await sim.market.outbox.runOnce(); // third attempt: the default answer, 200
    const done = await delivery(deliveryId);
    expect(done.status).toBe('delivered');
    expect(done.attempts.map((a: { responseStatus: number }) => a.responseStatus)).toEqual([503, 429, 200]);
    expect(new Set(fake.requests.map((r) => r.headers['webhook-id']))).toEqual(new Set([deliveryId]));

    // out of schedule: three failures (first try + two retries) → failed, tenant marked so
    const block = await api(sim, 'POST', `/sim/v1/services/${serviceId}/tenants/${tenantId}/block`, {});
    fake.answers.push({ status: 500 }, { status: 502 }, { status: 504 }, { status: 200 });
    for (let i = 0; i < 4; i++) await sim.market.outbox.runOnce();
    const failed = await delivery(block.body.delivery_id);
    expect(failed).toMatchObject({ status: 'failed', lastStatus: 504 });
    expect(failed.attempts).toHaveLength(3);
    expect(fake.answers).toHaveLength(1); // the fourth answer was never asked for

    // replay by hand: sent again, delivered, logged as manual
    const replayed = await api(sim, 'POST', `/sim/v1/deliveries/${block.body.delivery_id}/replay`);
    expect(replayed.body).toMatchObject({ status: 'delivered', lastStatus: 200 });
    expect(replayed.body.attempts.at(-1)).toMatchObject({ attempt: 4, manual: 1, responseStatus: 200 });
  });

  it('retries when the service cannot be reached, logging the error', async () => {
    n += 1;
    const seeded = await seedApplication(sim, {
      serviceId: `svc_${n}`,
      tenantId: `univ_${n}`,
      baseUrl: 'http://127.0.0.1:1',
      protocol: 'signed',
    });
    const approval = await api(sim, 'POST', `/sim/v1/applications/${seeded.applicationId}/approve`);
    await sim.market.outbox.runOnce();
    const logged = await delivery(approval.body.delivery_id);
    expect(logged).toMatchObject({ status: 'pending', lastStatus: null });
    expect(logged.attempts[0].error).toMatch(/fetch failed|ECONNREFUSED/);
  });

  it('does not retry a refusal (4xx); a replay of a delivered one is sent again', async () => {
    const { deliveryId } = await approved();
    fake.answers.push({ status: 401, body: { error: { code: 'WEBHOOK_SIGNATURE_INVALID' } } });
    await sim.market.outbox.runOnce();
    await sim.market.outbox.runOnce();
    const refused = await delivery(deliveryId);
    expect(refused).toMatchObject({
      status: 'failed',
      lastStatus: 401,
      response: { error: { code: 'WEBHOOK_SIGNATURE_INVALID' } },
    });
    expect(refused.attempts).toHaveLength(1);
    const tenants = (await api(sim, 'GET', '/sim/v1/tenants')).body.tenants;
    expect(tenants.find((t: { tenantId: string }) => t.tenantId === refused.tenantId).status).toBe(
      'provisioning_failed',
    );

    await api(sim, 'POST', `/sim/v1/deliveries/${deliveryId}/replay`);
    const again = await api(sim, 'POST', `/sim/v1/deliveries/${deliveryId}/replay`);
    expect(again.body.status).toBe('delivered');
    expect(fake.requests).toHaveLength(3);
    expect((await api(sim, 'POST', '/sim/v1/deliveries/msg_nope/replay')).status).toBe(404);
  });

  it('speaks the seed routes to a legacy service, with its API key, legacy secret or signature', async () => {
    const { serviceId, tenantId, applicationId, userId, deliveryId } = await approved('legacy');
    await sim.market.outbox.runOnce(); // create + the follow-up subscription
    await api(sim, 'POST', `/sim/v1/services/${serviceId}/tenants/${tenantId}/block`, { reason: 'unpaid' });
    await api(sim, 'POST', `/sim/v1/applications/${applicationId}/cancel`, {});
    await api(sim, 'DELETE', `/sim/v1/users/${userId}`);
    await sim.market.outbox.runOnce();
    const seen = fake.requests.map((r) => ({ path: r.path, body: JSON.parse(r.body), headers: r.headers }));
    expect(seen.map((r) => r.path)).toEqual([
      '/api/tenant/create',
      '/api/mt-paas/v1/events',
      `/api/v1/services/${serviceId}/tenants/${tenantId}/block`,
      '/api/tenant/webhook/service-cancelled',
      '/api/tenant/webhook/user-deleted',
    ]);
    const [create, subscription, block, cancelled, deleted] = seen;
    expect(create?.headers['x-api-key']).toBe(`key_${serviceId}_secret`);
    expect(create?.headers['idempotency-key']).toBe(deliveryId);
    expect(create?.body).toEqual({
      tenant_id: tenantId,
      tenant_name: `${tenantId} University`,
      admin_email: `admin@${tenantId}.ac.kr`,
      admin_name: 'Admin',
      application_id: applicationId,
      application_kind: 'service',
    });
    expect(subscription?.body).toMatchObject({ type: 'subscription.updated', data: { plan: 'starter' } });
    expect(block?.headers['webhook-signature']).toMatch(/^v1,/); // the kill switch is signed when it can be
    expect(block?.body).toMatchObject({ reason: 'unpaid', grace_period_hours: 0 });
    expect(cancelled?.headers['x-webhook-secret']).toBe('legacy_secret_value');
    expect(cancelled?.body).toMatchObject({ application_id: applicationId });
    expect(deleted?.body).toMatchObject({
      event: 'user.deleted',
      user_id: userId,
      email: `admin@${tenantId}.ac.kr`,
    });
    // secrets are masked in the delivery log
    const logged = (await api(sim, 'GET', '/sim/v1/deliveries?status=delivered')).body.deliveries.find(
      (d: { url: string }) => d.url.endsWith('/service-cancelled'),
    );
    const detail = await delivery(logged.id);
    expect(detail.attempts[0].requestHeaders['x-webhook-secret']).toBe('***');
  });

  it('refuses an event a legacy service cannot receive, and changes nothing', async () => {
    const { serviceId, tenantId } = await approved('legacy', { webhook_secrets: [] });
    await sim.market.outbox.runOnce();
    const before = (await api(sim, 'GET', `/sim/v1/services/${serviceId}/tenants/${tenantId}`)).body;
    const change = await api(sim, 'POST', `/sim/v1/services/${serviceId}/tenants/${tenantId}/plan`, {
      plan: 'enterprise',
    });
    expect(change.status).toBe(409);
    expect(change.body.error.message).toContain('webhook signing secret');
    const after = (await api(sim, 'GET', `/sim/v1/services/${serviceId}/tenants/${tenantId}`)).body;
    expect(after.plan).toBe(before.plan);
    // the kill switch falls back to the API key when there is no signing secret
    await api(sim, 'POST', `/sim/v1/services/${serviceId}/tenants/${tenantId}/block`, {});
    await sim.market.outbox.runOnce();
    expect(fake.requests.at(-1)?.headers['x-api-key']).toBe(`key_${serviceId}_secret`);
    expect(fake.requests.at(-1)?.headers['webhook-signature']).toBeUndefined();
  });

  it('faults: drops, duplicates and reorders deliveries', async () => {
    const { serviceId, tenantId, deliveryId } = await approved();
    await sim.market.outbox.runOnce();

    // drop: logged, never sent, until replayed
    expect((await api(sim, 'PUT', '/sim/v1/faults', { deliveries: { drop: 1 } })).status).toBe(200);
    const blocked = await api(sim, 'POST', `/sim/v1/services/${serviceId}/tenants/${tenantId}/block`, {});
    const sentBefore = fake.requests.length;
    await sim.market.outbox.runOnce();
    expect(fake.requests).toHaveLength(sentBefore);
    expect(await delivery(blocked.body.delivery_id)).toMatchObject({ status: 'dropped' });
    expect((await api(sim, 'GET', '/sim/v1/faults')).body).toEqual({ deliveries: {} });
    await api(sim, 'POST', `/sim/v1/deliveries/${blocked.body.delivery_id}/replay`);
    expect(fake.requests).toHaveLength(sentBefore + 1);

    // duplicate: the same id and signature twice
    await api(sim, 'PUT', '/sim/v1/faults', { deliveries: { duplicate: 1 } });
    const unblocked = await api(sim, 'POST', `/sim/v1/services/${serviceId}/tenants/${tenantId}/unblock`, {});
    await sim.market.outbox.runOnce();
    const copies = fake.requests.filter((r) => r.headers['webhook-id'] === unblocked.body.delivery_id);
    expect(copies).toHaveLength(2);
    expect(copies[0]?.body).toBe(copies[1]?.body);

    // out of order: three events held, then sent newest first
    await api(sim, 'PUT', '/sim/v1/faults', { deliveries: { outOfOrder: 3 } });
    const ids: string[] = [];
    for (const path of ['block', 'unblock', 'block']) {
      ids.push(
        (await api(sim, 'POST', `/sim/v1/services/${serviceId}/tenants/${tenantId}/${path}`, {})).body
          .delivery_id,
      );
      if (ids.length < 3) {
        await sim.market.outbox.runOnce();
        expect((await delivery(ids.at(-1)!)).status).toBe('held');
      }
    }
    await sim.market.outbox.runOnce();
    const order = fake.requests.slice(-3).map((r) => r.headers['webhook-id']);
    expect(order).toEqual([...ids].reverse());
    const sent = fake.requests.slice(-3).map((r) => JSON.parse(r.body).timestamp as string);
    expect([...sent].sort().reverse()).toEqual(sent); // event timestamps stay those of the events
    expect(deliveryId).toMatch(/^msg_/);

    // clearing the fault releases what it held, in the usual order
    await api(sim, 'PUT', '/sim/v1/faults', { deliveries: { outOfOrder: 5 } });
    const held = (await api(sim, 'POST', `/sim/v1/services/${serviceId}/tenants/${tenantId}/unblock`, {}))
      .body.delivery_id;
    await sim.market.outbox.runOnce();
    expect((await delivery(held)).status).toBe('held');
    expect((await api(sim, 'POST', `/sim/v1/deliveries/${held}/replay`)).status).toBe(409);
    await api(sim, 'DELETE', '/sim/v1/faults');
    await sim.market.outbox.runOnce();
    expect((await delivery(held)).status).toBe('delivered');
  });

  it('rejects faults it does not know, and clears them', async () => {
    expect((await api(sim, 'PUT', '/sim/v1/faults', { deliveries: { lose: 1 } })).status).toBe(400);
    expect((await api(sim, 'PUT', '/sim/v1/faults', { reports: { status: 200 } })).status).toBe(400);
    await api(sim, 'PUT', '/sim/v1/faults', { reports: { status: 503 } });
    expect((await api(sim, 'DELETE', '/sim/v1/faults')).body).toEqual({});
  });
});
