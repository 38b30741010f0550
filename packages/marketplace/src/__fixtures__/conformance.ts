import { randomUUID } from 'node:crypto';
import { send, type TestResponse } from '@mt-paas/test-env/http-client';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { ReceiptStore } from '../receipts.js';
import { createMarketplaceReceiver, type HandlerContext, type MarketplaceHandlers } from '../receiver.js';
import { createMarketplaceSso } from '../sso.js';
import { generateWebhookSecret, signWebhook } from '../standard-webhooks.js';
import type { BootApp, BootedApp } from './apps.js';

/** What the suite needs from the test file. */
export interface ConformanceEnvironment {
  receipts: ReceiptStore;
  /** Rows in the receipt store (to prove a refused delivery wrote nothing). */
  receiptCount(): Promise<number>;
  close(): Promise<void>;
}

export const SERVICE_ID = 'keli_tutor';
export const LEGACY_SECRET = 'webhook_secret_12345';
export const API_KEY = 'your_api_key';
const MAX_BODY = 4096;

/** The seed 002 §7.1.2 request, byte for byte as its curl sends it. */
export const SEED_CREATE_BODY = `{
    "tenant_id": "test_univ",
    "tenant_name": "테스트대학교",
    "admin_email": "admin@test.ac.kr",
    "admin_name": "관리자",
    "application_id": 1,
    "application_kind": "service"
  }`;

/** The seed 002 §7.2.1 request. */
export const SEED_USER_DELETED_BODY = `{
    "event": "user.deleted",
    "user_id": 123,
    "email": "admin@test.ac.kr",
    "university_name": "테스트대학교",
    "deleted_at": "2026-01-08T10:00:00"
  }`;

interface Call {
  handler: string;
  data: unknown;
  context: Omit<HandlerContext, 'transaction'>;
}

/** Handlers that record every call; `failures` makes the next calls throw. */
function recordingHandlers() {
  const calls: Call[] = [];
  const state = { failures: 0, delayMs: 0 };
  const record = (handler: string) => async (data: unknown, context: HandlerContext) => {
    if (state.delayMs > 0) await new Promise((resolve) => setTimeout(resolve, state.delayMs));
    if (state.failures > 0) {
      state.failures--;
      throw new Error('database is down (test)');
    }
    const { transaction: _transaction, ...rest } = context;
    calls.push({ handler, data, context: rest });
  };
  const handlers: MarketplaceHandlers = {
    async onProvisionRequested(data, context) {
      await record('onProvisionRequested')(data, context);
      return { accessUrl: `https://myservice.k-university.ai?tenant=${data.tenantId}` };
    },
    onSubscriptionUpdated: record('onSubscriptionUpdated'),
    async onServiceCancelled(data, context) {
      await record('onServiceCancelled')(data, context);
    },
    async onUserDeleted(data, context) {
      await record('onUserDeleted')(data, context);
      return { deletedTenants: data.email === 'admin@test.ac.kr' ? ['test_univ'] : [] };
    },
    onBlocked: record('onBlocked'),
    onUnblocked: record('onUnblocked'),
  };
  return { calls, state, handlers };
}

/**
 * The marketplace routes, run on every adapter: the seed's request and response shapes exactly,
 * Standard Webhooks interop (signed by the `standardwebhooks` package), the legacy secret, every
 * refusal with nothing written, duplicates, out-of-order deliveries and retryable failures.
 */
