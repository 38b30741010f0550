import { Writable } from 'node:stream';
import { isMtPaasError, MtPaasError } from '@mt-paas/context';
import { Redis } from 'ioredis';
import { SignJWT } from 'jose';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { countingDirectory, entitlements, makeTenant, memoryDirectory } from './__fixtures__/tenants.js';
import { createTenantPipeline, type TenantPipelineOptions } from './pipeline.js';
import { createRedisClient } from './redis-client.js';

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

function pipelineWith(options: Partial<TenantPipelineOptions> = {}) {
  const directory = countingDirectory(
    memoryDirectory([
      makeTenant('univ_8'),
      makeTenant('hltutor'),
      makeTenant('slow_one', { entitlements: entitlements({ rpm: 2 }) }),
    ]),
  );
  return {
    directory,
    pipeline: createTenantPipeline({
      directory,
      logger: pino({ level: 'silent' }),
      metrics: false,
      ...options,
    }),
  };
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

const request = (headers: Record<string, string> = {}, path = '/api/x') => ({
  method: 'GET',
  path,
  url: path,
  headers,
});

describe('createTenantPipeline', () => {
  it('uses a default tenant only when configured', async () => {
    const off = pipelineWith();
    expect((await refusal(off.pipeline.admit(request()))).code).toBe('TENANT_NOT_IDENTIFIED');
    const on = pipelineWith({ defaultTenant: 'hltutor' });
    const admission = await on.pipeline.admit(request());
    expect(admission).toMatchObject({ tenantId: 'hltutor', source: 'default' });
    expect(admission.context?.tenantId).toBe('hltutor');
    expect(() => pipelineWith({ defaultTenant: 'Bad Id' })).toThrow(
      expect.objectContaining({ code: 'CONFIG_INVALID' }),
    );
  });

  it('checks the grammar before any lookup, for every strategy', async () => {
    const { pipeline, directory } = pipelineWith({
      strategies: [{ type: 'header' }, { type: 'query' }, { type: 'cookie' }, { type: 'path-prefix' }],
    });
    for (const bad of [
      request({ 'x-tenant-id': 'x'.repeat(100_000) }),
      request({ cookie: 'tenant_id=%E2%80%AEuniv' }),
      { ...request(), url: '/api/x?tenant=univ_8&tenant=' },
      request({}, '/t/%2e%2e/x'),
    ]) {
      expect((await refusal(pipeline.admit(bad))).code).toBe('INVALID_TENANT_ID');
    }
    expect(directory.calls.get).toEqual([]);
  });

  it('reads the subdomain of any 3+ label host when no base domain is set, never of IPs or localhost', async () => {
    const { pipeline, directory } = pipelineWith({
      strategies: [{ type: 'subdomain' }],
      defaultAuth: 'none',
    });
    expect((await pipeline.admit(request({ host: 'univ_8.tutor.example.com:443' }))).tenantId).toBe('univ_8');
    for (const host of ['127.0.0.1:3000', 'localhost', 'example.com', '[::1]:80', 'www.tutor.example.com']) {
      expect((await refusal(pipeline.admit(request({ host })))).code).toBe('TENANT_NOT_IDENTIFIED');
    }
    expect(directory.calls.get).toEqual(['univ_8']);
  });

  it("compares a token's tenant claim with every other source, also when jwt-claim is not a strategy", async () => {
    const secret = 'pipeline-test-secret-0123456789-abcdefgh';
    const token = await new SignJWT({ sub: 'u1', org: 'univ_8' })
      .setProtectedHeader({ alg: 'HS256' })
      .setExpirationTime('5m')
      .sign(new TextEncoder().encode(secret));
    const directory = memoryDirectory([makeTenant('univ_8'), makeTenant('hltutor')]);
    directory.addDomain('learn.hltutor.example', 'hltutor');
    const audits: unknown[] = [];
    const pipeline = createTenantPipeline({
      directory,
      strategies: [{ type: 'custom-domain' }],
      jwt: { secret, tenantClaim: 'org' },
      auditSink: { record: async (event) => void audits.push(event) },
      logger: pino({ level: 'silent' }),
      metrics: false,
    });
    const error = await refusal(
      pipeline.admit(request({ host: 'learn.hltutor.example', authorization: `Bearer ${token}` })),
    );
    expect(error.code).toBe('CROSS_TENANT_ACCESS');
    expect(audits).toEqual([expect.objectContaining({ tenantId: 'hltutor', targetTenantId: 'univ_8' })]);
    const withDefault = createTenantPipeline({
      directory,
      strategies: [{ type: 'header' }],
      defaultTenant: 'hltutor',
      jwt: { secret, tenantClaim: 'org' },
      logger: pino({ level: 'silent' }),
      metrics: false,
    });
    const defaultRefusal = await refusal(withDefault.admit(request({ authorization: `Bearer ${token}` })));
    expect(defaultRefusal.code).toBe('CROSS_TENANT_ACCESS');
    // No header was sent: the message names the default tenant and says how to name the token's tenant.
    expect(defaultRefusal.message).toBe(
      'The token is for tenant "univ_8", not the default tenant "hltutor"; name "univ_8" with the X-Tenant-ID header.',
    );
    expect(defaultRefusal.details).toEqual({ sources: ['default', 'jwt-claim'] });
    expect((await withDefault.admit(request())).tenantId).toBe('hltutor');
    const byClaim = createTenantPipeline({
      directory,
      strategies: [{ type: 'jwt-claim', claim: 'org' }],
      jwt: { secret },
      logger: pino({ level: 'silent' }),
      metrics: false,
    });
    expect((await byClaim.admit(request({ authorization: `Bearer ${token}` }))).tenantId).toBe('univ_8');
  });

  it('says which configured sources can name the tenant when a request names none', async () => {
    const byDefault = pipelineWith();
    expect((await refusal(byDefault.pipeline.admit(request()))).message).toBe(
      'No tenant in this request; name one with the X-Tenant-ID header, or a bearer token with a "tenant_id" claim.',
    );
    const custom = pipelineWith({
      strategies: [
        { type: 'query', name: 't' },
        { type: 'cookie' },
        { type: 'subdomain', baseDomain: 'tutor.example.com' },
      ],
    });
    const error = await refusal(custom.pipeline.admit(request()));
    expect(error.code).toBe('TENANT_NOT_IDENTIFIED');
    expect(error.message).toBe(
      'No tenant in this request; name one with the ?t= query parameter, or the tenant_id cookie, or the tenant subdomain (<tenant>.tutor.example.com).',
    );
  });

  it('gives requests without a tenant a child logger with requestId and the caller', async () => {
    const { logger, lines } = captureLogger();
    const { pipeline } = pipelineWith({
      logger,
      apiKeys: { keys: [{ id: 'market', key: 'm'.repeat(32) }] },
    });
    const hostOnly = await pipeline.admit(request({ 'x-api-key': 'm'.repeat(32), 'x-request-id': 'r-1' }), {
      tenant: 'host-only',
      auth: 'api-key',
    });
    const optional = await pipeline.admit(request({ 'x-request-id': 'r-2' }), { tenant: 'optional' });
    hostOnly.logger.info('host-only');
    optional.logger.info('optional');
    expect(lines.filter((line) => line.msg === 'host-only' || line.msg === 'optional')).toEqual([
      expect.objectContaining({ requestId: 'r-1', userId: 'service:market' }),
      expect.objectContaining({ requestId: 'r-2' }),
    ]);
    expect(optional).toMatchObject({
      tenantId: undefined,
      context: undefined,
      policy: { tenant: 'optional' },
    });
  });

  it('gives each request a child logger carrying tenantId and requestId', async () => {
    const { logger, lines } = captureLogger();
    const { pipeline } = pipelineWith({ logger });
    const admission = await pipeline.admit(request({ 'x-tenant-id': 'univ_8', 'x-request-id': 'abc-123' }));
    admission.logger.info('hello');
    pipeline.finish(admission, { status: 200, route: '/api/x' });
    expect(lines[0]?.msg).toMatch(/^In-process rate limits and quotas: correct for a single instance only/);
    expect(lines.slice(1)).toEqual([
      expect.objectContaining({ msg: 'hello', tenantId: 'univ_8', requestId: 'abc-123' }),
      expect.objectContaining({
        msg: 'request completed',
        tenantId: 'univ_8',
        requestId: 'abc-123',
        status: 200,
      }),
    ]);
    const generated = await pipeline.admit(request({ 'x-tenant-id': 'univ_8', 'x-request-id': 'bad id\n' }));
    // Generated: the pipeline's random UUID and a counter, so unique and itself a valid request id.
    expect(generated.requestId).toMatch(/^[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}-[0-9a-z]+$/);
    const next = await pipeline.admit(request({ 'x-tenant-id': 'univ_8' }));
    expect(next.requestId).not.toBe(generated.requestId);
    expect(next.requestId.slice(0, 37)).toBe(generated.requestId.slice(0, 37));
    const other = pipelineWith({ logger }).pipeline;
    const elsewhere = await other.admit(request({ 'x-tenant-id': 'univ_8' }));
    expect(elsewhere.requestId.slice(0, 37)).not.toBe(generated.requestId.slice(0, 37));
    const echoed = await pipeline.admit(request({ 'x-tenant-id': 'univ_8', 'x-request-id': next.requestId }));
    expect(echoed.requestId).toBe(next.requestId);
  });

  it('turns unexpected errors into a 500 without internals', () => {
    const { pipeline } = pipelineWith();
    const response = pipeline.errorResponse(new Error('password=hunter2 at db.internal'));
    expect(response.status).toBe(500);
    expect(response.body.error.code).toBe('INTERNAL');
    expect(JSON.stringify(response.body)).not.toContain('hunter2');
  });

  it('fails open when Redis is down, deciding at once and logging once per outage', async () => {
    const redis = createRedisClient({ url: 'redis://127.0.0.1:1', connectTimeoutMs: 200 });
    redis.on('error', () => {});
    const { logger, lines } = captureLogger();
    const { pipeline } = pipelineWith({
      rateLimit: { redis, failMode: 'open' },
      quota: { redis },
      logger,
      storeStartTimeoutMs: 100,
    });
    const admissions = await Promise.all(
      Array.from({ length: 20 }, () => pipeline.admit(request({ 'x-tenant-id': 'slow_one' }))),
    );
    expect(admissions.length).toBe(20);
    for (let index = 0; index < 5; index++) await pipeline.admit(request({ 'x-tenant-id': 'slow_one' }));
    const outageLogs = lines.filter((line) => String(line.msg).includes('rate limit store unavailable'));
    expect(outageLogs.length).toBe(1);
    redis.disconnect();
  });

  it('builds Redis clients that auto-pipeline and never queue offline, and warns about clients that would', () => {
    const client = createRedisClient({ url: 'redis://127.0.0.1:1', redisOptions: { lazyConnect: true } });
    expect(client.options).toMatchObject({
      enableAutoPipelining: true,
      enableOfflineQueue: false,
      commandTimeout: 250,
    });
    const quiet = captureLogger();
    pipelineWith({ rateLimit: { redis: client }, quota: { redis: client }, logger: quiet.logger });
    expect(quiet.lines.filter((line) => line.level === 40)).toEqual([]);
    const queueing = new Redis('redis://127.0.0.1:1', { lazyConnect: true });
    const warned = captureLogger();
    pipelineWith({ rateLimit: { redis: queueing }, logger: warned.logger });
    expect(warned.lines.filter((line) => line.level === 40)).toEqual([
      expect.objectContaining({ msg: expect.stringMatching(/enableOfflineQueue.*createRedisClient\(\)/) }),
    ]);
    client.disconnect();
    queueing.disconnect();
  });

  it('fails closed with 503 when configured', async () => {
    const redis = createRedisClient({ url: 'redis://127.0.0.1:1', connectTimeoutMs: 200 });
    redis.on('error', () => {});
    const { pipeline } = pipelineWith({ rateLimit: { redis, failMode: 'closed' }, storeStartTimeoutMs: 100 });
    const error = await refusal(pipeline.admit(request({ 'x-tenant-id': 'univ_8' })));
    expect(error).toMatchObject({ code: 'SERVICE_UNAVAILABLE', httpStatus: 503, retryAfterSeconds: 5 });
    redis.disconnect();
  });

  it('limits per tenant and user when perUser is set', async () => {
    const { pipeline } = pipelineWith({
      rateLimit: { perUser: true },
      apiKeys: {
        keys: [
          { id: 'svc_a', key: 'k'.repeat(32) },
          { id: 'svc_b', key: 'q'.repeat(32) },
        ],
      },
      defaultAuth: 'jwt-or-api-key',
    });
    const as = (key: string) => request({ 'x-tenant-id': 'slow_one', 'x-api-key': key });
    await pipeline.admit(as('k'.repeat(32)));
    await pipeline.admit(as('k'.repeat(32)));
    expect((await refusal(pipeline.admit(as('k'.repeat(32))))).code).toBe('RATE_LIMITED');
    await expect(pipeline.admit(as('q'.repeat(32)))).resolves.toMatchObject({
      principal: { service: 'svc_b' },
    });
  });

  it('throttles a tenant past a throttle quota instead of blocking it', async () => {
    const directory = memoryDirectory([
      makeTenant('univ_8', {
        entitlements: entitlements({
          limits: {
            rpm: null,
            quotas: { api_requests: { limit: 2, period: 'daily', enforcement: 'throttle' } },
          },
        }),
      }),
    ]);
    const pipeline = createTenantPipeline({
      directory,
      quota: { throttleRpm: 2 },
      logger: pino({ level: 'silent' }),
      metrics: false,
    });
    const outcomes: string[] = [];
    for (let index = 0; index < 6; index++) {
      outcomes.push(
        await pipeline.admit(request({ 'x-tenant-id': 'univ_8' })).then(
          () => 'ok',
          (error: MtPaasError) => error.code,
        ),
      );
    }
    expect(outcomes).toEqual(['ok', 'ok', 'ok', 'ok', 'QUOTA_EXCEEDED', 'QUOTA_EXCEEDED']);
    const refused = await refusal(pipeline.admit(request({ 'x-tenant-id': 'univ_8' })));
    expect(pipeline.errorResponse(refused).headers['retry-after']).toBeDefined();
    expect(pipeline.errorResponse(refused).headers['ratelimit-limit']).toBe('2');
    await pipeline.close();
  });

  it('meters other meters through consume()', async () => {
    const { pipeline } = pipelineWith();
    const directory = memoryDirectory([
      makeTenant('univ_8', {
        entitlements: entitlements({
          limits: {
            rpm: null,
            quotas: { llm_tokens: { limit: 1000, period: 'monthly', enforcement: 'block' } },
          },
        }),
      }),
    ]);
    const metered = createTenantPipeline({ directory, logger: pino({ level: 'silent' }), metrics: false });
    const admission = await metered.admit(request({ 'x-tenant-id': 'univ_8' }));
    expect((await metered.consume(admission, 'llm_tokens', 900))?.used).toBe(900);
    expect((await refusal(metered.consume(admission, 'llm_tokens', 200))).code).toBe('QUOTA_EXCEEDED');
    await pipeline.close();
    await metered.close();
  });
});

describe('route rules, body guard and token tenants', () => {
  const routes = [
    { path: '/admin/*', policy: { tenant: 'host-only' as const, auth: 'api-key' as const } },
    { path: '/api/staff', policy: { auth: 'jwt' as const } },
  ];

  it('matches rules the way the framework compares paths', () => {
    const { pipeline } = pipelineWith({ routes });
    const loose = { caseSensitive: false, strictTrailingSlash: false };
    for (const path of ['/ADMIN/tenants', '/Admin', '/admin/', '/API/Staff/', '/api/staff/']) {
      expect({ path, policy: pipeline.policyFor('GET', path, loose) }).toMatchObject({
        path,
        policy: expect.any(Object),
      });
    }
    // HEAD runs the GET handler in every framework.
    const byMethod = pipelineWith({ routes: [{ method: 'GET', path: '/reports', policy: { auth: 'jwt' } }] });
    for (const method of ['GET', 'HEAD', 'get', 'head'])
      expect({ method, policy: byMethod.pipeline.policyFor(method, '/reports') }).toEqual({
        method,
        policy: { auth: 'jwt' },
      });
    expect(byMethod.pipeline.policyFor('POST', '/reports')).toBeUndefined();
    // A case-sensitive, strict router (Fastify templates, Hono) does not route these spellings.
    for (const path of ['/ADMIN/tenants', '/api/staff/', '/api/staffx', '/administrator'])
      expect({ path, policy: pipeline.policyFor('GET', path) }).toEqual({ path, policy: undefined });
  });

  it('refuses a request target that is not a path before any lookup', async () => {
    const { pipeline, directory } = pipelineWith({ routes });
    for (const path of ['admin/tenants', '*', 'http://evil.example/admin/tenants', '']) {
      const error = await refusal(pipeline.admit({ ...request({ 'x-tenant-id': 'univ_8' }), path }));
      expect({ path, code: error.code }).toEqual({ path, code: 'INVALID_REQUEST' });
    }
    expect(directory.calls.get).toEqual([]);
  });

  it('reads text and byte bodies as JSON, then as a form, whatever their type', async () => {
    const { pipeline } = pipelineWith();
    const admission = await pipeline.admit(request({ 'x-tenant-id': 'univ_8' }));
    const foreign = [
      '{"tenantId":"other_1"}',
      ' [{"tenant_id":"other_1"}] ',
      Buffer.from('{"tenantId":"other_1"}'),
      new TextEncoder().encode('{"tenant_id":"other_1"}'),
      'name=x&tenantId=other_1',
    ];
    for (const body of foreign) {
      const error = await refusal(pipeline.checkBody(admission, body));
      expect(error.code).toBe('CROSS_TENANT_ACCESS');
    }
    for (const body of ['{"tenantId":"univ_8"}', 'hello', '', 'tenantId=univ_8', Buffer.alloc(0), '{broken'])
      await expect(pipeline.checkBody(admission, body)).resolves.toBeUndefined();
  });

  it('refuses a token without a tenant claim in a tenant, unless requireTenantClaim is false', async () => {
    const secret = 'unit-secret-0123456789-abcdefghijklmnopqrst';
    const token = await new SignJWT({ sub: 'admin_1', roles: ['admin'] })
      .setProtectedHeader({ alg: 'HS256' })
      .setExpirationTime('5m')
      .sign(new TextEncoder().encode(secret));
    const headers = { authorization: `Bearer ${token}`, 'x-tenant-id': 'univ_8' };
    const strict = pipelineWith({ jwt: { secret } });
    expect((await refusal(strict.pipeline.admit(request(headers)))).code).toBe('FORBIDDEN');
    const defaulted = pipelineWith({ jwt: { secret }, defaultTenant: 'hltutor' });
    expect(
      (await refusal(defaulted.pipeline.admit(request({ authorization: headers.authorization })))).code,
    ).toBe('FORBIDDEN');
    const optedOut = pipelineWith({ jwt: { secret, requireTenantClaim: false } });
    const admitted = await optedOut.pipeline.admit(request(headers));
    expect(admitted.tenantId).toBe('univ_8');
    expect(admitted.principal.user?.id).toBe('admin_1');
  });

  it('refuses identity headers sent twice (Node keeps the first Host / Authorization)', async () => {
    const { pipeline } = pipelineWith({ apiKeys: { keys: [{ id: 'm', key: 'k'.repeat(32) }] } });
    for (const rawHeaders of [
      ['Host', 'a.example', 'host', 'b.example'],
      ['X-Tenant-ID', 'univ_8', 'x-tenant-id', 'univ_8'],
      ['Authorization', 'Bearer a', 'AUTHORIZATION', 'Bearer b'],
      ['x-api-key', 'a', 'X-Api-Key', 'b'],
      // Apart, between headers of the same length as an identity header's name.
      ['HOST', 'a.example', 'Date', 'x', 'Xyz', 'y', 'date', 'z', 'hOsT', 'b.example'],
    ]) {
      const error = await refusal(pipeline.admit({ ...request({ 'x-tenant-id': 'univ_8' }), rawHeaders }));
      expect({ rawHeaders, code: error.code }).toEqual({ rawHeaders, code: 'INVALID_REQUEST' });
    }
    const fine = await pipeline.admit({
      ...request({ 'x-tenant-id': 'univ_8' }),
      rawHeaders: ['Host', 'a', 'Cookie', 'a=1', 'Cookie', 'b=2', 'X-Tenant-ID', 'univ_8'],
    });
    expect(fine.tenantId).toBe('univ_8');
    // Other headers whose names are as long as an identity header's are not identity headers.
    const sameLengths = await pipeline.admit({
      ...request({ 'x-tenant-id': 'univ_8' }),
      rawHeaders: ['Date', 'a', 'date', 'b', 'X-Tenant-Ix', 'a', 'x-tenant-ix', 'b', 'X-Tenant-ID', 'univ_8'],
    });
    expect(sameLengths.tenantId).toBe('univ_8');
    // A header strategy's own name, whatever its length, is an identity header too.
    const custom = pipelineWith({ strategies: [{ type: 'header', name: 'X-Org' }] }).pipeline;
    const twice = await refusal(
      custom.admit({ ...request({ 'x-org': 'univ_8' }), rawHeaders: ['X-Org', 'univ_8', 'x-ORG', 'univ_8'] }),
    );
    expect(twice.code).toBe('INVALID_REQUEST');
  });
});

describe('amounts, limits and server faults', () => {
  it('meters only non-negative whole amounts: a refund, NaN or Infinity is refused and changes nothing', async () => {
    const { pipeline } = pipelineWith();
    const metered = createTenantPipeline({
      directory: memoryDirectory([
        makeTenant('meter_1', {
          entitlements: entitlements({
            limits: {
              rpm: null,
              quotas: { llm_tokens: { limit: 10, period: 'monthly', enforcement: 'block' } },
            },
          }),
        }),
      ]),
      logger: pino({ level: 'silent' }),
      metrics: false,
    });
    const admission = await metered.admit(request({ 'x-tenant-id': 'meter_1' }));
    expect((await metered.consume(admission, 'llm_tokens', 10))?.allowed).toBe(true);
    for (const amount of [
      -5,
      -1,
      Number.NaN,
      Number.POSITIVE_INFINITY,
      1.5,
      -0.5,
      2 ** 60,
      '3' as unknown as number,
    ]) {
      const error = await refusal(metered.consume(admission, 'llm_tokens', amount));
      expect({ amount, code: error.code }).toEqual({ amount, code: 'INTERNAL' });
      // Unknown meters too: a bad amount is a bug whatever the meter.
      expect((await refusal(metered.consume(admission, 'no_such_meter', amount))).code).toBe('INTERNAL');
    }
    // Still exhausted: nothing was refunded.
    expect((await refusal(metered.consume(admission, 'llm_tokens', 1))).code).toBe('QUOTA_EXCEEDED');
    expect((await metered.consume(admission, 'llm_tokens', 0))?.allowed).toBe(true);
    const costly = createTenantPipeline({
      directory: memoryDirectory([makeTenant('meter_2')]),
      logger: pino({ level: 'silent' }),
      metrics: false,
      routes: [{ path: '/x', policy: { quota: { meter: 'api_requests', cost: -3 } } }],
    });
    expect((await refusal(costly.admit(request({ 'x-tenant-id': 'meter_2' }, '/x')))).code).toBe('INTERNAL');
    await Promise.all([pipeline.close(), metered.close(), costly.close()]);
  });

  it('rate stores refuse arguments GCRA cannot decide on', async () => {
    const { createMemoryRateLimitStore } = await import('./rate-limiter.js');
    const store = createMemoryRateLimitStore();
    for (const [limit, period, cost] of [
      [0, 60_000, 1],
      [-1, 60_000, 1],
      [Number.NaN, 60_000, 1],
      [10, 60_000, -1],
      [10, 60_000, Number.NaN],
      [10, 0, 1],
      [1.5, 60_000, 1],
    ] as const) {
      expect((await refusal(store.consume('k', limit, period, cost))).code).toBe('INTERNAL');
    }
  });

  it('rpm 0 admits nothing, an rpm that is no whole number fails closed, defaultRpm 0 is refused at build', async () => {
    const directory = memoryDirectory([
      makeTenant('zero_rpm', { entitlements: entitlements({ rpm: 0 }) }),
      makeTenant('bad_rpm', { entitlements: entitlements({ rpm: -4 }) }),
      makeTenant('nan_rpm', { entitlements: entitlements({ rpm: Number.NaN }) }),
      makeTenant('frac_rpm', { entitlements: entitlements({ rpm: 2.5 }) }),
    ]);
    const pipeline = createTenantPipeline({ directory, logger: pino({ level: 'silent' }), metrics: false });
    for (let attempt = 0; attempt < 3; attempt++) {
      const error = await refusal(pipeline.admit(request({ 'x-tenant-id': 'zero_rpm' })));
      expect(error.code).toBe('RATE_LIMITED');
      expect(pipeline.errorResponse(error).headers).toMatchObject({
        'ratelimit-limit': '0',
        'retry-after': '60',
      });
    }
    for (const tenant of ['bad_rpm', 'nan_rpm', 'frac_rpm'])
      expect((await refusal(pipeline.admit(request({ 'x-tenant-id': tenant })))).code).toBe('CONFIG_INVALID');
    for (const defaultRpm of [0, -1, 1.5, Number.NaN]) {
      expect(() => createTenantPipeline({ directory, rateLimit: { defaultRpm } })).toThrow(/defaultRpm/);
    }
    for (const throttleRpm of [0, -6, 0.5, Number.POSITIVE_INFINITY]) {
      expect(() => createTenantPipeline({ directory, quota: { throttleRpm } })).toThrow(/throttleRpm/);
    }
    await pipeline.close();
  });

  it('answers 5xx refusals with a fixed text: driver messages, hosts and database names stay in the log', async () => {
    const driverText =
      'Tenant storage is unavailable (directory.get): connect ECONNREFUSED 127.0.0.1:54329 database "mtpaas_catalog_prod"';
    const { logger, lines } = captureLogger();
    const failures: unknown[] = [
      new MtPaasError('TENANT_STORAGE_UNAVAILABLE', driverText, {
        retryAfterSeconds: 5,
        details: { where: 'directory.get' },
      }),
      new MtPaasError('SERVICE_UNAVAILABLE', driverText),
      new MtPaasError('PROVIDER_ERROR', driverText),
      new MtPaasError('TIMEOUT', driverText),
      new MtPaasError('INTERNAL', driverText),
      Object.assign(new Error(driverText), { code: 'ECONNREFUSED' }),
    ];
    const directory = {
      get: async () => {
        throw failures[0];
      },
      resolveDomain: async () => undefined,
      list: async () => ({ items: [], nextCursor: undefined }),
    } as unknown as TenantPipelineOptions['directory'];
    const pipeline = createTenantPipeline({ directory, logger, metrics: false });
    const thrown = await refusal(pipeline.admit(request({ 'x-tenant-id': 'univ_8' })));
    for (const failure of [thrown, ...failures]) {
      const response = pipeline.errorResponse(failure, { requestId: 'req-1' });
      expect(response.status).toBeGreaterThanOrEqual(500);
      const text = JSON.stringify(response.body);
      for (const leak of ['ECONNREFUSED', '127.0.0.1', '54329', 'mtpaas_catalog', 'directory.get'])
        expect(text).not.toContain(leak);
      expect(response.body.error.message).toMatch(/retry/);
    }
    expect(pipeline.errorResponse(thrown).headers['retry-after']).toBe('5');
    expect(lines.some((line) => JSON.stringify(line).includes('ECONNREFUSED 127.0.0.1:54329'))).toBe(true);
    // Refusals the pipeline writes for clients keep their words.
    const provisioning = createTenantPipeline({
      directory: memoryDirectory([makeTenant('new_one', { status: 'provisioning' })]),
      logger: pino({ level: 'silent' }),
      metrics: false,
    });
    const setUp = await refusal(provisioning.admit(request({ 'x-tenant-id': 'new_one' })));
    expect(provisioning.errorResponse(setUp).body.error.message).toMatch(/still being set up/);
    await Promise.all([pipeline.close(), provisioning.close()]);
  });
});
