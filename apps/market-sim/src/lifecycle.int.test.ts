import { generateWebhookSecret } from '@mt-paas/marketplace';
import { describeWithPostgres, useTestDatabase } from '@mt-paas/test-env';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { call, type RunningProcess, startProcess } from './__fixtures__/processes.js';

/**
 * The simulator and a service built on @mt-paas/marketplace, both as real processes over HTTP: a
 * tenant's whole life, once for a service speaking the signed events protocol and once for one
 * speaking the seed's legacy routes. The simulator stores in Postgres (test-env); the signed service keeps
 * its catalog in the embedded PGlite database (the `pnpm start` default, where handlers writing through
 * `catalog.tenants` share the receipt's one connection), the legacy service in Postgres.
 */
describeWithPostgres('market-sim ⇄ a service built on @mt-paas/marketplace (real processes)', () => {
  const database = useTestDatabase({ label: 'market_sim' });
  // One service on each catalog backend: undefined → the embedded PGlite catalog in memory.
  const serviceDatabases = {
    signed: undefined,
    legacy: useTestDatabase({ label: 'svc_legacy' }),
  };
  let sim: RunningProcess | undefined;
  const running: Record<string, { process: RunningProcess; apiKey: string }> = {};

  const PROTOCOLS = [
    { protocol: 'signed', serviceId: 'tutor_signed', tenantId: 'hallym', email: 'kim@hallym.ac.kr' },
    { protocol: 'legacy', serviceId: 'tutor_legacy', tenantId: 'korea', email: 'lee@korea.ac.kr' },
  ] as const;

  beforeAll(async () => {
    sim = await startProcess('src/main.ts', {
      DATABASE_URL: database.url,
      MARKET_SIM_RETRY_SCHEDULE: '0.2,0.5,1,2',
      MARKET_SIM_POLL_MS: '100',
      MARKET_SIM_HEARTBEAT_INTERVAL_SECONDS: '1',
      MARKET_SIM_MISSED_BEATS: '30',
    });
    await Promise.all(
      PROTOCOLS.map(async ({ protocol, serviceId }) => {
        const secret = generateWebhookSecret();
        const apiKey = `key_${serviceId}_0123456789`;
        const legacySecret = `legacy_${serviceId}_secret`;
        const service = await startProcess('src/__fixtures__/test-service.ts', {
          SERVICE_ID: serviceId,
          MARKET_URL: sim!.url,
          WEBHOOK_SECRET: secret,
          API_KEY: apiKey,
          LEGACY_SECRET: legacySecret,
          HEARTBEAT_MS: '300',
          ...(serviceDatabases[protocol] === undefined
            ? {}
            : { DATABASE_URL: serviceDatabases[protocol].url }),
        });
        running[protocol] = { process: service, apiKey };
        await call(`${sim!.url}/sim/v1/services`, {
          body: {
            id: serviceId,
            base_url: service.url,
            protocol,
            webhook_secrets: [secret],
            api_key: apiKey,
            ...(protocol === 'legacy' ? { legacy_secret: legacySecret } : {}),
          },
          expect: 201,
        });
      }),
    );
  }, 240_000);

  afterAll(async () => {
    await Promise.all(Object.values(running).map((entry) => entry.process.stop()));
    await sim?.stop();
  });

  for (const { protocol, serviceId, tenantId, email } of PROTOCOLS) {
    it(`${protocol}: register → approve → tenant created → usage → block → unblock → plan change → cancel → user deleted`, async () => {
      const market = sim!.url;
      const service = running[protocol]!.process.url;
      const serviceTenant = async () =>
        (
          (await call(`${service}/test/tenants`)).tenants as Array<{
            id: string;
            status: string;
            plan: string;
          }>
        ).find((tenant) => tenant.id === tenantId);
      const marketTenant = () => call(`${market}/sim/v1/services/${serviceId}/tenants/${tenantId}`);

      // a member of an institution applies for the service; the market approves
      await call(`${market}/sim/v1/institutions`, {
        body: { id: tenantId, name: `${tenantId} University` },
        expect: 201,
      });
      const user = await call(`${market}/sim/v1/users`, {
        body: { email, name: 'Professor', institution_id: tenantId },
        expect: 201,
      });
      const application = await call(`${market}/sim/v1/applications`, {
        body: { service_id: serviceId, user_id: user.id, kind: 'service', plan: 'starter' },
        expect: 201,
      });
      expect(application.status).toBe('requested');
      const approved = await call(`${market}/sim/v1/applications/${application.id}/approve`, {
        method: 'POST',
      });
      expect(approved.status).toBe('approved');

      // tenant created on the service; the market sees the answer and the service's status sync
      await expect
        .poll(serviceTenant, { timeout: 20_000 })
        .toMatchObject({ status: 'active', plan: 'starter' });
      await expect.poll(marketTenant, { timeout: 20_000 }).toMatchObject({
        status: 'active',
        reportedStatus: 'active',
        accessUrl: `http://service.test/?tenant=${tenantId}`,
      });
      expect((await call(`${market}/sim/v1/applications/${application.id}`)).status).toBe('completed');
      const provision = await call(`${market}/sim/v1/deliveries/${approved.delivery_id}`);
      expect(provision).toMatchObject({ status: 'delivered', lastStatus: 200 });
      expect(provision.url).toBe(
        protocol === 'signed' ? `${service}/api/mt-paas/v1/events` : `${service}/api/tenant/create`,
      );
      expect(provision.attempts[0].requestHeaders).toHaveProperty(
        protocol === 'signed' ? 'webhook-signature' : 'x-api-key',
      );

      // heartbeats: the service is healthy and lists the tenant
      await expect
        .poll(async () => (await call(`${market}/sim/v1/services/${serviceId}`)).health, { timeout: 20_000 })
        .toMatchObject({ status: 'healthy', active_tenants: expect.arrayContaining([tenantId]) });

      // usage through the service's outbox; a repeated record counts once
      for (const [key, quantity] of [
        ['flush-1', 120],
        ['flush-1', 120],
        ['flush-2', 30],
      ] as const) {
        await call(`${service}/test/usage`, {
          body: { tenant_id: tenantId, meter: 'api_requests', quantity, key },
        });
      }
      await expect
        .poll(
          async () =>
            (await call(`${market}/sim/v1/usage?service_id=${serviceId}&tenant_id=${tenantId}`)).totals,
          {
            timeout: 20_000,
          },
        )
        .toEqual([
          expect.objectContaining({ serviceId, tenantId, meter: 'api_requests', quantity: 150, records: 2 }),
        ]);

      // SSO: "open this service as this user" lands on the service's callback, which accepts the token
      const opened = await fetch(`${market}/sim/v1/sso/open?service_id=${serviceId}&user_id=${user.id}`, {
        redirect: 'manual',
      });
      expect(opened.status).toBe(302);
      const callback = opened.headers.get('location')!;
      expect(callback.startsWith(`${service}/auth/marketplace/callback?token=`)).toBe(true);
      const landed = await fetch(callback, { redirect: 'manual' });
      expect(landed.status).toBe(302);
      expect(landed.headers.get('location')).toBe(`/?tenant=${tenantId}`);
      const replayed = await fetch(callback, { redirect: 'manual' });
      expect(replayed.status).toBe(401); // the token's jti was used
      expect((await call(`${service}/test/logins`)).logins).toContainEqual({
        tenantId,
        user: expect.objectContaining({ id: `user_${user.id}`, email }),
      });

      // block → blocked on the service, which reports it back
      await call(`${market}/sim/v1/services/${serviceId}/tenants/${tenantId}/block`, {
        body: { reason: 'payment_overdue', message: 'Pay the invoice.' },
      });
      await expect.poll(serviceTenant, { timeout: 20_000 }).toMatchObject({ status: 'blocked' });
      await expect
        .poll(marketTenant, { timeout: 20_000 })
        .toMatchObject({ status: 'blocked', reportedStatus: 'blocked' });

      // unblock
      await call(`${market}/sim/v1/services/${serviceId}/tenants/${tenantId}/unblock`, { body: {} });
      await expect.poll(serviceTenant, { timeout: 20_000 }).toMatchObject({ status: 'active' });
      await expect
        .poll(marketTenant, { timeout: 20_000 })
        .toMatchObject({ status: 'active', reportedStatus: 'active' });

      // plan change (upgrade) → subscription.updated
      const changed = await call(`${market}/sim/v1/services/${serviceId}/tenants/${tenantId}/plan`, {
        body: { plan: 'professional' },
      });
      expect(changed.limits.quotas.api_requests.limit).toBe(1_000_000);
      await expect.poll(serviceTenant, { timeout: 20_000 }).toMatchObject({ plan: 'professional' });

      // cancel → service.cancelled suspends the tenant
      await call(`${market}/sim/v1/applications/${application.id}/cancel`, { body: {} });
      await expect.poll(serviceTenant, { timeout: 20_000 }).toMatchObject({ status: 'suspended' });

      // the member leaves the market → user.deleted; the service answers which tenants went
      const deleted = await call(`${market}/sim/v1/users/${user.id}`, { method: 'DELETE' });
      expect(deleted.deliveries).toHaveLength(1);
      await expect.poll(serviceTenant, { timeout: 20_000 }).toMatchObject({ status: 'deleted' });
      await expect
        .poll(async () => (await call(`${market}/sim/v1/deliveries/${deleted.deliveries[0]}`)).status, {
          timeout: 20_000,
        })
        .toBe('delivered');
      const userDeleted = await call(`${market}/sim/v1/deliveries/${deleted.deliveries[0]}`);
      expect(userDeleted.response).toMatchObject(
        protocol === 'signed'
          ? { deleted_tenants: [tenantId] }
          : { success: true, deleted_tenants: [tenantId] },
      );

      // every delivery of this service was delivered on the wire it speaks
      const { deliveries } = await call(`${market}/sim/v1/deliveries?service_id=${serviceId}`);
      expect(deliveries.map((delivery: { status: string }) => delivery.status)).toEqual(
        deliveries.map(() => 'delivered'),
      );
      const paths = new Set(deliveries.map((delivery: { url: string }) => new URL(delivery.url).pathname));
      if (protocol === 'signed') expect([...paths]).toEqual(['/api/mt-paas/v1/events']);
      else {
        expect(paths).toEqual(
          new Set([
            '/api/tenant/create',
            `/api/v1/services/${serviceId}/tenants/${tenantId}/block`,
            `/api/v1/services/${serviceId}/tenants/${tenantId}/unblock`,
            '/api/mt-paas/v1/events', // subscription.updated: the seed has no route for it
            '/api/tenant/webhook/service-cancelled',
            '/api/tenant/webhook/user-deleted',
          ]),
        );
      }
    });
  }
});