export function describeMarketplaceConformance(
  adapters: ReadonlyArray<readonly [string, BootApp]>,
  makeEnvironment: () => Promise<ConformanceEnvironment>,
) {
  describe.each(adapters)('marketplace routes on %s', (_name, boot) => {
    const secret = generateWebhookSecret();
    const oldSecret = generateWebhookSecret();
    const peer = new Webhook(secret);
    const recorder = recordingHandlers();
    let environment: ConformanceEnvironment;
    let app: BootedApp;
    let ssoKey: Awaited<ReturnType<typeof generateKeyPair>>['privateKey'];

    beforeAll(async () => {
      environment = await makeEnvironment();
      const keys = await generateKeyPair('ES256', { extractable: true });
      ssoKey = keys.privateKey;
      const jwk = { ...(await exportJWK(keys.publicKey)), kid: 'market-1', alg: 'ES256' };
      const receiver = createMarketplaceReceiver({
        serviceId: SERVICE_ID,
        sso: createMarketplaceSso({
          jwks: { keys: [jwk] },
          issuer: 'https://market.test',
          audience: SERVICE_ID,
        }),
        handlers: {
          ...recorder.handlers,
          onSsoLogin: (login) => ({
            redirectTo: `/home?tenant=${login.tenantId}`,
            headers: {
              'set-cookie': [
                `session=${login.user.id}; HttpOnly; Path=/`,
                `tenant=${login.tenantId}; Path=/`,
              ],
            },
          }),
        },
        receipts: environment.receipts,
        secrets: [secret, oldSecret],
        legacySecret: LEGACY_SECRET,
        apiKeys: [API_KEY],
        maxBodyBytes: MAX_BODY,
      });
      app = await boot(receiver);
    });
    afterAll(async () => {
      await app?.close();
      await environment?.close();
    });
    beforeEach(() => {
      recorder.calls.length = 0;
      recorder.state.failures = 0;
      recorder.state.delayMs = 0;
    });

    /** Sends an event envelope signed by the independent `standardwebhooks` implementation. */
    function sendEvent(
      envelope: unknown,
      options: { id?: string; at?: Date; raw?: string; headers?: Record<string, string> } = {},
    ): Promise<TestResponse> {
      const body = options.raw ?? JSON.stringify(envelope);
      const id = options.id ?? `msg_${randomUUID()}`;
      const at = options.at ?? new Date();
      return send(app.url, {
        method: 'POST',
        path: '/api/mt-paas/v1/events',
        rawBody: body,
        headers: {
          'webhook-id': id,
          'webhook-timestamp': String(Math.floor(at.getTime() / 1000)),
          'webhook-signature': peer.sign(id, at, body),
          ...options.headers,
        },
      });
    }

    /** Asserts a refusal wrote nothing and called no handler. */
    async function expectNothingWritten(before: number) {
      expect(await environment.receiptCount()).toBe(before);
      expect(recorder.calls).toEqual([]);
    }

    describe('seed 002 routes: the seed request and response shapes', () => {
      it('POST /api/tenant/create answers { success, tenant_id, access_url }', async () => {
        const response = await send(app.url, {
          method: 'POST',
          path: '/api/tenant/create',
          rawBody: SEED_CREATE_BODY,
          headers: { 'x-api-key': API_KEY },
        });
        expect(response.status).toBe(200);
        expect(response.json).toEqual({
          success: true,
          tenant_id: 'test_univ',
          access_url: 'https://myservice.k-university.ai?tenant=test_univ',
        });
        expect(recorder.calls).toHaveLength(1);
        expect(recorder.calls[0]?.data).toEqual({
          tenantId: 'test_univ',
          tenantName: '테스트대학교',
          adminEmail: 'admin@test.ac.kr',
          adminName: '관리자',
          institution: undefined,
          applicationId: '1',
          applicationKind: 'service',
          plan: undefined,
          demoExpiresAt: undefined,
        });
        expect(recorder.calls[0]?.context.auth).toBe('api_key');
      });

      it('accepts the seed e2e body without admin_name (demo kind)', async () => {
        const response = await send(app.url, {
          method: 'POST',
          path: '/api/tenant/create',
          body: {
            tenant_id: 'e2e_test',
            tenant_name: 'E2E 테스트',
            admin_email: 'e2e@test.com',
            application_id: 999,
            application_kind: 'demo',
          },
          headers: { 'x-api-key': API_KEY },
        });
        expect(response.status).toBe(200);
        expect(response.json.success).toBe(true);
      });

      it.each([
        ['no key', {}],
        ['a wrong key', { 'x-api-key': 'not_the_key' }],
        ['the key with one more character', { 'x-api-key': `${API_KEY}x` }],
        ['the key in another case', { 'x-api-key': API_KEY.toUpperCase() }],
        ['the legacy webhook secret', { 'x-webhook-secret': LEGACY_SECRET }],
        ['an empty key', { 'x-api-key': '' }],
      ])('refuses tenant/create with %s: 401 {"detail"}, nothing written', async (_label, headers) => {
        const before = await environment.receiptCount();
        const response = await send(app.url, {
          method: 'POST',
          path: '/api/tenant/create',
          rawBody: SEED_CREATE_BODY,
          headers,
        });
        expect(response.status).toBe(401);
        expect(response.json).toEqual({ detail: 'Invalid API key' });
        await expectNothingWritten(before);
      });

      it.each([
        'Test_Univ',
        'univ-8',
        '../etc',
        'pg_catalog',
        'public',
        'a',
        "x'; DROP TABLE t;--",
        'ｕｎｉｖ',
        '',
      ])('refuses tenant id %j with 400 {"detail"} and writes nothing', async (tenantId) => {
        const before = await environment.receiptCount();
        const response = await send(app.url, {
          method: 'POST',
          path: '/api/tenant/create',
          body: { ...JSON.parse(SEED_CREATE_BODY), tenant_id: tenantId },
          headers: { 'x-api-key': API_KEY },
        });
        expect(response.status).toBe(400);
        expect(Object.keys(response.json)).toEqual(['detail']);
        expect(response.json.detail).toMatch(/tenant_id/);
        await expectNothingWritten(before);
      });

      it('POST /api/tenant/webhook/user-deleted answers the seed response', async () => {
        const response = await send(app.url, {
          method: 'POST',
          path: '/api/tenant/webhook/user-deleted',
          rawBody: SEED_USER_DELETED_BODY,
          headers: { 'x-webhook-secret': LEGACY_SECRET },
        });
        expect(response.status).toBe(200);
        expect(response.json).toEqual({
          success: true,
          message: 'Deleted 1 tenant(s)',
          deleted_tenants: ['test_univ'],
        });
        expect(recorder.calls[0]?.data).toEqual({
          userId: '123',
          email: 'admin@test.ac.kr',
          universityName: '테스트대학교',
          deletedAt: new Date('2026-01-08T10:00:00Z'),
        });
        expect(recorder.calls[0]?.context.auth).toBe('legacy_secret');
      });

      it('answers an unsupported event as the seed does (200, success false), processing nothing', async () => {
        const before = await environment.receiptCount();
        const response = await send(app.url, {
          method: 'POST',
          path: '/api/tenant/webhook/user-deleted',
          body: { ...JSON.parse(SEED_USER_DELETED_BODY), event: 'user.created' },
          headers: { 'x-webhook-secret': LEGACY_SECRET },
        });
        expect(response.status).toBe(200);
        expect(response.json).toEqual({ success: false, message: 'Unsupported event: user.created' });
        await expectNothingWritten(before);
      });

      it.each([
        ['no secret', {}],
        ['a wrong secret', { 'x-webhook-secret': 'webhook_secret_1234' }],
        ['a longer secret', { 'x-webhook-secret': `${LEGACY_SECRET}5` }],
        ['the API key', { 'x-api-key': API_KEY }],
        ['a bearer token', { authorization: `Bearer ${LEGACY_SECRET}` }],
      ])(
        'refuses the seed webhooks with %s: 401 {"detail": "Invalid webhook secret"}',
        async (_label, headers) => {
          const before = await environment.receiptCount();
          for (const [path, rawBody] of [
            ['/api/tenant/webhook/user-deleted', SEED_USER_DELETED_BODY],
            ['/api/tenant/webhook/service-cancelled', '{"application_id": 1}'],
          ] as const) {
            const response = await send(app.url, { method: 'POST', path, rawBody, headers });
            expect(response.status).toBe(401);
            expect(response.json).toEqual({ detail: 'Invalid webhook secret' });
          }
          await expectNothingWritten(before);
        },
      );

      it('POST /api/tenant/webhook/service-cancelled answers { success: true }', async () => {
        const response = await send(app.url, {
          method: 'POST',
          path: '/api/tenant/webhook/service-cancelled',
          rawBody: '{"application_id": 42}',
          headers: { 'x-webhook-secret': LEGACY_SECRET },
        });
        expect(response.status).toBe(200);
        expect(response.json).toEqual({ success: true });
        expect(recorder.calls[0]?.data).toEqual({
          applicationId: '42',
          tenantId: undefined,
          reason: undefined,
        });
      });

      it.each([
        ['malformed JSON', '{"application_id": '],
        ['a JSON array', '[1,2]'],
        ['an empty body', ''],
        ['a missing field', '{"app": 1}'],
        ['invalid UTF-8', Buffer.from([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x7d])],
      ])('answers %s on a seed route with 400 {"detail"}, nothing written', async (_label, rawBody) => {
        const before = await environment.receiptCount();
        const response = await send(app.url, {
          method: 'POST',
          path: '/api/tenant/webhook/service-cancelled',
          rawBody,
          headers: { 'x-webhook-secret': LEGACY_SECRET },
        });
        expect(response.status).toBe(400);
        expect(Object.keys(response.json)).toEqual(['detail']);
        await expectNothingWritten(before);
      });

      it('answers an oversized seed body with 413 {"detail"}', async () => {
        const before = await environment.receiptCount();
        const response = await send(app.url, {
          method: 'POST',
          path: '/api/tenant/create',
          body: { ...JSON.parse(SEED_CREATE_BODY), description: 'x'.repeat(MAX_BODY) },
          headers: { 'x-api-key': API_KEY },
        });
        expect(response.status).toBe(413);
        expect(Object.keys(response.json)).toEqual(['detail']);
        await expectNothingWritten(before);
      });

      it('accepts a Standard Webhooks signature on a seed route too', async () => {
        const body = '{"application_id": 7}';
        const headers = signWebhook({
          id: `msg_${randomUUID()}`,
          timestamp: new Date(),
          body,
          secrets: [oldSecret],
        });
        const response = await send(app.url, {
          method: 'POST',
          path: '/api/tenant/webhook/service-cancelled',
          rawBody: body,
          headers: { ...headers },
        });
        expect(response.status).toBe(200);
        expect(recorder.calls[0]?.context.auth).toBe('signature');
      });
    });

    describe('seed 001 §5.2 block / unblock', () => {
      const blockBody = {
        reason: 'subscription_expired',
        block_at: '2026-01-03T12:00:00Z',
        grace_period_hours: 24,
        message: '구독이 만료되었습니다. 갱신해주세요.',
      };

      function signed(path: string, body: string, at = new Date()) {
        const id = `msg_${randomUUID()}`;
        return send(app.url, {
          method: 'POST',
          path,
          rawBody: body,
          headers: {
            'webhook-id': id,
            'webhook-timestamp': String(Math.floor(at.getTime() / 1000)),
            'webhook-signature': peer.sign(id, at, body),
          },
        });
      }

      it('blocks with the seed body, signed', async () => {
        const response = await signed(
          `/api/v1/services/${SERVICE_ID}/tenants/hallym/block`,
          JSON.stringify(blockBody),
        );
        expect(response.status).toBe(200);
        expect(response.json).toMatchObject({
          success: true,
          tenant_id: 'hallym',
          status: 'blocked',
          result: 'processed',
        });
        expect(recorder.calls).toEqual([
          {
            handler: 'onBlocked',
            data: {
              tenantId: 'hallym',
              reason: 'subscription_expired',
              blockAt: new Date('2026-01-03T12:00:00Z'),
              gracePeriodHours: 24,
              message: '구독이 만료되었습니다. 갱신해주세요.',
            },
            context: expect.objectContaining({ auth: 'signature' }),
          },
        ]);
      });

      it('refuses an unsigned block even with the API key while signing secrets are configured', async () => {
        const before = await environment.receiptCount();
        const response = await send(app.url, {
          method: 'POST',
          path: `/api/v1/services/${SERVICE_ID}/tenants/hallym/block`,
          body: blockBody,
          headers: { 'x-api-key': API_KEY },
        });
        expect(response.status).toBe(401);
        expect(response.json.error.code).toBe('WEBHOOK_SIGNATURE_INVALID');
        await expectNothingWritten(before);
      });

      it.each([
        ['another service', `/api/v1/services/other_service/tenants/hallym/block`, 404],
        ['an invalid tenant', `/api/v1/services/${SERVICE_ID}/tenants/Hallym/block`, 400],
        ['a reserved tenant', `/api/v1/services/${SERVICE_ID}/tenants/pg_toast/block`, 400],
      ])('refuses %s (%s) with %i and the mt-paas error shape', async (_label, path, status) => {
        const before = await environment.receiptCount();
        const response = await signed(path, JSON.stringify(blockBody));
        expect(response.status).toBe(status);
        expect(typeof response.json.error.code).toBe('string');
        await expectNothingWritten(before);
      });

      it('never reaches a handler through an encoded traversal in the tenant segment', async () => {
        const before = await environment.receiptCount();
        for (const segment of ['%2e%2e', '..%2f..', 'hallym%2fblock', '%68allym%00']) {
          const response = await signed(
            `/api/v1/services/${SERVICE_ID}/tenants/${segment}/block`,
            JSON.stringify(blockBody),
          );
          // 400 where the framework hands over the raw segment, 404 where it normalises the path first.
          expect([400, 404]).toContain(response.status);
        }
        await expectNothingWritten(before);
      });

      it('unblocks with an empty body', async () => {
        const response = await signed(`/api/v1/services/${SERVICE_ID}/tenants/korea/unblock`, '');
        expect(response.status).toBe(200);
        expect(response.json).toMatchObject({ success: true, tenant_id: 'korea', status: 'active' });
      });

      it('never moves a tenant backwards: an old unblock after a newer block is ignored', async () => {
        const now = Date.now();
        const tenant = `order_${randomUUID().slice(0, 8)}`;
        const blocked = await signed(
          `/api/v1/services/${SERVICE_ID}/tenants/${tenant}/block`,
          JSON.stringify({ ...blockBody, occurred_at: new Date(now - 10_000).toISOString() }),
        );
        const staleUnblock = await signed(
          `/api/v1/services/${SERVICE_ID}/tenants/${tenant}/unblock`,
          JSON.stringify({ occurred_at: new Date(now - 60_000).toISOString() }),
        );
        expect(blocked.json.result).toBe('processed');
        expect(staleUnblock.status).toBe(200);
        expect(staleUnblock.json.result).toBe('ignored');
        expect(recorder.calls.map((call) => call.handler)).toEqual(['onBlocked']);
        const freshUnblock = await signed(
          `/api/v1/services/${SERVICE_ID}/tenants/${tenant}/unblock`,
          JSON.stringify({ occurred_at: new Date(now).toISOString() }),
        );
        expect(freshUnblock.json.result).toBe('processed');
        expect(recorder.calls.map((call) => call.handler)).toEqual(['onBlocked', 'onUnblocked']);
      });
    });

    describe('GET /auth/marketplace/callback (marketplace SSO)', () => {
      const token = (audience = SERVICE_ID) =>
        new SignJWT({ tenant_id: 'hallym' })
          .setProtectedHeader({ alg: 'ES256', kid: 'market-1' })
          .setSubject('user_42')
          .setIssuer('https://market.test')
          .setAudience(audience)
          .setIssuedAt()
          .setJti(randomUUID())
          .setExpirationTime('2m')
          .sign(ssoKey);

      it('redirects with the app session cookies, once per token', async () => {
        const path = `/auth/marketplace/callback?token=${await token()}`;
        const first = await send(app.url, { path });
        expect(first.status).toBe(302);
        expect(first.headers.location).toBe('/home?tenant=hallym');
        expect(first.headers['set-cookie']).toEqual([
          'session=user_42; HttpOnly; Path=/',
          'tenant=hallym; Path=/',
        ]);
        const replay = await send(app.url, { path });
        expect(replay.status).toBe(401);
        expect(replay.json.error.code).toBe('UNAUTHENTICATED');
        expect(replay.headers['set-cookie']).toBeUndefined();
      });

      it('refuses a token for another tenant than the callback names, and one for another service', async () => {
        const other = await send(app.url, {
          path: `/auth/marketplace/callback?token=${await token()}&tenant=korea`,
        });
        expect(other.status).toBe(403);
        const otherService = await send(app.url, {
          path: `/auth/marketplace/callback?token=${await token('other_service')}`,
        });
        expect(otherService.status).toBe(401);
        const none = await send(app.url, { path: '/auth/marketplace/callback' });
        expect(none.status).toBe(401);
      });
    });

    describe('POST /api/mt-paas/v1/events (Standard Webhooks, versioned)', () => {
      const subscription = (tenant: string, at = new Date()) => ({
        type: 'subscription.updated',
        version: 1,
        timestamp: at.toISOString(),
        data: {
          tenant_id: tenant,
          plan: 'professional',
          features: { quiz: true, rag: true },
          limits: { rpm: 600, quotas: { llm_tokens: { limit: 1000000, period: 'monthly' } } },
          expires_at: '2027-01-01T00:00:00Z',
          grace_period_hours: 48,
        },
      });

      it('processes an event signed by the standardwebhooks package', async () => {
        const response = await sendEvent(subscription('snu'));
        expect(response.status).toBe(200);
        expect(response.json).toMatchObject({ ok: true, type: 'subscription.updated', result: 'processed' });
        expect(recorder.calls[0]?.data).toEqual({
          tenantId: 'snu',
          plan: 'professional',
          features: { quiz: true, rag: true },
          limits: {
            rpm: 600,
            quotas: { llm_tokens: { limit: 1000000, period: 'monthly', enforcement: 'block' } },
          },
          expiresAt: new Date('2027-01-01T00:00:00Z'),
          gracePeriodHours: 48,
        });
      });

      it('ignores unknown extra fields (forward compatible)', async () => {
        const event = subscription('snu');
        const response = await sendEvent({
          ...event,
          trace: 'x',
          data: { ...event.data, future_field: { a: 1 } },
        });
        expect(response.status).toBe(200);
        expect(recorder.calls[0]?.data).not.toHaveProperty('future_field');
      });

      it('accepts each of the rotated secrets', async () => {
        const body = JSON.stringify(subscription('snu'));
        for (const secrets of [[oldSecret], [generateWebhookSecret(), secret]]) {
          const headers = signWebhook({ id: `msg_${randomUUID()}`, timestamp: new Date(), body, secrets });
          const response = await send(app.url, {
            method: 'POST',
            path: '/api/mt-paas/v1/events',
            rawBody: body,
            headers: { ...headers },
          });
          expect(response.status).toBe(200);
        }
      });

      it('answers a duplicate with the first answer and runs the handler once', async () => {
        const id = `msg_${randomUUID()}`;
        const first = await sendEvent(subscription('snu'), { id });
        const again = await sendEvent(subscription('snu'), { id, at: new Date(Date.now() + 1000) });
        expect(again.status).toBe(first.status);
        expect(again.json).toEqual(first.json);
        expect(again.headers['x-mt-paas-receipt']).toBe('duplicate');
        expect(recorder.calls).toHaveLength(1);
      });

      it('runs the handler once for concurrent duplicates', async () => {
        recorder.state.delayMs = 50;
        const id = `msg_${randomUUID()}`;
        const responses = await Promise.all(
          Array.from({ length: 6 }, () => sendEvent(subscription('yonsei'), { id })),
        );
        for (const response of responses) {
          expect(response.status).toBe(200);
          expect(response.json).toEqual(responses[0]?.json);
        }
        expect(recorder.calls).toHaveLength(1);
      });

      it('leaves a failed delivery retryable: the retry is processed, not a duplicate', async () => {
        const id = `msg_${randomUUID()}`;
        const before = await environment.receiptCount();
        recorder.state.failures = 1;
        const failed = await sendEvent(subscription('kaist'), { id });
        expect(failed.status).toBe(500);
        expect(failed.json.error.code).toBe('INTERNAL');
        expect(failed.text).not.toMatch(/database is down/);
        expect(await environment.receiptCount()).toBe(before);
        const retried = await sendEvent(subscription('kaist'), { id });
        expect(retried.status).toBe(200);
        expect(retried.json.result).toBe('processed');
        expect(retried.headers['x-mt-paas-receipt']).toBe('processed');
        expect(recorder.calls).toHaveLength(1);
      });

      it('applies subscription updates in event order, whatever the arrival order', async () => {
        const tenant = `sub_${randomUUID().slice(0, 8)}`;
        const newer = await sendEvent(subscription(tenant, new Date(Date.now() - 1000)));
        const older = await sendEvent(subscription(tenant, new Date(Date.now() - 5000)));
        expect(newer.json.result).toBe('processed');
        expect(older.json.result).toBe('ignored');
        expect(recorder.calls).toHaveLength(1);
        // Another tenant and another kind are not held back by it.
        const otherTenant = await sendEvent(subscription(`${tenant}_b`, new Date(Date.now() - 5000)));
        expect(otherTenant.json.result).toBe('processed');
      });

      it('ends each tenant in its newest state whatever the interleaving of concurrent deliveries', async () => {
        const now = Date.now();
        const run = randomUUID().slice(0, 6);
        const deliveries: Promise<TestResponse>[] = [];
        for (let index = 0; index < 10; index++) {
          const tenant = `race_${run}_${index}`;
          const newest = index % 2 === 0 ? 'tenant.blocked' : 'tenant.unblocked';
          const events = [
            { type: 'tenant.unblocked', at: now - 30_000 },
            { type: 'tenant.blocked', at: now - 20_000 },
            { type: newest, at: now - 10_000 },
          ].sort(() => Math.random() - 0.5);
          for (const event of events) {
            deliveries.push(
              sendEvent({
                type: event.type,
                version: 1,
                timestamp: new Date(event.at).toISOString(),
                data: { tenant_id: tenant, reason: 'r' },
              }),
            );
          }
        }
        for (const response of await Promise.all(deliveries)) expect(response.status).toBe(200);
        for (let index = 0; index < 10; index++) {
          const tenant = `race_${run}_${index}`;
          const applied = recorder.calls.filter(
            (call) => (call.data as { tenantId: string }).tenantId === tenant,
          );
          expect(applied.at(-1)?.handler).toBe(index % 2 === 0 ? 'onBlocked' : 'onUnblocked');
        }
      });

      it.each([
        ['a tampered body', (body: string) => ({ raw: body.replace('professional', 'enterprise') })],
        ['a re-serialised body', (body: string) => ({ raw: JSON.stringify(JSON.parse(body), null, 2) })],
        [
          'a signature by an unknown secret',
          () => ({
            headers: { 'webhook-signature': new Webhook(generateWebhookSecret()).sign('x', new Date(), 'y') },
          }),
        ],
        ['a v2 signature only', () => ({ headers: { 'webhook-signature': 'v2,abc=' } })],
        ['an empty signature', () => ({ headers: { 'webhook-signature': '' } })],
        ['a non-numeric timestamp', () => ({ headers: { 'webhook-timestamp': '12e9' } })],
        ['a timestamp 6 minutes old (replay)', () => ({ at: new Date(Date.now() - 6 * 60_000) })],
        ['a timestamp 6 minutes ahead', () => ({ at: new Date(Date.now() + 6 * 60_000) })],
      ])('refuses %s with 401, nothing written', async (_label, change) => {
        const event = subscription('snu');
        const body = JSON.stringify(event);
        const options = change(body) as { raw?: string; at?: Date; headers?: Record<string, string> };
        const before = await environment.receiptCount();
        let response: TestResponse;
        if (options.raw !== undefined) {
          // Signed over the original bytes, sent with other bytes.
          const id = `msg_${randomUUID()}`;
          const at = new Date();
          response = await send(app.url, {
            method: 'POST',
            path: '/api/mt-paas/v1/events',
            rawBody: options.raw,
            headers: {
              'webhook-id': id,
              'webhook-timestamp': String(Math.floor(at.getTime() / 1000)),
              'webhook-signature': peer.sign(id, at, body),
            },
          });
        } else {
          response = await sendEvent(event, options);
        }
        expect(response.status).toBe(401);
        expect(response.json.error.code).toBe('WEBHOOK_SIGNATURE_INVALID');
        await expectNothingWritten(before);
      });

      it('refuses an unsigned event even with the API key or the legacy secret', async () => {
        const before = await environment.receiptCount();
        for (const headers of [{ 'x-api-key': API_KEY }, { 'x-webhook-secret': LEGACY_SECRET }] as Record<
          string,
          string
        >[]) {
          const response = await send(app.url, {
            method: 'POST',
            path: '/api/mt-paas/v1/events',
            body: subscription('snu'),
            headers,
          });
          expect(response.status).toBe(401);
        }
        await expectNothingWritten(before);
      });

      it.each([
        [
          'an unknown event type',
          { type: 'tenant.exploded', version: 1, timestamp: new Date().toISOString(), data: {} },
          /Unknown event type/,
        ],
        [
          'an unknown version',
          { type: 'tenant.blocked', version: 7, timestamp: new Date().toISOString(), data: {} },
          /version 7/,
        ],
        [
          'invalid data',
          {
            type: 'tenant.blocked',
            version: 1,
            timestamp: new Date().toISOString(),
            data: { tenant_id: 'x' },
          },
          /tenant/,
        ],
        [
          'a missing timestamp',
          { type: 'tenant.unblocked', version: 1, data: { tenant_id: 'snu' } },
          /timestamp/,
        ],
        [
          'a prototype key as type',
          { type: '__proto__', version: 1, timestamp: new Date().toISOString(), data: {} },
          /Unknown event type/,
        ],
        [
          'a prototype key as version',
          { type: 'tenant.unblocked', version: 0, timestamp: new Date().toISOString(), data: {} },
          /version/,
        ],
      ])('answers %s with 400 (signed correctly), nothing written', async (_label, envelope, message) => {
        const before = await environment.receiptCount();
        const response = await sendEvent(envelope);
        expect(response.status).toBe(400);
        expect(response.json.error.code).toBe('INVALID_REQUEST');
        expect(response.json.error.message).toMatch(message);
        await expectNothingWritten(before);
      });

      it.each([
        ['malformed JSON', '{"type": "tenant.blocked",'],
        ['a JSON string', '"tenant.blocked"'],
        ['null', 'null'],
        ['an empty body', ''],
      ])('answers %s with 400, nothing written', async (_label, raw) => {
        const before = await environment.receiptCount();
        const response = await sendEvent(undefined, { raw });
        expect(response.status).toBe(400);
        expect(response.json.error.code).toBe('INVALID_REQUEST');
        await expectNothingWritten(before);
      });

      it('answers an oversized body with 413 (with and without Content-Length), nothing written', async () => {
        const before = await environment.receiptCount();
        const event = subscription('snu');
        const raw = JSON.stringify({ ...event, padding: 'x'.repeat(MAX_BODY) });
        const declared = await sendEvent(undefined, { raw });
        expect(declared.status).toBe(413);
        expect(declared.json.error.code).toBe('PAYLOAD_TOO_LARGE');
        const id = `msg_${randomUUID()}`;
        const at = new Date();
        const chunked = await send(app.url, {
          method: 'POST',
          path: '/api/mt-paas/v1/events',
          rawBody: raw,
          chunked: true,
          headers: {
            'webhook-id': id,
            'webhook-timestamp': String(Math.floor(at.getTime() / 1000)),
            'webhook-signature': peer.sign(id, at, raw),
          },
        });
        expect(chunked.status).toBe(413);
        await expectNothingWritten(before);
      });

      it('answers another method with 405 and Allow', async () => {
        const response = await send(app.url, { method: 'GET', path: '/api/mt-paas/v1/events' });
        expect(response.status).toBe(405);
        expect(response.headers.allow).toBe('POST');
      });

      it('leaves the app’s own JSON routes alone', async () => {
        const response = await send(app.url, { method: 'POST', path: '/api/echo', body: { a: 1 } });
        expect(response.status).toBe(200);
        expect(response.json).toEqual({ echo: { a: 1 } });
      });
    });
  });
}
