import { randomBytes } from 'node:crypto';
import type {
  AuditEvent,
  AuditSink,
  Tenant,
  TenantDirectory,
  UsageRecord,
  UsageSink,
} from '@mt-paas/context';
import { send, sendRaw, sendRawLines, type TestResponse } from '@mt-paas/test-env/http-client';
import type { Redis } from 'ioredis';
import { SignJWT } from 'jose';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTenantPipeline, type TenantPipeline } from '../pipeline.js';
import type { BootApp, BootedApp } from './apps.js';
import { asLatin1Bytes, pathSpellings } from './path-spellings.js';
import { type CountingDirectory, countingDirectory, entitlements, makeTenant } from './tenants.js';

/** What the suite needs from the test file: a writable directory and (optionally) Redis. */
export interface ConformanceEnvironment {
  directory: TenantDirectory & {
    put(tenant: Tenant): Promise<void> | void;
    addDomain(domain: string, tenantId: string): Promise<void> | void;
  };
  /** When given, rate limits and quotas run on Redis; otherwise in process. */
  redis?: Redis;
  /** Redis key prefix (the test environment's, so its teardown removes the keys). */
  keyPrefix?: string;
  /** Real sinks (the catalog's usage ledger and audit log); the suite also keeps its own copy. */
  usageSink?: UsageSink;
  auditSink?: AuditSink;
  /** Sum of a meter in the real usage ledger, to prove the flush landed there. */
  ledgerTotal?(tenantId: string, meter: string): Promise<number>;
  /** Audit events of a type stored for a tenant in the real audit log. */
  auditCount?(tenantId: string, type: string): Promise<number>;
}

export const JWT_SECRET = 'conformance-secret-0123456789-abcdefghijklmnop';
export const JWT_ISSUER = 'https://market.test';
export const JWT_AUDIENCE = 'mt-paas-tests';
export const API_KEY = 'marketplace-key-0123456789abcdef';

export async function signToken(
  claims: Record<string, unknown>,
  options: { secret?: string; issuer?: string; audience?: string; expiresIn?: string | number } = {},
): Promise<string> {
  return new SignJWT(claims)
    .setProtectedHeader({ alg: 'HS256' })
    .setIssuedAt()
    .setIssuer(options.issuer ?? JWT_ISSUER)
    .setAudience(options.audience ?? JWT_AUDIENCE)
    .setExpirationTime(options.expiresIn ?? '5m')
    .sign(new TextEncoder().encode(options.secret ?? JWT_SECRET));
}

function unsignedToken(claims: Record<string, unknown>): string {
  const encode = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
  return `${encode({ alg: 'none', typ: 'JWT' })}.${encode({ ...claims, iss: JWT_ISSUER, aud: JWT_AUDIENCE, exp: Math.floor(Date.now() / 1000) + 300 })}.`;
}

function expectError(response: TestResponse, status: number, code: string): void {
  expect({ status: response.status, code: response.json?.error?.code }).toEqual({ status, code });
  expect(typeof response.json.error.message).toBe('string');
  expect(response.json.error.message.length).toBeGreaterThan(10);
  expect(response.headers['content-type']).toMatch(/application\/json/);
}

/**
 * The conformance suite: the same cases against every adapter, each booted on a real port.
 */
