import { Writable } from 'node:stream';
import { isMtPaasError, type MtPaasError, type Tenant } from '@mt-paas/context';
import { SignJWT } from 'jose';
import { pino } from 'pino';
import { describe, expect, it, vi } from 'vitest';
import { entitlements, makeTenant, memoryDirectory } from './__fixtures__/tenants.js';
import { flipSignature } from './__fixtures__/tokens.js';
import { createJwtVerifier } from './jwt-auth.js';
import { createTenantPipeline, type TenantPipelineOptions } from './pipeline.js';

const secret = 'a-very-long-test-secret-0123456789abcdef';

function sign(claims: Record<string, unknown>, exp: string | number = '5m') {
  return new SignJWT(claims)
    .setProtectedHeader({ alg: 'HS256' })
    .setIssuedAt()
    .setExpirationTime(exp)
    .sign(new TextEncoder().encode(secret));
}

function captureLogger() {
  const lines: Array<Record<string, unknown>> = [];
  const stream = new Writable({
    write(chunk, _encoding, done) {
      lines.push(JSON.parse(chunk.toString()));
      done();
    },
  });
  return { logger: pino({ level: 'info' }, stream), lines };
}

const quotaTenant = () =>
  makeTenant('univ_8', {
    entitlements: entitlements({
      rpm: 2,
      limits: { rpm: 2, quotas: { api_requests: { limit: 100, period: 'daily', enforcement: 'block' } } },
    }),
    metadata: { contact: { email: 'a@univ8.example' } },
  });

function pipelineWith(options: Partial<TenantPipelineOptions> = {}, tenants: Tenant[] = []) {
  return createTenantPipeline({
    directory: memoryDirectory([quotaTenant(), makeTenant('demo_7'), ...tenants]),
    logger: pino({ level: 'silent' }),
    metrics: false,
    ...options,
  });
}

async function refusal(promise: Promise<unknown>): Promise<MtPaasError> {
  try {
    await promise;
  } catch (error) {
    if (isMtPaasError(error)) return error;
    throw error;
  }
  throw new Error('expected a refusal');
}

const get = (headers: Record<string, string>) => ({ method: 'GET', path: '/api/x', url: '/api/x', headers });

