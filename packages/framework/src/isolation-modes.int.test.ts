/**
 * The framework on real Postgres + Redis in row, schema and database mode: two instances share the
 * catalog and Redis; the marketplace drives the whole lifecycle through signed deliveries.
 */
import type { TenantEvent } from '@mt-paas/context';
import {
  createTestDatabase,
  describeWith,
  type TestDatabase,
  testBackend,
  testRedis,
} from '@mt-paas/test-env';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp, FIXTURE_MIGRATIONS, seedAdmin } from './__fixtures__/app.js';
import { deliver, eventually, provisionData, WEBHOOK_SECRET } from './__fixtures__/market.js';
import { adminQuery, dropTenantDatabases } from './__fixtures__/postgres.js';
import { createServiceFramework, type ServiceFramework } from './index.js';

const MODES = ['row', 'schema', 'database'] as const;

describeWith(['postgres', 'redis'], 'createServiceFramework on Postgres + Redis', () => {
  describe.each(MODES)('%s mode', (mode) => {
    let database: TestDatabase;
    let databasePrefix: string;
    const instances: Array<{ mt: ServiceFramework; app: FastifyInstance }> = [];

    beforeAll(async () => {
      database = await createTestDatabase({ label: `fw_${mode}` });
      const redis = testRedis({ label: `fw_${mode}` });
      databasePrefix = `mtp_t_${testBackend().runId}_fwt${mode[0]}_`;
      const template = new URL(database.url);
      template.pathname = `/${databasePrefix}{tenant_id}`;
      const config = `
service:
  id: fw_int
  public_url: https://tutor.example
marketplace:
  enabled: false
  webhooks:
    secrets: ${WEBHOOK_SECRET}
isolation:
  mode: ${mode}
database:
  central:
    url: ${database.url}
    pool_size: 3
  tenant:
    url_template: ${template.toString().replace('%7Btenant_id%7D', '{tenant_id}')}
    pool_size_per_tenant: 1
    max_connections: 6
redis:
  url: ${redis.url}
  key_prefix: "${redis.prefix}"
plans:
  professional:
    features:
      quiz: true
logging:
  level: silent
`;
      for (let index = 0; index < 2; index++) {
        const mt = await createServiceFramework({
          config,
          env: {},
          appRole: 'mtp_fw_app',
          migrationsFolder: FIXTURE_MIGRATIONS,
          hooks: seedAdmin,
        });
        instances.push({ mt, app: await buildApp(mt) });
      }
    });

    afterAll(async () => {
      for (const { mt, app } of instances) {
        await app.close();
        await mt.close();
      }
      if (database === undefined) return;
      await dropTenantDatabases(database.url, databasePrefix);
      await database.drop();
    });

    it('onboards from the marketplace into the mode, seeds the admin and keeps tenants apart', async () => {
      const [a, b] = instances as [(typeof instances)[0], (typeof instances)[0]];
      const created = await deliver(a.app, 'tenant.provision_requested', provisionData('hallym'));
      expect(created.statusCode).toBe(200);
      expect(
        (await deliver(a.app, 'tenant.provision_requested', provisionData('gwangju', 'free'))).statusCode,
      ).toBe(200);

      const placement = (await a.mt.catalog.directory.get('hallym' as never))?.placement;
      expect(placement?.mode).toBe(mode);
      if (mode === 'schema') {
        const schemas = await adminQuery(
          database.url,
          "SELECT 1 FROM pg_namespace WHERE nspname = 't_hallym'",
        );
        expect(schemas).toHaveLength(1);
      }
      if (mode === 'database') {
        const databases = await adminQuery(database.url, 'SELECT 1 FROM pg_database WHERE datname = $1', [
          `${databasePrefix}hallym`,
        ]);
        expect(databases).toHaveLength(1);
      }

      const post = await a.app.inject({
        method: 'POST',
        url: '/courses',
        headers: { 'x-tenant-id': 'hallym' },
        payload: { title: 'Statistics', code: 'ST101' },
      });
      expect(post.statusCode).toBe(201);
      // The other instance reads the same storage; the other tenant sees nothing of it.
      expect((await b.app.inject({ url: '/courses', headers: { 'x-tenant-id': 'hallym' } })).json()).toEqual([
        { title: 'Statistics' },
      ]);
      expect((await b.app.inject({ url: '/courses', headers: { 'x-tenant-id': 'gwangju' } })).json()).toEqual(
        [],
      );
      expect((await b.app.inject({ url: '/users', headers: { 'x-tenant-id': 'gwangju' } })).json()).toEqual([
        { email: 'admin@gwangju.ac.kr', role: 'admin' },
      ]);
    });

    it('blocks on every instance only after the delivery is committed, and unblocks', async () => {
      const [a, b] = instances as [(typeof instances)[0], (typeof instances)[0]];
      // Warm B's cache, so only the event can tell it.
      expect((await b.app.inject({ url: '/courses', headers: { 'x-tenant-id': 'hallym' } })).statusCode).toBe(
        200,
      );
      const seen: Array<{
        event: TenantEvent;
        receiptCommitted: boolean;
        statusCommitted: string | undefined;
      }> = [];
      const unsubscribe = await b.mt.events.subscribe(async (event) => {
        if (event.type !== 'tenant.blocked') return;
        // Read from outside every transaction: what another instance would see when it hears the event.
        const receipts = await adminQuery(
          database.url,
          "SELECT 1 FROM mt_paas.webhook_receipts WHERE tenant_id = 'hallym' AND type = 'tenant.blocked' AND result = 'processed'",
        );
        const status = await adminQuery<{ status: string }>(
          database.url,
          "SELECT status FROM mt_paas.tenants WHERE id = 'hallym'",
        );
        seen.push({ event, receiptCommitted: receipts.length === 1, statusCommitted: status[0]?.status });
      });
      const blocked = await deliver(a.app, 'tenant.blocked', {
        tenant_id: 'hallym',
        reason: 'subscription_expired',
        message: '구독이 만료되었습니다.',
      });
      expect(blocked.statusCode).toBe(200);
      await eventually(async () => seen.length > 0, 'tenant.blocked reached instance B');
      expect(seen[0]).toMatchObject({ receiptCommitted: true, statusCommitted: 'blocked' });
      await unsubscribe();

      await eventually(
        async () =>
          (await b.app.inject({ url: '/courses', headers: { 'x-tenant-id': 'hallym' } })).statusCode === 403,
        'instance B refuses the blocked tenant',
      );
      const refused = await b.app.inject({ url: '/courses', headers: { 'x-tenant-id': 'hallym' } });
      expect(refused.json().error).toMatchObject({
        code: 'TENANT_BLOCKED',
        message: '구독이 만료되었습니다.',
      });
      // The other tenant is untouched.
      expect(
        (await b.app.inject({ url: '/courses', headers: { 'x-tenant-id': 'gwangju' } })).statusCode,
      ).toBe(200);

      expect((await deliver(a.app, 'tenant.unblocked', { tenant_id: 'hallym' })).statusCode).toBe(200);
      await eventually(
        async () =>
          (await b.app.inject({ url: '/courses', headers: { 'x-tenant-id': 'hallym' } })).statusCode === 200,
        'instance B serves the unblocked tenant',
      );
    });

    it('applies a downgrade, a cancellation and the admin user deletion', async () => {
      const [a, b] = instances as [(typeof instances)[0], (typeof instances)[0]];
      const quiz = () => b.app.inject({ url: '/features/quiz', headers: { 'x-tenant-id': 'hallym' } });
      expect((await quiz()).json()).toEqual({ enabled: true });
      const downgraded = await deliver(a.app, 'subscription.updated', {
        tenant_id: 'hallym',
        plan: 'starter',
        features: { ai_chat: true, quiz: false },
        limits: { rpm: 100 },
      });
      expect(downgraded.statusCode).toBe(200);
      await eventually(async () => (await quiz()).json().enabled === false, 'instance B sees the downgrade');

      const cancelled = await deliver(a.app, 'service.cancelled', { application_id: 'app-gwangju' });
      expect(cancelled.statusCode).toBe(200);
      expect((await a.mt.catalog.directory.get('gwangju' as never))?.status).toBe('suspended');
      await eventually(
        async () =>
          (await b.app.inject({ url: '/courses', headers: { 'x-tenant-id': 'gwangju' } })).json().error
            ?.code === 'TENANT_SUSPENDED',
        'instance B refuses the suspended tenant',
      );

      const deleted = await deliver(a.app, 'user.deleted', {
        user_id: 7,
        email: 'ADMIN@hallym.ac.kr',
        deleted_at: new Date().toISOString(),
      });
      expect(deleted.statusCode).toBe(200);
      expect((await a.mt.catalog.directory.get('hallym' as never))?.status).toBe('deleted');
      await eventually(
        async () =>
          (await b.app.inject({ url: '/courses', headers: { 'x-tenant-id': 'hallym' } })).json().error
            ?.code === 'TENANT_DELETED',
        'instance B refuses the deleted tenant',
      );
    });
  });
});
