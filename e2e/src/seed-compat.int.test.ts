import { describeWithPostgres, type TestRedis, testRedis, useTestDatabase } from '@mt-paas/test-env';
import type { RunningProcess } from '@mt-paas/test-env/processes';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { newServiceSecrets, startMarketSim, startTutor, tutorEnv } from './stack.js';

/**
 * Seed 002 §7 ("테스트 방법") against the reference tutor as a real process, with the seed's exact
 * request shapes: a tenant created with `X-API-Key` (§7.1.2 and the pytest of §7.3.1),
 * `/api/health` and `/api/users` with `X-Tenant-ID` (§7.1.3), and the user-deleted webhook with
 * `X-Webhook-Secret` (§7.2.1) — the seed's legacy wire, in the seed's own isolation mode (schema).
 */
describeWithPostgres('seed 002 §7 against the reference tutor (legacy wire, real process)', () => {
  const database = useTestDatabase({ label: 'seed_tutor' });
  const secrets = newServiceSecrets('keli_tutor');
  let market: RunningProcess | undefined;
  let tutor: RunningProcess | undefined;
  let base = '';
  let redis: TestRedis;

  beforeAll(async () => {
    redis = testRedis();
    market = await startMarketSim({ MARKET_SIM_DATA_DIR: 'memory' });
    tutor = await startTutor(
      tutorEnv(market, secrets, {
        DATABASE_URL: database.url,
        REDIS_URL: redis.url,
        REDIS_KEY_PREFIX: redis.prefix,
        ISOLATION_MODE: 'schema',
      }),
    );
    base = `${tutor.url}/api`;
  }, 180_000);

  afterAll(async () => {
    await tutor?.stop();
    await market?.stop();
    await redis?.flush();
  });

  const post = (path: string, body: unknown, headers: Record<string, string>) =>
    fetch(`${base}${path}`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', ...headers },
      body: JSON.stringify(body),
    });

  it('§7.1.2 creates a tenant with X-API-Key, §7.1.3 calls /api/users with X-Tenant-ID, §7.2.1 deletes it by webhook', async () => {
    // §7.1.2 — the exact curl body
    const created = await post(
      '/tenant/create',
      {
        tenant_id: 'test_univ',
        tenant_name: '테스트대학교',
        admin_email: 'admin@test.ac.kr',
        admin_name: '관리자',
        application_id: 1,
        application_kind: 'service',
      },
      { 'X-API-Key': secrets.apiKey },
    );
    expect(created.status).toBe(200);
    const createdBody = await created.json();
    expect(createdBody).toMatchObject({ success: true, tenant_id: 'test_univ' });
    expect(createdBody.access_url).toContain('test_univ');

    // the same request without the key, or with another one, creates nothing
    for (const headers of [{}, { 'X-API-Key': 'your_api_key' }] as Array<Record<string, string>>) {
      const refused = await post(
        '/tenant/create',
        {
          tenant_id: 'intruder',
          tenant_name: 'x',
          admin_email: 'x@x.kr',
          application_id: 2,
          application_kind: 'service',
        },
        headers,
      );
      expect(refused.status).toBe(401);
    }

    // §7.1.3 — GET /api/users with X-Tenant-ID. The seed's route answers anyone who names a tenant; the
    // tutor asks who is asking: the seed's exact request is refused, and answered with the market's key
    const bare = await fetch(`${base}/users`, { headers: { 'X-Tenant-ID': 'test_univ' } });
    expect(bare.status).toBe(401);
    expect((await bare.json()).error.code).toBe('UNAUTHENTICATED');
    const users = await fetch(`${base}/users`, {
      headers: { 'X-Tenant-ID': 'test_univ', 'X-API-Key': secrets.apiKey },
    });
    expect(users.status).toBe(200);
    const listed = await users.json();
    expect(listed).toMatchObject({ tenant_id: 'test_univ', count: 1 });
    expect(listed.users).toEqual([expect.objectContaining({ email: 'admin@test.ac.kr', role: 'admin' })]);

    // §7.2.1 — the exact webhook; a wrong secret changes nothing
    const webhook = {
      event: 'user.deleted',
      user_id: 123,
      email: 'admin@test.ac.kr',
      university_name: '테스트대학교',
      deleted_at: '2026-01-08T10:00:00',
    };
    const wrong = await post('/tenant/webhook/user-deleted', webhook, {
      'X-Webhook-Secret': 'webhook_secret_12345',
    });
    expect(wrong.status).toBe(401);
    const deleted = await post('/tenant/webhook/user-deleted', webhook, {
      'X-Webhook-Secret': secrets.legacySecret,
    });
    expect(deleted.status).toBe(200);
    expect(await deleted.json()).toMatchObject({ success: true, deleted_tenants: ['test_univ'] });
    const after = await fetch(`${base}/users`, {
      headers: { 'X-Tenant-ID': 'test_univ', 'X-API-Key': secrets.apiKey },
    });
    expect(after.status).toBe(403);
    expect((await after.json()).error.code).toBe('TENANT_DELETED');
  });

  it('§7.3.1 the pytest lifecycle: create (demo) → /api/health with X-Tenant-ID → user-deleted webhook', async () => {
    const created = await post(
      '/tenant/create',
      {
        tenant_id: 'e2e_test',
        tenant_name: 'E2E 테스트',
        admin_email: 'e2e@test.com',
        application_id: 999,
        application_kind: 'demo',
      },
      { 'X-API-Key': secrets.apiKey },
    );
    expect(created.status).toBe(200);
    expect((await created.json()).success).toBe(true);

    const health = await fetch(`${base}/health`, { headers: { 'X-Tenant-ID': 'e2e_test' } });
    expect(health.status).toBe(200);

    const deleted = await post(
      '/tenant/webhook/user-deleted',
      { event: 'user.deleted', user_id: 999, email: 'e2e@test.com', deleted_at: '2026-01-08T10:00:00' },
      { 'X-Webhook-Secret': secrets.legacySecret },
    );
    expect(deleted.status).toBe(200);
    expect((await deleted.json()).deleted_tenants).toContain('e2e_test');
  });
});