describe('the verified-token cache (on by default)', () => {
  it('returns the same frozen verification for the same token, and verifies a token differing in one byte afresh', async () => {
    const verifier = createJwtVerifier({ secret });
    const token = await sign({ sub: 'u1', tenant_id: 'univ_8', roles: ['admin'], nested: { a: [1] } });
    const first = await verifier.verify(token);
    expect(await verifier.verify(token)).toBe(first);
    expect(Object.isFrozen(first)).toBe(true);
    expect(Object.isFrozen(first.roles)).toBe(true);
    expect(Object.isFrozen((first.claims.nested as { a: number[] }).a)).toBe(true);
    // the signature's first character changed (a whole base64url digit of signature bits): not a cache
    // hit, and not valid
    await expect(verifier.verify(flipSignature(token))).rejects.toMatchObject({
      code: 'UNAUTHENTICATED',
    });
    const uncached = createJwtVerifier({ secret, cache: false });
    expect(await uncached.verify(token)).not.toBe(await uncached.verify(token));
  });

  it('drops an entry after maxAgeMs even when the token lives longer, and after the token expires', async () => {
    const verifier = createJwtVerifier({ secret, cache: { maxAgeMs: 20 } });
    const token = await sign({ sub: 'u1' }, '1h');
    const first = await verifier.verify(token);
    await new Promise((resolve) => setTimeout(resolve, 40));
    expect(await verifier.verify(token)).not.toBe(first);

    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      const shortLived = await sign({ sub: 'u2' }, Math.floor(Date.now() / 1000) + 2);
      const cached = createJwtVerifier({ secret, clockToleranceSeconds: 0 });
      await cached.verify(shortLived);
      vi.setSystemTime(Date.now() + 5_000);
      await expect(cached.verify(shortLived)).rejects.toMatchObject({ code: 'UNAUTHENTICATED' });
    } finally {
      vi.useRealTimers();
    }
  });

  it('peek answers from the cache only: nothing before a verification, nothing with cache: false', async () => {
    const verifier = createJwtVerifier({ secret });
    const token = await sign({ sub: 'u1' });
    expect(verifier.peek(token)).toBeUndefined();
    const verified = await verifier.verify(token);
    expect(verifier.peek(token)).toBe(verified);
    expect(verifier.peek(`${token}x`)).toBeUndefined();
    const uncached = createJwtVerifier({ secret, cache: false });
    await uncached.verify(token);
    expect(uncached.peek(token)).toBeUndefined();
  });

  it('refuses a cache without a bound at build time', () => {
    for (const cache of [{ max: 0 }, { max: 1.5 }, { maxAgeMs: 0 }, { maxAgeMs: Number.NaN }]) {
      expect(() => createJwtVerifier({ secret, cache })).toThrow(
        expect.objectContaining({ code: 'CONFIG_INVALID' }),
      );
    }
  });

  it('a cached token of one tenant never admits another: every hit is checked against the resolved tenant, and audited', async () => {
    const audits: unknown[] = [];
    const pipeline = pipelineWith({
      jwt: { secret },
      rateLimit: { enabled: false },
      quota: { enabled: false },
      auditSink: { record: async (event) => void audits.push(event) },
    });
    const token = await sign({ sub: 'u1', tenant_id: 'univ_8' });
    const own = await pipeline.admit(get({ 'x-tenant-id': 'univ_8', authorization: `Bearer ${token}` }));
    expect(own.tenantId).toBe('univ_8');
    for (let attempt = 0; attempt < 3; attempt++) {
      const error = await refusal(
        pipeline.admit(get({ 'x-tenant-id': 'demo_7', authorization: `Bearer ${token}` })),
      );
      expect(error.code).toBe('CROSS_TENANT_ACCESS');
    }
    expect(audits).toHaveLength(3);
    // and the same token still works for its own tenant afterwards
    expect((await pipeline.admit(get({ authorization: `Bearer ${token}` }))).tenantId).toBe('univ_8');
    await pipeline.close();
  });
});

describe('the admission', () => {
  it('shares one deeply frozen record per cached tenant instead of copying it per request', async () => {
    const pipeline = pipelineWith({ rateLimit: { enabled: false } });
    const first = await pipeline.admit(get({ 'x-tenant-id': 'univ_8' }));
    const second = await pipeline.admit(get({ 'x-tenant-id': 'univ_8' }));
    expect(second.record).toBe(first.record);
    expect(first.context?.tenant).toBe(first.record);
    expect(second.entitlements).toBe(first.entitlements);
    const record = first.record!;
    expect(() => {
      (record as { status: string }).status = 'suspended';
    }).toThrow(TypeError);
    expect(() => {
      (record.metadata.contact as { email: string }).email = 'x@evil.example';
    }).toThrow(TypeError);
    const quota = first.entitlements!.limits.quotas.api_requests!;
    expect(() => {
      (quota as { limit: number }).limit = 1e9;
    }).toThrow(TypeError);
    expect(() => {
      (first.entitlements!.limits.quotas as Record<string, unknown>).extra = quota;
    }).toThrow(TypeError);
    expect(() => {
      (first as { tenantId: string }).tenantId = 'demo_7';
    }).toThrow(TypeError);
    expect(() => {
      (first.headers as Record<string, string>)['x-evil'] = '1';
    }).toThrow(TypeError);
    expect(await pipeline.directory.get(first.tenantId!)).toBe(record);
    expect(pipeline.directory.peek(first.tenantId!)).toBe(record);
    pipeline.directory.invalidate(first.tenantId!);
    expect(pipeline.directory.peek(first.tenantId!)).toBeUndefined();
    const reloaded = await pipeline.admit(get({ 'x-tenant-id': 'univ_8' }));
    expect(reloaded.record).not.toBe(record);
    expect(reloaded.record).toEqual(record);
    await pipeline.close();
  });

  it('makes the child logger on first read, with tenant, request and user; the request log line has them without it', async () => {
    const { logger, lines } = captureLogger();
    const pipeline = pipelineWith({ logger, jwt: { secret }, rateLimit: { enabled: false } });
    const token = await sign({ sub: 'u9', tenant_id: 'univ_8' });
    const admission = await pipeline.admit(
      get({ 'x-tenant-id': 'univ_8', 'x-request-id': 'req-7', authorization: `Bearer ${token}` }),
    );
    expect(admission.logger).toBe(admission.logger);
    admission.logger.info('from the handler');
    pipeline.finish(admission, { status: 200, route: '/api/x' });
    const handler = lines.find((line) => line.msg === 'from the handler');
    const completed = lines.find((line) => line.msg === 'request completed');
    for (const line of [handler, completed]) {
      expect(line).toMatchObject({ tenantId: 'univ_8', requestId: 'req-7', userId: 'u9' });
    }
    expect(completed).toMatchObject({ status: 200, route: '/api/x' });
    await pipeline.close();
  });
});

