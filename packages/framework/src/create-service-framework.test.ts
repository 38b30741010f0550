import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runWithTenant } from '@mt-paas/context';
import { afterEach, describe, expect, it } from 'vitest';
import { buildApp, FIXTURE_MIGRATIONS, seedAdmin, users } from './__fixtures__/app.js';
import { eventually } from './__fixtures__/market.js';
import { createServiceFramework, type ServiceFramework } from './index.js';

const CONFIG = `
service:
  id: fw_test
  public_url: https://tutor.example
marketplace:
  enabled: false
  api_key: market-key-0123456789
logging:
  level: silent
plans:
  professional:
    features:
      quiz: true
tenant_identification:
  methods:
    - type: header
      name: X-Tenant-ID
`;

const open: ServiceFramework[] = [];
afterEach(async () => {
  for (const mt of open.splice(0)) await mt.close();
});

async function framework(): Promise<ServiceFramework> {
  const mt = await createServiceFramework({
    config: CONFIG,
    env: {},
    dataDir: 'memory',
    migrationsFolder: FIXTURE_MIGRATIONS,
    hooks: seedAdmin,
  });
  open.push(mt);
  return mt;
}

function provision(tenantId: string, plan?: string) {
  return {
    method: 'POST' as const,
    url: '/api/tenant/create',
    headers: { 'x-api-key': 'market-key-0123456789', 'content-type': 'application/json' },
    payload: {
      tenant_id: tenantId,
      tenant_name: `University ${tenantId}`,
      admin_email: `admin@${tenantId}.ac.kr`,
      application_id: `app-${tenantId}`,
      application_kind: 'service',
      ...(plan === undefined ? {} : { plan }),
    },
  };
}