export function describeConformance(
  adapters: ReadonlyArray<readonly [string, BootApp]>,
  createEnvironment: () => Promise<ConformanceEnvironment & { close(): Promise<void> }>,
): void {
  describe.each(adapters)('conformance: %s', (_name, boot) => {
    let environment: ConformanceEnvironment & { close(): Promise<void> };
    let directory: CountingDirectory;
    let pipeline: TenantPipeline;
    let app: BootedApp;
    const audits: AuditEvent[] = [];
    const usage: UsageRecord[] = [];
    const suffix = randomBytes(3).toString('hex');
    const id = (name: string) => `${name}_${suffix}`;
    const now = Date.now();

    beforeAll(async () => {
      environment = await createEnvironment();
      const tenants: Tenant[] = [
        makeTenant(id('univ'), {
          entitlements: entitlements({ plan: 'starter', features: { ai_chat: true } }),
        }),
        makeTenant(id('other'), {}),
        makeTenant(id('pro'), {
          plan: 'professional',
          entitlements: entitlements({ plan: 'professional', features: { quiz: true } }),
        }),
        makeTenant(id('susp'), { status: 'suspended' }),
        makeTenant(id('blocked'), {
          status: 'blocked',
          block: { reason: 'subscription_expired', message: 'Subscription expired: renew it, please.' },
        }),
        makeTenant(id('deleted'), { status: 'deleted' }),
        makeTenant(id('expired'), { expiresAt: new Date(now - 86_400_000) }),
        makeTenant(id('grace'), {
          expiresAt: new Date(now - 3_600_000),
          graceUntil: new Date(now + 3_600_000),
        }),
        makeTenant(id('slow'), { entitlements: entitlements({ rpm: 10 }) }),
        makeTenant(id('quota'), {
          entitlements: entitlements({
            limits: {
              rpm: null,
              quotas: { api_requests: { limit: 5, period: 'daily', enforcement: 'block' } },
            },
          }),
        }),
      ];
      for (const tenant of tenants) await environment.directory.put(tenant);
      await environment.directory.addDomain(`learn-${suffix}.univ.example`, id('univ'));
      directory = countingDirectory(environment.directory);
      pipeline = createTenantPipeline({
        directory,
        auditSink: {
          record: async (event) => {
            audits.push(event);
            await environment.auditSink?.record(event);
          },
        },
        usageSink: {
          record: async (records) => {
            await environment.usageSink?.record(records);
            usage.push(...records);
          },
        },
        strategies: [
          { type: 'header' },
          { type: 'subdomain', baseDomain: 'tutor.example' },
          { type: 'custom-domain' },
          { type: 'jwt-claim' },
          { type: 'query' },
          { type: 'cookie' },
          { type: 'path-prefix', prefix: '/t/' },
        ],
        jwt: { secret: JWT_SECRET, issuer: JWT_ISSUER, audience: JWT_AUDIENCE, cache: { max: 100 } },
        apiKeys: { keys: [{ id: 'marketplace', key: API_KEY, roles: ['marketplace'] }] },
        routes: [
          { path: '/health', policy: { tenant: 'optional', rateLimit: false, quota: false } },
          { path: '/metrics', policy: { tenant: 'host-only', auth: 'none' } },
          { path: '/admin/*', policy: { tenant: 'host-only', auth: 'api-key' } },
          { path: '/api/quiz', policy: { features: ['quiz'] } },
          { path: '/api/reports', policy: { plan: 'professional' } },
          { path: '/api/staff', policy: { auth: 'jwt', roles: ['admin'] } },
        ],
        keyPrefix: `${environment.keyPrefix ?? 'mtpaas_test:'}${suffix}`,
        logger: pino({ level: 'silent' }),
        ...(environment.redis === undefined
          ? {}
          : {
              rateLimit: { redis: environment.redis },
              quota: { redis: environment.redis, flushIntervalMs: 60_000 },
            }),
        metrics: { tenantLabelAllowList: [id('univ')] },
      });
      app = await boot(pipeline);
    });

    afterAll(async () => {
      await app?.close();
      await pipeline?.close();
      await environment?.close();
    });

    const get = (path: string, headers: Record<string, string> = {}) => send(app.url, { path, headers });

    it('resolves the tenant from X-Tenant-ID and runs the handler inside its context', async () => {
      const response = await get('/api/whoami', { 'x-tenant-id': id('univ'), 'x-request-id': 'req-123' });
      expect(response.status).toBe(200);
      expect(response.json).toMatchObject({
        tenantId: id('univ'),
        contextTenant: id('univ'),
        source: 'header',
      });
      expect(response.headers['x-request-id']).toBe('req-123');
    });

    it('resolves from subdomain, custom domain, query, cookie and path prefix', async () => {
      const cases: Array<[string, Record<string, string>, string]> = [
        ['/api/whoami', { host: `${id('univ')}.tutor.example` }, 'subdomain'],
        ['/api/whoami', { host: `learn-${suffix}.univ.example:8443` }, 'custom-domain'],
        [`/api/whoami?tenant=${id('univ')}`, {}, 'query'],
        ['/api/whoami', { cookie: `theme=dark; tenant_id=${id('univ')}` }, 'cookie'],
        [`/t/${id('univ')}/whoami`, {}, 'path-prefix'],
      ];
      for (const [path, headers, source] of cases) {
        const response = await get(path, headers);
        expect({ source, status: response.status, body: response.json }).toMatchObject({
          source,
          status: 200,
          body: { tenantId: id('univ'), contextTenant: id('univ'), source },
        });
      }
    });

    it('refuses a request without a tenant (400) and serves an optional route without one', async () => {
      const missing = await get('/api/whoami', { 'x-request-id': 'req-missing-1' });
      expectError(missing, 400, 'TENANT_NOT_IDENTIFIED');
      expect(missing.headers['x-request-id']).toBe('req-missing-1');
      const health = await get('/health');
      expect(health.status).toBe(200);
      expect(health.json).toMatchObject({ tenantId: null, contextTenant: null });
      const healthWithTenant = await get('/health', { 'x-tenant-id': id('univ') });
      expect(healthWithTenant.json).toMatchObject({ tenantId: id('univ') });
    });

    it('answers hostile tenant ids with 400 INVALID_TENANT_ID and never looks them up', async () => {
      const before = directory.calls.get.length;
      const headerCases = [
        '',
        'Univ_8',
        'UNIV_8',
        'univ-8',
        "univ_8'; DROP TABLE tenants;--",
        '../../etc/passwd',
        '..',
        'a',
        'x'.repeat(300),
        'x'.repeat(8_000),
        'univ_8:other',
        '{univ_8}',
        'univ 8',
        'pg_catalog',
        'public',
        '\u00fcniv_8',
      ];
      for (const value of headerCases) {
        const response = await send(app.url, {
          path: '/api/whoami',
          headers: { 'x-tenant-id': Buffer.from(value, 'latin1').toString('latin1') },
        });
        if (value.trim() === 'univ_8') continue;
        expect({
          value: value.slice(0, 20),
          status: response.status,
          code: response.json?.error?.code,
        }).toEqual({
          value: value.slice(0, 20),
          status: 400,
          code: 'INVALID_TENANT_ID',
        });
      }
      const queryCases = [
        'univ_\uFF18',
        '\u0443niv_8',
        'univ\u200b_8',
        '%00univ',
        'univ_8%0d%0ax-a:b',
        '..%2f..%2f',
        '%20univ_8',
      ];
      for (const value of queryCases) {
        const response = await get(
          `/api/whoami?tenant=${value.includes('%') ? value : encodeURIComponent(value)}`,
        );
        expect({ value, status: response.status, code: response.json?.error?.code }).toEqual({
          value,
          status: 400,
          code: 'INVALID_TENANT_ID',
        });
      }
      expectError(await get('/t/..%2F..%2Fetc/whoami'), 400, 'INVALID_TENANT_ID');
      expectError(await get('/api/whoami', { cookie: 'tenant_id=Robert%27)%3B' }), 400, 'INVALID_TENANT_ID');
      expect(directory.calls.get.length).toBe(before);
      expect(directory.invalidLookups).toEqual([]);
    });

    it('answers an oversized header block with a JSON 431, and a broken body with a JSON 400', async () => {
      const response = await get('/api/whoami', {
        'x-tenant-id': id('univ'),
        'x-padding': 'p'.repeat(20_000),
      });
      expect(response.status).toBe(431);
      expect(response.json?.error?.code).toBe('INVALID_REQUEST');
      const broken = await send(app.url, {
        method: 'POST',
        path: '/api/items',
        headers: { 'x-tenant-id': id('univ'), 'content-type': 'application/json' },
        rawBody: '{"tenantId": ',
      });
      expectError(broken, 400, 'INVALID_REQUEST');
    });

    it('answers unknown tenants with 404 and keeps a flood of random ids away from the directory', async () => {
      expectError(await get('/api/whoami', { 'x-tenant-id': id('nobody') }), 404, 'TENANT_NOT_FOUND');
      const ids = Array.from({ length: 20 }, (_, index) => `flood_${suffix}_${index}`);
      const before = directory.calls.get.filter((call) => call.startsWith(`flood_${suffix}`)).length;
      const responses = await Promise.all(
        Array.from({ length: 200 }, (_, index) =>
          get('/api/whoami', { 'x-tenant-id': ids[index % ids.length]! }),
        ),
      );
      expect(new Set(responses.map((response) => response.status))).toEqual(new Set([404]));
      const lookups =
        directory.calls.get.filter((call) => call.startsWith(`flood_${suffix}`)).length - before;
      expect(lookups).toBeLessThanOrEqual(ids.length);
    });

    it('refuses suspended, blocked, deleted and expired tenants with their codes; grace passes with a warning', async () => {
      expectError(await get('/api/whoami', { 'x-tenant-id': id('susp') }), 403, 'TENANT_SUSPENDED');
      const blocked = await get('/api/whoami', { 'x-tenant-id': id('blocked') });
      expectError(blocked, 403, 'TENANT_BLOCKED');
      expect(blocked.json.error.message).toBe('Subscription expired: renew it, please.');
      expectError(await get('/api/whoami', { 'x-tenant-id': id('deleted') }), 403, 'TENANT_DELETED');
      expectError(await get('/api/whoami', { 'x-tenant-id': id('expired') }), 402, 'SUBSCRIPTION_EXPIRED');
      const grace = await get('/api/whoami', { 'x-tenant-id': id('grace') });
      expect(grace.status).toBe(200);
      expect(grace.headers['x-tenant-warning']).toMatch(/grace|expired/i);
    });

    it('authenticates JWTs and takes the tenant from the verified claim', async () => {
      const token = await signToken({ sub: 'user_1', tenant_id: id('univ'), roles: ['admin'] });
      const response = await get('/api/whoami', { authorization: `Bearer ${token}` });
      expect(response.status).toBe(200);
      expect(response.json).toMatchObject({ tenantId: id('univ'), user: 'user_1', source: 'jwt-claim' });
      const staff = await get('/api/staff', { authorization: `Bearer ${token}` });
      expect(staff.status).toBe(200);
    });

    it('refuses a header that disagrees with the verified claim with CROSS_TENANT_ACCESS and an audit event', async () => {
      const token = await signToken({ sub: 'user_2', tenant_id: id('univ') });
      const before = audits.length;
      const response = await get('/api/whoami', {
        authorization: `Bearer ${token}`,
        'x-tenant-id': id('other'),
      });
      expectError(response, 403, 'CROSS_TENANT_ACCESS');
      const event = audits.slice(before).find((audit) => audit.type === 'cross_tenant_access_attempt');
      expect(event).toMatchObject({ severity: 'high', tenantId: id('other'), targetTenantId: id('univ') });
      expect(event?.actor?.userId).toBe('user_2');
      if (environment.auditCount !== undefined) {
        expect(
          await environment.auditCount(id('other'), 'cross_tenant_access_attempt'),
        ).toBeGreaterThanOrEqual(1);
      }
      expectError(
        await get(`/api/whoami?tenant=${id('other')}`, { 'x-tenant-id': id('univ') }),
        403,
        'CROSS_TENANT_ACCESS',
      );
    });

    it('refuses bad tokens with 401 UNAUTHENTICATED', async () => {
      const good = await signToken({ sub: 'user_3', tenant_id: id('univ') });
      const [header, payload, signature] = good.split('.') as [string, string, string];
      const tamperedPayload = Buffer.from(
        JSON.stringify({
          ...JSON.parse(Buffer.from(payload, 'base64url').toString()),
          tenant_id: id('other'),
        }),
      ).toString('base64url');
      const tokens = [
        await signToken(
          { sub: 'u', tenant_id: id('univ') },
          { expiresIn: Math.floor(Date.now() / 1000) - 3600 },
        ),
        await signToken({ sub: 'u', tenant_id: id('univ') }, { audience: 'someone-else' }),
        await signToken({ sub: 'u', tenant_id: id('univ') }, { issuer: 'https://evil.test' }),
        await signToken(
          { sub: 'u', tenant_id: id('univ') },
          { secret: 'another-secret-0123456789-abcdefghijklmnop' },
        ),
        unsignedToken({ sub: 'u', tenant_id: id('univ') }),
        `${header}.${tamperedPayload}.${signature}`,
        'not-a-jwt',
        'a'.repeat(9000),
      ];
      for (const token of tokens) {
        expectError(await get('/api/whoami', { authorization: `Bearer ${token}` }), 401, 'UNAUTHENTICATED');
      }
      expectError(
        await get('/api/whoami', { authorization: 'Basic dXNlcjpwYXNz', 'x-tenant-id': id('univ') }),
        401,
        'UNAUTHENTICATED',
      );
      expectError(await get('/api/staff', { 'x-tenant-id': id('univ') }), 401, 'UNAUTHENTICATED');
      const badClaim = await signToken({ sub: 'u', tenant_id: 'Robert; DROP' });
      expectError(await get('/api/whoami', { authorization: `Bearer ${badClaim}` }), 401, 'UNAUTHENTICATED');
      expect(directory.invalidLookups).toEqual([]);
    });

    it('checks roles: 403 FORBIDDEN without the role, through route policy and requireRole()', async () => {
      const token = await signToken({ sub: 'user_4', tenant_id: id('univ'), roles: ['student'] });
      expectError(await get('/api/staff', { authorization: `Bearer ${token}` }), 403, 'FORBIDDEN');
      expectError(await get('/api/editor', { authorization: `Bearer ${token}` }), 403, 'FORBIDDEN');
      const editor = await signToken({ sub: 'user_5', tenant_id: id('univ'), roles: ['editor'] });
      expect((await get('/api/editor', { authorization: `Bearer ${editor}` })).status).toBe(200);
    });

    it('guards the body: a foreign tenantId / tenant_id is CROSS_TENANT_ACCESS', async () => {
      const headers = { 'x-tenant-id': id('univ') };
      const ok = await send(app.url, {
        method: 'POST',
        path: '/api/items',
        headers,
        body: { tenantId: id('univ'), name: 'a' },
      });
      expect(ok.status).toBe(200);
      expect(ok.json).toMatchObject({ contextTenant: id('univ'), body: { name: 'a' } });
      for (const body of [
        { tenantId: id('other') },
        { tenant_id: id('other') },
        [{ name: 'x' }, { tenant_id: id('other') }],
      ]) {
        const before = audits.length;
        expectError(
          await send(app.url, { method: 'POST', path: '/api/items', headers, body }),
          403,
          'CROSS_TENANT_ACCESS',
        );
        expect(audits.length).toBe(before + 1);
        expect(audits[before]).toMatchObject({
          type: 'cross_tenant_access_attempt',
          severity: 'high',
          tenantId: id('univ'),
          targetTenantId: id('other'),
          details: { reason: 'body names another tenant', sources: ['header', 'body'] },
        });
      }
    });

    it('gates features and plans (route policy, requireFeature, requirePlan)', async () => {
      expectError(await get('/api/quiz', { 'x-tenant-id': id('univ') }), 403, 'FEATURE_NOT_IN_PLAN');
      expectError(await get('/api/quiz2', { 'x-tenant-id': id('univ') }), 403, 'FEATURE_NOT_IN_PLAN');
      expect((await get('/api/quiz', { 'x-tenant-id': id('pro') })).status).toBe(200);
      expect((await get('/api/quiz2', { 'x-tenant-id': id('pro') })).status).toBe(200);
      expectError(await get('/api/reports', { 'x-tenant-id': id('univ') }), 403, 'FEATURE_NOT_IN_PLAN');
      expectError(await get('/api/reports2', { 'x-tenant-id': id('univ') }), 403, 'FEATURE_NOT_IN_PLAN');
      expect((await get('/api/reports', { 'x-tenant-id': id('pro') })).status).toBe(200);
      expect((await get('/api/reports2', { 'x-tenant-id': id('pro') })).status).toBe(200);
    });

    it('serves host-only routes with an API key and without resolving a tenant', async () => {
      const ok = await get('/admin/tenants', { 'x-api-key': API_KEY, 'x-tenant-id': 'Not Valid' });
      expect(ok.status).toBe(200);
      expect(ok.json).toMatchObject({ tenantId: null, contextTenant: null, user: 'service:marketplace' });
      expectError(await get('/admin/tenants', { 'x-api-key': `${API_KEY}x` }), 401, 'UNAUTHENTICATED');
      expectError(await get('/admin/tenants'), 401, 'UNAUTHENTICATED');
    });

    it('decides route policies on the route the framework runs, however the path is spelled', async () => {
      // The exact spelling is refused; no other spelling may reach the protected handler without credentials.
      expectError(await get('/admin/tenants', { 'x-tenant-id': id('univ') }), 401, 'UNAUTHENTICATED');
      expectError(await get('/api/staff', { 'x-tenant-id': id('univ') }), 401, 'UNAUTHENTICATED');
      const reached: string[] = [];
      for (const path of ['/admin/tenants', '/api/staff']) {
        for (const target of pathSpellings(path)) {
          const response = await sendRaw(app.url, {
            target: asLatin1Bytes(target),
            headers: { 'x-tenant-id': id('univ') },
          });
          if (response.json?.protectedRoute === true) reached.push(`${target} -> ${response.status}`);
          // Whatever the answer, it is an answer in the mt-paas shape or the framework's own 404.
          expect(response.status, target).toBeGreaterThanOrEqual(200);
        }
      }
      expect(reached).toEqual([]);
      // With credentials the same spellings that the framework routes still work (policy applied, not a blanket 4xx).
      const ok = await sendRaw(app.url, {
        target: '/admin/tenants?x=1',
        headers: { 'x-api-key': API_KEY },
      });
      expect(ok.status).toBe(200);
      expect(ok.json).toMatchObject({ protectedRoute: true, user: 'service:marketplace' });
    });

    it('refuses a request target that is neither origin-form nor absolute-form', async () => {
      for (const target of ['admin/tenants', '*', 'ftp://evil.example/admin/tenants']) {
        const response = await sendRaw(app.url, { target, headers: { 'x-tenant-id': id('univ') } });
        expect(response.json?.protectedRoute, target).not.toBe(true);
        expect(response.status, target).toBeGreaterThanOrEqual(400);
      }
    });

    it('refuses a valid token without a tenant claim on a route that acts in a tenant, whatever names the tenant', async () => {
      const tenantless = [
        await signToken({ sub: 'admin_1', roles: ['admin'] }),
        await signToken({ sub: 'admin_1', roles: ['admin'], tenant_id: null }),
        await signToken({ sub: 'admin_1', roles: ['admin'], tenantId: id('univ') }),
      ];
      const reached: string[] = [];
      for (const token of tenantless) {
        const authorization = `Bearer ${token}`;
        const attempts: Array<[string, Record<string, string>]> = [
          ['/api/staff', { authorization, 'x-tenant-id': id('univ') }],
          ['/api/whoami', { authorization, 'x-tenant-id': id('other') }],
          [`/api/whoami?tenant=${id('pro')}`, { authorization }],
          ['/api/whoami', { authorization, cookie: `tenant_id=${id('univ')}` }],
          ['/api/whoami', { authorization, host: `${id('univ')}.tutor.example` }],
          [`/t/${id('univ')}/whoami`, { authorization }],
          ['/health', { authorization, 'x-tenant-id': id('univ') }],
        ];
        for (const [path, headers] of attempts) {
          const response = await get(path, headers);
          if (response.status < 400) reached.push(`${path} ${JSON.stringify(Object.keys(headers))}`);
          // 403 for a token without the claim; 401 for a claim that is no tenant id (null).
          else
            expect(['403 FORBIDDEN', '401 UNAUTHENTICATED']).toContain(
              `${response.status} ${response.json?.error?.code}`,
            );
        }
      }
      expect(reached).toEqual([]);
      // A tenantless token still works where no tenant is involved.
      const health = await get('/health', { authorization: `Bearer ${tenantless[0]}` });
      expect(health.status).toBe(200);
    });

    it('refuses duplicate tenant cookies, query values and identity headers that could name two tenants', async () => {
      const cookies = [
        `tenant_id=${id('univ')}; tenant_id=${id('other')}`,
        `tenant_id=${id('other')}; theme=dark; tenant_id=${id('univ')}`,
        `tenant_id=${id('univ')};tenant_id=${id('other')}`,
        `tenant_id=${id('univ')}, tenant_id=${id('other')}`,
        `tenant_id="${id('univ')}"; tenant_id=${id('other')}`,
        `tenant_id=${id('univ')}; tenant_id=%${id('other').charCodeAt(0).toString(16)}${id('other').slice(1)}`,
      ];
      for (const cookie of cookies) {
        const response = await get('/api/whoami', { cookie });
        expect({ cookie, status: response.status, code: response.json?.error?.code }).toEqual({
          cookie,
          status: 403,
          code: 'CROSS_TENANT_ACCESS',
        });
      }
      // Two Cookie header lines (joined by the server) are the same attack.
      const twoLines = await sendRaw(app.url, {
        target: '/api/whoami',
        headers: { cookie: `tenant_id=${id('univ')}`, Cookie: `tenant_id=${id('other')}` },
      });
      expect(twoLines.status).toBeGreaterThanOrEqual(400);
      expect(twoLines.json?.tenantId).toBeUndefined();
      // The same id twice is one tenant.
      expect(
        (await get('/api/whoami', { cookie: `tenant_id=${id('univ')}; tenant_id=${id('univ')}` })).status,
      ).toBe(200);
      for (const query of [
        `tenant=${id('univ')}&tenant=${id('other')}`,
        `tenant=${id('univ')}&tenan%74=${id('other')}`,
        `tenant=${id('univ')}&%74enant=${id('other')}`,
        `tenant=${id('other')}&x=1&tenant=${id('univ')}`,
      ]) {
        const response = await get(`/api/whoami?${query}`);
        expect({ query, status: response.status, code: response.json?.error?.code }).toEqual({
          query,
          status: 403,
          code: 'CROSS_TENANT_ACCESS',
        });
      }
      const semicolon = await get(`/api/whoami?tenant=${id('univ')};tenant=${id('other')}`);
      expect(semicolon.status).toBeGreaterThanOrEqual(400);
      // Repeated identity headers: the tenant header, Host, Authorization, the API key.
      const token = await signToken({ sub: 'user_9', tenant_id: id('univ') });
      const other = await signToken({ sub: 'user_9', tenant_id: id('other') });
      const duplicates: Array<[string, string]> = [
        [`X-Tenant-ID: ${id('univ')}`, `x-tenant-id: ${id('other')}`],
        [`Host: ${id('univ')}.tutor.example`, `host: ${id('other')}.tutor.example`],
        [`Authorization: Bearer ${token}`, `authorization: Bearer ${other}`],
      ];
      for (const [first, second] of duplicates) {
        const response = await sendRawLines(app.url, '/api/whoami', [first, second]);
        expect({ first, status: response.status >= 400, tenant: response.json?.tenantId }).toEqual({
          first,
          status: true,
          tenant: undefined,
        });
      }
      const keys = await sendRawLines(app.url, '/admin/tenants', [
        `X-Api-Key: ${API_KEY}`,
        'x-api-key: wrong',
      ]);
      expect(keys.json?.protectedRoute).not.toBe(true);
    });

    it('guards every body the app can read as JSON, whatever its content type says', async () => {
      const contentTypes = [
        'application/json',
        'application/json; charset=utf-8',
        'APPLICATION/JSON',
        'Application/Json; Charset=UTF-8',
        'application/vnd.api+json',
        'application/merge-patch+json',
        'text/plain',
        'text/plain; charset=utf-8',
        'TEXT/PLAIN',
        'text/json',
        'application/x-www-form-urlencoded',
        'application/octet-stream',
        'application/jsonx',
        'json',
        '',
      ];
      const leaked: string[] = [];
      for (const contentType of contentTypes) {
        for (const body of [{ tenantId: id('other') }, [{ tenant_id: id('other') }]]) {
          const response = await send(app.url, {
            method: 'POST',
            path: '/api/items',
            headers: { 'x-tenant-id': id('univ'), 'content-type': contentType },
            rawBody: JSON.stringify(body),
          });
          if (response.status < 300 && response.text.includes(id('other')))
            leaked.push(`${contentType || '(none)'} -> ${response.status}`);
        }
      }
      expect(leaked).toEqual([]);
    });

    it("answers the router's own refusals (404, bad URL, long parameter, bad JSON) in the mt-paas shape", async () => {
      const tenant = { 'x-tenant-id': id('univ') };
      const notFound = await get('/api/no-such-route', tenant);
      expectError(notFound, 404, 'ROUTE_NOT_FOUND');
      expectError(
        await sendRaw(app.url, { method: 'DELETE', target: '/api/whoami', headers: tenant }),
        404,
        'ROUTE_NOT_FOUND',
      );
      const targets = [
        '/api/courses/%E0%A4%A',
        '/api/courses/%',
        '/api/courses/%zz',
        '/api/courses/%C0%AF',
        `/api/courses/${'x'.repeat(150)}`,
        `/api/courses/${'%41'.repeat(120)}`,
        `/api/${'y'.repeat(3000)}`,
      ];
      for (const target of targets) {
        const response = await sendRaw(app.url, { target, headers: tenant });
        if (response.status < 400) continue; // this framework routes it: the handler answered
        expect({ target: target.slice(0, 40), code: typeof response.json?.error?.code }).toEqual({
          target: target.slice(0, 40),
          code: 'string',
        });
        expect(response.json.error.message.length).toBeGreaterThan(10);
        expect(response.text).not.toMatch(/FST_|statusCode|Cannot GET|<html|not a valid url component/);
      }
      const badJson = await send(app.url, {
        method: 'POST',
        path: '/api/items',
        headers: { ...tenant, 'content-type': 'application/json' },
        rawBody: '{"a":',
      });
      expectError(badJson, 400, 'INVALID_REQUEST');
      expect(badJson.text).not.toMatch(/FST_|statusCode|Unexpected end/);
    });

    it('rate limits per tenant: 30 concurrent requests against rpm 10 admit exactly 10', async () => {
      const responses = await Promise.all(
        Array.from({ length: 30 }, () => get('/api/whoami', { 'x-tenant-id': id('slow') })),
      );
      const admitted = responses.filter((response) => response.status === 200);
      const refused = responses.filter((response) => response.status === 429);
      expect(admitted.length).toBe(10);
      expect(refused.length).toBe(20);
      for (const response of refused) {
        expect(response.json.error.code).toBe('RATE_LIMITED');
        expect(Number(response.headers['retry-after'])).toBeGreaterThan(0);
        expect(response.headers['ratelimit-limit']).toBe('10');
        expect(response.headers['ratelimit-remaining']).toBe('0');
      }
      expect(admitted[0]?.headers['ratelimit-policy']).toBe('10;w=60');
    });

    it('enforces a blocking quota and meters usage', async () => {
      const statuses: number[] = [];
      for (let index = 0; index < 7; index++) {
        statuses.push((await get('/api/whoami', { 'x-tenant-id': id('quota') })).status);
      }
      expect(statuses).toEqual([200, 200, 200, 200, 200, 429, 429]);
      const refused = await get('/api/whoami', { 'x-tenant-id': id('quota') });
      expectError(refused, 429, 'QUOTA_EXCEEDED');
      expect(Number(refused.headers['retry-after'])).toBeGreaterThan(0);
      await pipeline.quotas?.flush();
      const metered = usage
        .filter((record) => record.tenantId === id('quota') && record.meter === 'api_requests')
        .reduce((sum, record) => sum + record.quantity, 0);
      expect(metered).toBe(5);
      if (environment.ledgerTotal !== undefined) {
        expect(await environment.ledgerTotal(id('quota'), 'api_requests')).toBe(5);
      }
    });

    it('exposes metrics with route templates and bounded tenant labels', async () => {
      await get(`/api/courses/${randomBytes(4).toString('hex')}`, { 'x-tenant-id': id('univ') });
      await get('/api/courses/other-id', { 'x-tenant-id': id('other') });
      const metrics = await get('/metrics');
      expect(metrics.status).toBe(200);
      expect(metrics.text).toContain('mtpaas_http_requests_total');
      expect(metrics.text).toMatch(/route="\/api\/courses\/:id"/);
      expect(metrics.text).not.toMatch(/route="\/api\/courses\/[a-f0-9]{8}"/);
      expect(metrics.text).toContain(`tenant="${id('univ')}"`);
      expect(metrics.text).not.toContain(`tenant="${id('other')}"`);
      expect(metrics.text).toContain('tenant="_other"');
      expect(metrics.text).toMatch(/mtpaas_refusals_total\{code="INVALID_TENANT_ID"\}/);
    });
  });
}