describe('waiting only when a stage must', () => {
  it('admitOrRefuse answers at once for a cached tenant and token with no limit to ask, with a promise otherwise', async () => {
    const pipeline = pipelineWith({
      jwt: { secret },
      rateLimit: { enabled: false },
      quota: { enabled: false },
    });
    const token = await sign({ sub: 'u1', tenant_id: 'univ_8' });
    const request = get({ 'x-tenant-id': 'univ_8', authorization: `Bearer ${token}` });
    const cold = pipeline.admitOrRefuse(request);
    expect(cold).toBeInstanceOf(Promise);
    expect(await cold).toMatchObject({ admitted: true, admission: { tenantId: 'univ_8' } });
    const warm = pipeline.admitOrRefuse(request);
    expect(warm).not.toBeInstanceOf(Promise);
    expect(warm).toMatchObject({
      admitted: true,
      admission: { tenantId: 'univ_8', principal: { kind: 'user' } },
    });
    // a refusal found without waiting is an answer too, with the request id
    const refused = pipeline.admitOrRefuse(get({ 'x-tenant-id': 'Bad!', 'x-request-id': 'r-9' }));
    expect(refused).toMatchObject({
      admitted: false,
      response: { status: 400, headers: { 'x-request-id': 'r-9' } },
    });
    // and admit() is always a promise, rejecting (never throwing) on a refusal
    const rejected = pipeline.admit(get({ 'x-tenant-id': 'Bad!' }));
    expect(rejected).toBeInstanceOf(Promise);
    await expect(rejected).rejects.toMatchObject({ code: 'INVALID_TENANT_ID' });
    await pipeline.close();
  });
});

describe('refusal headers travel on the error', () => {
  it('a 429 carries its RateLimit headers itself; admitOrRefuse adds the request id', async () => {
    const pipeline = pipelineWith();
    const headers = { 'x-tenant-id': 'univ_8', 'x-request-id': 'req-429' };
    await pipeline.admit(get(headers));
    await pipeline.admit(get(headers));
    const error = await refusal(pipeline.admit(get(headers)));
    expect(error.code).toBe('RATE_LIMITED');
    expect(error.headers).toMatchObject({ 'ratelimit-limit': '2', 'ratelimit-remaining': '0' });
    expect(Number(error.headers?.['retry-after'])).toBeGreaterThan(0);
    const outcome = await pipeline.admitOrRefuse(get(headers));
    expect(outcome.admitted).toBe(false);
    if (outcome.admitted) return;
    expect(outcome.response.status).toBe(429);
    expect(outcome.response.headers).toMatchObject({
      'x-request-id': 'req-429',
      'ratelimit-limit': '2',
      'content-type': 'application/json; charset=utf-8',
    });
    expect(outcome.response.headers['retry-after']).toBeDefined();
    await pipeline.close();
  });

  it('a request refused by the rate limit is not counted on the quota', async () => {
    const pipeline = pipelineWith();
    const headers = { 'x-tenant-id': 'univ_8' };
    const results = await Promise.allSettled(Array.from({ length: 10 }, () => pipeline.admit(get(headers))));
    expect(results.filter((result) => result.status === 'fulfilled')).toHaveLength(2);
    expect(await pipeline.quotas?.usage('univ_8' as never, 'api_requests', 'daily')).toBe(2);
    await pipeline.close();
  });
});