describe('createServiceFramework on embedded defaults (PGlite, row mode, in-process limits)', () => {
  it('onboards a tenant from the marketplace, seeds its admin, and scopes req.tenantDb to the tenant', async () => {
    const mt = await framework();
    const app = await buildApp(mt);

    const created = await app.inject(provision('hallym', 'professional'));
    expect(created.statusCode).toBe(200);
    expect(created.json()).toMatchObject({
      success: true,
      tenant_id: 'hallym',
      access_url: 'https://tutor.example/?tenant=hallym',
    });
    expect((await app.inject(provision('gwangju'))).statusCode).toBe(200);
    expect((await mt.catalog.directory.get('hallym' as never))?.status).toBe('active');

    // The app's afterOnboard hook seeded the market's admin email as the tenant's admin.
    const admins = await mt.tenantDb
      .forTenant('hallym')
      .run((tx) => tx.select({ email: users.email, role: users.role }).from(users));
    expect(admins).toEqual([{ email: 'admin@hallym.ac.kr', role: 'admin' }]);

    const post = await app.inject({
      method: 'POST',
      url: '/courses',
      headers: { 'x-tenant-id': 'hallym' },
      payload: { title: 'Statistics', code: 'ST101' },
    });
    expect(post.statusCode).toBe(201);
    expect((await app.inject({ url: '/courses', headers: { 'x-tenant-id': 'hallym' } })).json()).toEqual([
      { title: 'Statistics' },
    ]);
    // The other tenant sees none of it, and only its own admin.
    expect((await app.inject({ url: '/courses', headers: { 'x-tenant-id': 'gwangju' } })).json()).toEqual([]);
    expect((await app.inject({ url: '/users', headers: { 'x-tenant-id': 'gwangju' } })).json()).toEqual([
      { email: 'admin@gwangju.ac.kr', role: 'admin' },
    ]);

    // hasFeature reads the effective entitlements (professional has quiz, free does not).
    expect(
      (await app.inject({ url: '/features/quiz', headers: { 'x-tenant-id': 'hallym' } })).json(),
    ).toEqual({
      enabled: true,
    });
    expect(
      (await app.inject({ url: '/features/quiz', headers: { 'x-tenant-id': 'gwangju' } })).json(),
    ).toEqual({
      enabled: false,
    });

    // A route without a tenant cannot reach tenant storage.
    const open = await app.inject({ url: '/open' });
    expect(open.statusCode).toBe(500);
    expect(open.json().error.code).toBe('TENANT_CONTEXT_MISSING');

    // An unknown tenant is refused before any handler runs.
    expect((await app.inject({ url: '/courses', headers: { 'x-tenant-id': 'nobody' } })).statusCode).toBe(
      404,
    );
    await app.close();
  });

  it('gives each tenant its own providers and vector namespace', async () => {
    const mt = await framework();
    await mt.onboard({ id: 'hallym', name: 'Hallym' });
    await mt.onboard({ id: 'gwangju', name: 'Gwangju' });
    const hallym = await mt.providersFor('hallym');
    const gwangju = await mt.providersFor('gwangju');
    expect(hallym.models).toEqual(['local:extractive']);
    const { embeddings } = await hallym.embeddingModel.embed(['row level security']);
    await hallym.vectorStore.upsert([{ id: 'doc1', vector: embeddings[0]!, metadata: { title: 'RLS' } }]);
    expect(await hallym.vectorStore.count()).toBe(1);
    expect(await gwangju.vectorStore.count()).toBe(0);
    const answer = await runWithTenant({ tenantId: 'hallym' }, () =>
      hallym.languageModel.generate({
        system: 'Row level security isolates tenants.',
        prompt: 'What isolates tenants?',
      }),
    );
    expect(answer.text.length).toBeGreaterThan(0);
  });

  it('a failed onboarding leaves the delivery retryable: the retry with the same id onboards', async () => {
    let attempts = 0;
    const mt = await createServiceFramework({
      config: CONFIG,
      env: {},
      dataDir: 'memory',
      migrationsFolder: FIXTURE_MIGRATIONS,
      hooks: {
        afterOnboard: async (context) => {
          attempts += 1;
          if (attempts === 1) throw new Error('the mail server is down');
          await seedAdmin.afterOnboard?.(context);
        },
      },
    });
    open.push(mt);
    const app = await buildApp(mt);
    const delivery = provision('retried');
    const withId = { ...delivery, headers: { ...delivery.headers, 'idempotency-key': 'delivery-1' } };
    const failed = await app.inject(withId);
    expect(failed.statusCode).toBe(500);
    expect((await mt.catalog.directory.get('retried' as never))?.status).toBe('provisioning');
    const retried = await app.inject(withId);
    expect(retried.statusCode).toBe(200);
    expect(retried.headers['x-mt-paas-receipt']).not.toBe('duplicate');
    expect((await mt.catalog.directory.get('retried' as never))?.status).toBe('active');
    expect((await app.inject({ url: '/users', headers: { 'x-tenant-id': 'retried' } })).json()).toEqual([
      { email: 'admin@retried.ac.kr', role: 'admin' },
    ]);
    // Now processed: the same id again is answered from the receipt, without onboarding again.
    const duplicate = await app.inject(withId);
    expect(duplicate.statusCode).toBe(200);
    expect(duplicate.headers['x-mt-paas-receipt']).toBe('duplicate');
    expect(attempts).toBe(2);
    await app.close();
  });

  it('quota thresholds and refusals are audited (the refusal as high, which control forwards as an alert)', async () => {
    const mt = await createServiceFramework({
      config: CONFIG.replace(
        'plans:\n',
        'plans:\n  free:\n    quotas:\n      api_requests:\n        limit: 5\n        period: monthly\n        enforcement: block\n',
      ),
      env: {},
      dataDir: 'memory',
      migrationsFolder: FIXTURE_MIGRATIONS,
    });
    open.push(mt);
    const app = await buildApp(mt);
    await mt.onboard({ id: 'metered', name: 'Metered', plan: 'free' });
    const statuses: number[] = [];
    for (let index = 0; index < 6; index++) {
      statuses.push(
        (await app.inject({ url: '/courses', headers: { 'x-tenant-id': 'metered' } })).statusCode,
      );
    }
    expect(statuses).toEqual([200, 200, 200, 200, 200, 429]);
    const { rows } = await mt.catalog.driver.query<{ type: string; severity: string }>(
      `SELECT type, severity FROM mt_paas.audit_log WHERE tenant_id = 'metered' AND type LIKE 'quota%' ORDER BY id`,
    );
    expect(rows).toContainEqual({ type: 'quota_threshold', severity: 'medium' });
    expect(rows).toContainEqual({ type: 'quota_exceeded', severity: 'high' });
    await app.close();
  });

  it('a tenant left provisioning by a process that died is onboarded at the next start', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'mtp-fw-resume-'));
    try {
      const first = await createServiceFramework({
        config: CONFIG,
        env: {},
        dataDir,
        migrationsFolder: FIXTURE_MIGRATIONS,
      });
      // What a provision request's receipt transaction leaves when the process dies before onboarding.
      await first.catalog.tenants.upsert({
        id: 'crashed',
        name: 'Crashed University',
        status: 'provisioning',
        adminEmail: 'admin@crashed.ac.kr',
        placement: { mode: 'row' },
      });
      await first.close();

      const second = await createServiceFramework({
        config: CONFIG,
        env: {},
        dataDir,
        migrationsFolder: FIXTURE_MIGRATIONS,
        hooks: seedAdmin,
      });
      open.push(second);
      await eventually(
        async () => (await second.catalog.directory.get('crashed' as never))?.status === 'active',
        'the interrupted onboarding completes',
      );
      const admins = await second.tenantDb
        .forTenant('crashed')
        .run((tx) => tx.select({ email: users.email, role: users.role }).from(users));
      expect(admins).toEqual([{ email: 'admin@crashed.ac.kr', role: 'admin' }]);
      await second.close();
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  it('close() is idempotent', async () => {
    const mt = await framework();
    await mt.close();
    await mt.close();
  });
});
