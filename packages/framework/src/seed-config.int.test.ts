/**
 * Seed 001's whole `mt_paas_config.yaml` through createServiceFramework, unchanged, with one overlay that
 * points its URLs at local stand-ins (Postgres, Redis, a marketplace + LRS stand-in), and each key's
 * effect checked. Keys that only act in another mode (`isolation.docker.*`) are covered by that mode.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { encryptTenantApiKey } from '@mt-paas/providers-llm';
import {
  createTestDatabase,
  describeWith,
  type TestDatabase,
  testBackend,
  testRedis,
} from '@mt-paas/test-env';
import { sql } from 'drizzle-orm';
import type { FastifyInstance } from 'fastify';
import { Redis } from 'ioredis';
import { decodeJwt, decodeProtectedHeader } from 'jose';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { buildApp, FIXTURE_MIGRATIONS, seedAdmin } from './__fixtures__/app.js';
import { eventually } from './__fixtures__/market.js';
import { type MarketStandIn, startMarketStandIn } from './__fixtures__/market-stand-in.js';
import { adminQuery, dropTenantDatabases } from './__fixtures__/postgres.js';
import { createServiceFramework, type ServiceFramework } from './index.js';
import { secretBoxOf } from './providers.js';

const SEED = readFileSync(
  fileURLToPath(new URL('../../config/src/__fixtures__/seed-001.yaml', import.meta.url)),
  'utf8',
);
const ENV = {
  MARKETPLACE_API_KEY: 'mk_seed_0123456789abcdef',
  JWT_SECRET: 'seed-jwt-secret-0123456789abcdef0123456789',
  AES_SECRET_KEY: 'seed-aes-key-0123456789abcdef0123',
};

describeWith(['postgres', 'redis'], "seed 001's config through createServiceFramework", () => {
  let database: TestDatabase;
  let market: MarketStandIn;
  let mt: ServiceFramework;
  let app: FastifyInstance;
  let folder: string;
  let databasePrefix: string;
  const redis = testRedis({ label: 'fw_seed' });

  beforeAll(async () => {
    database = await createTestDatabase({ label: 'fw_seed' });
    market = await startMarketStandIn();
    databasePrefix = `mtp_t_${testBackend().runId}_fwseed_`;
    const template = new URL(database.url);
    template.pathname = `/${databasePrefix}TENANT`;
    folder = mkdtempSync(join(tmpdir(), 'mtp-fw-seed-'));
    writeFileSync(join(folder, 'mt-paas.yaml'), SEED);
    // Only where the seed's servers are: the stand-ins of this test.
    writeFileSync(
      join(folder, 'mt-paas.test.yaml'),
      `
service:
  public_url: https://keli.example
marketplace:
  api_url: ${market.url}
database:
  central:
    url: ${database.url}
  tenant:
    url_template: ${template.toString().replace('TENANT', '{tenant_id}')}
  vector:
    url: ${market.origin}
redis:
  url: ${redis.url}
  key_prefix: "${redis.prefix}"
logging:
  activity_log:
    endpoint: ${market.origin}/xapi
`,
    );
    mt = await createServiceFramework({
      configPath: join(folder, 'mt-paas.yaml'),
      environment: 'test',
      env: ENV,
      appRole: 'mtp_fw_app',
      migrationsFolder: FIXTURE_MIGRATIONS,
      hooks: seedAdmin,
    });
    app = await buildApp(mt);
    app.get('/activity', async (req) => {
      mt.logActivity({ verb: 'asked', object: 'ai_tutor', result: { message_length: 12 } });
      return { tenant: req.tenant?.tenantId };
    });
  });

  afterAll(async () => {
    await app?.close();
    await mt?.close();
    await market?.close();
    if (folder !== undefined) rmSync(folder, { recursive: true, force: true });
    if (database === undefined) return;
    await dropTenantDatabases(database.url, databasePrefix);
    await database.drop();
    await redis.flush();
  });

  const create = (tenantId: string, adminEmail: string) =>
    app.inject({
      method: 'POST',
      url: '/api/tenant/create',
      headers: { 'x-api-key': ENV.MARKETPLACE_API_KEY },
      payload: {
        tenant_id: tenantId,
        tenant_name: `University ${tenantId}`,
        admin_email: adminEmail,
        application_id: `app-${tenantId}`,
        application_kind: 'service',
      },
    });

  it('service.*, marketplace.api_url / api_key / heartbeat, logging.level: who the service is and where it reports', async () => {
    expect(mt.logger.level).toBe('info'); // logging.level: "INFO"
    expect(mt.logger.bindings()).toMatchObject({ service: 'keli_tutor', version: '1.0.0' });
    expect(mt.config.service).toMatchObject({ name: 'KELI TUTOR', description: 'AI 기반 학습 튜터' });
    expect(await mt.control.heartbeat?.beat()).toBe(true);
    expect(market.beats[0]).toMatchObject({
      path: '/api/v1/services/keli_tutor/heartbeat',
      headers: expect.objectContaining({ authorization: `Bearer ${ENV.MARKETPLACE_API_KEY}` }),
    });
    // A wrong X-API-Key is refused on the seed's own route and shape.
    const refused = await app.inject({
      method: 'POST',
      url: '/api/tenant/create',
      headers: { 'x-api-key': 'wrong' },
      payload: {},
    });
    expect(refused.statusCode).toBe(401);
    expect(refused.json()).toEqual({ detail: 'Invalid API key' });
  });

  it('isolation.mode DATABASE_PER_TENANT + database.*: each tenant gets its own database from url_template', async () => {
    expect((await create('hallym', 'admin@hallym.ac.kr')).statusCode).toBe(200);
    expect((await create('gwangju', 'admin@gwangju.ac.kr')).statusCode).toBe(200);
    expect((await mt.catalog.directory.get('hallym' as never))?.placement.mode).toBe('database');
    expect(
      await adminQuery(database.url, 'SELECT 1 FROM pg_database WHERE datname = $1', [
        `${databasePrefix}hallym`,
      ]),
    ).toHaveLength(1);
    expect(mt.catalog.driver.pool?.options.max).toBe(10); // database.central.pool_size
    // pool_size_per_tenant: 5 — eight concurrent units of one tenant hold at most five connections to its database.
    const units = Promise.all(
      Array.from({ length: 8 }, () =>
        mt.tenantDb.forTenant('hallym').run((tx) => tx.execute(sql`SELECT pg_sleep(0.4)`)),
      ),
    );
    let most = 0;
    const deadline = Date.now() + 1_500;
    while (Date.now() < deadline) {
      const [row] = await adminQuery<{ count: number }>(
        database.url,
        "SELECT count(*)::int AS count FROM pg_stat_activity WHERE usename = 'mtp_fw_app' AND datname = $1",
        [`${databasePrefix}hallym`],
      );
      most = Math.max(most, row?.count ?? 0);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    await units;
    expect(most).toBe(5);
  });

  it('tenant_identification.methods: header, subdomain, JWT claim and query parameter all find the tenant', async () => {
    const token = await mt.issueToken({ sub: 'u1', tenantId: 'hallym' });
    for (const request of [
      { url: '/users', headers: { 'x-tenant-id': 'hallym' } },
      { url: '/users', headers: { host: 'hallym.keli.k-university.ai' } },
      { url: '/users', headers: { authorization: `Bearer ${token}` } },
      { url: '/users?tenant_id=hallym', headers: {} },
    ]) {
      const response = await app.inject(request);
      expect(response.statusCode, JSON.stringify(request)).toBe(200);
      expect(response.json()).toEqual([{ email: 'admin@hallym.ac.kr', role: 'admin' }]);
    }
  });

  it('auth.jwt.secret / algorithm / expiry_hours: login tokens the pipeline accepts, valid 24 hours', async () => {
    const token = await mt.issueToken({ sub: 'u1', tenantId: 'hallym', roles: ['teacher'] });
    expect(decodeProtectedHeader(token).alg).toBe('HS256');
    const claims = decodeJwt(token);
    expect((claims.exp ?? 0) - (claims.iat ?? 0)).toBe(24 * 3600);
    expect(claims).toMatchObject({ tenant_id: 'hallym', sub: 'u1', roles: ['teacher'] });
  });

  it('auth.marketplace_sso: the callback verifies the market token once and starts a session', async () => {
    const token = await market.loginToken({
      tenantId: 'hallym',
      sub: 'market-user-1',
      audience: 'keli_tutor',
    });
    const login = await app.inject({ url: `/auth/marketplace/callback?token=${token}` });
    expect(login.statusCode).toBe(302);
    expect(login.headers.location).toBe('/?tenant=hallym');
    const cookie = String(login.headers['set-cookie']);
    expect(cookie).toMatch(/^mt_paas_token=[^;]+; Path=\/; HttpOnly; SameSite=Lax; Secure$/);
    // The session token works on the tenant's routes.
    const session = cookie.slice('mt_paas_token='.length, cookie.indexOf(';'));
    expect(
      (await app.inject({ url: '/users', headers: { authorization: `Bearer ${session}` } })).statusCode,
    ).toBe(200);
    // The same market token again is a replay.
    expect((await app.inject({ url: `/auth/marketplace/callback?token=${token}` })).statusCode).toBe(401);
    const fresh = await market.loginToken({
      tenantId: 'hallym',
      sub: 'market-user-2',
      email: 'p@hallym.ac.kr',
      audience: 'keli_tutor',
    });
    await expect(mt.verifySsoToken(fresh)).resolves.toMatchObject({
      tenantId: 'hallym',
      user: { id: 'market-user-2', email: 'p@hallym.ac.kr' },
    });
    const foreign = await market.loginToken({ tenantId: 'hallym', sub: 'x', audience: 'another_service' });
    await expect(mt.verifySsoToken(foreign)).rejects.toMatchObject({ code: 'UNAUTHENTICATED' });
  });

  it('features.*, security.rate_limit, security.cross_tenant_audit', async () => {
    // features.defaults (no subscription sent yet): file_upload on, rag off.
    const feature = async (name: string) =>
      (await app.inject({ url: `/features/${name}`, headers: { 'x-tenant-id': 'hallym' } })).json().enabled;
    expect(await feature('file_upload')).toBe(true);
    expect(await feature('rag')).toBe(false);
    // A limit is applied per minute (the plan's rpm, default_rpm when the plan has none), counted in Redis.
    const response = await app.inject({ url: '/courses', headers: { 'x-tenant-id': 'gwangju' } });
    expect(response.headers['ratelimit-limit']).toBe(String(mt.config.plans.free?.rpm));
    const keys = new Redis(redis.url);
    try {
      expect((await keys.keys(`${redis.prefix}*`)).length).toBeGreaterThan(0);
    } finally {
      keys.disconnect();
    }
    // cross_tenant_audit: true — a gwangju token at hallym is refused and audited.
    const token = await mt.issueToken({ sub: 'intruder', tenantId: 'gwangju' });
    const crossing = await app.inject({
      url: '/courses',
      headers: { 'x-tenant-id': 'hallym', authorization: `Bearer ${token}` },
    });
    expect(crossing.statusCode).toBe(403);
    expect(crossing.json().error.code).toBe('CROSS_TENANT_ACCESS');
    await eventually(
      async () =>
        (
          await adminQuery(
            database.url,
            "SELECT 1 FROM mt_paas.audit_log WHERE type = 'cross_tenant_access_attempt'",
          )
        ).length > 0,
      'the cross-tenant attempt is in the audit log',
    );
  });

  it('marketplace.subscription_check + grace_period_hours: an expired subscription is served 24 h, then refused', async () => {
    const hour = 3_600_000;
    const expire = async (ago: number) => {
      await mt.catalog.tenants.setEntitlements('gwangju', {
        plan: 'free',
        features: {},
        limits: { rpm: null, quotas: {} },
        expiresAt: new Date(Date.now() - ago),
        source: 'test',
      });
      mt.pipeline.directory.invalidate('gwangju' as never);
    };
    await expire(hour);
    const inGrace = await app.inject({ url: '/courses', headers: { 'x-tenant-id': 'gwangju' } });
    expect(inGrace.statusCode).toBe(200);
    expect(inGrace.headers['x-tenant-warning']).toMatch(/expired/);
    await expire(25 * hour);
    const expired = await app.inject({ url: '/courses', headers: { 'x-tenant-id': 'gwangju' } });
    expect(expired.json().error.code).toBe('SUBSCRIPTION_EXPIRED');
  });

  it('custom.llm, custom.rag, database.vector, security.encryption.key', async () => {
    expect(mt.config.custom.rag).toEqual({ chunkSize: 500, overlap: 50 });
    // No platform OpenAI key: the seed's gpt-4 → gpt-3.5-turbo chain is skipped for the local model.
    const plain = await mt.providersFor('hallym');
    expect(plain.skipped.map((entry) => entry.model)).toEqual(['openai:gpt-4', 'openai:gpt-3.5-turbo']);
    expect(plain.models).toEqual(['local:extractive']);
    expect(plain.vectorStore.kind).toBe('qdrant'); // database.vector.type
    // A tenant's own key, encrypted with security.encryption.key, makes gpt-4 usable for that tenant only.
    const box = secretBoxOf(mt.config)!;
    await mt.catalog.tenants.update('hallym', {
      metadata: {
        llm: { api_keys: { openai: encryptTenantApiKey(box, 'hallym' as never, 'openai', 'sk-hallym') } },
      },
    });
    mt.pipeline.directory.invalidate('hallym' as never);
    expect((await mt.providersFor('hallym')).models).toEqual(['openai:gpt-4', 'openai:gpt-3.5-turbo']);
    expect((await mt.providersFor('gwangju')).models).toEqual(['local:extractive']);
  });

  it('logging.activity_log and logging.usage_report reach the LRS and the marketplace; close() drains and ends the pools', async () => {
    expect((await app.inject({ url: '/activity', headers: { 'x-tenant-id': 'hallym' } })).json()).toEqual({
      tenant: 'hallym',
    });
    await app.close();
    await mt.close();
    const statements = market.calls.filter((call) => call.path === '/xapi/statements');
    expect(statements.length).toBeGreaterThan(0);
    expect(JSON.stringify(statements[0]?.body)).toContain('http://adlnet.gov/expapi/verbs/asked');
    expect(market.calls.some((call) => call.path === '/api/v1/services/keli_tutor/usage')).toBe(true);
    expect(mt.catalog.driver.pool?.ended).toBe(true);
    // No connection of the app role is left open on the server (tenant databases included).
    await eventually(
      async () =>
        (
          await adminQuery(
            database.url,
            "SELECT 1 FROM pg_stat_activity WHERE usename = 'mtp_fw_app' AND datname LIKE $1",
            [`${databasePrefix}%`],
          )
        ).length === 0,
      'every tenant database connection is closed',
    );
  });
});
