/**
 * A small service built on `@mt-paas/marketplace` — its Fastify adapter, catalog receipts, the
 * transactional outbox and its dispatcher, heartbeats — run as a child process by the simulator's
 * integration test (`tsx src/__fixtures__/test-service.ts`). It prints `listening on <url>`.
 *
 * Environment: SERVICE_ID, MARKET_URL, WEBHOOK_SECRET (whsec_…), API_KEY, LEGACY_SECRET (optional),
 * DATABASE_URL (optional; else the embedded PGlite catalog in memory), HEARTBEAT_MS (default 500).
 */
import type { AddressInfo } from 'node:net';
import { createCatalog } from '@mt-paas/db';
import {
  createCatalogReceiptStore,
  createCatalogReplayStore,
  createMarketplaceClient,
  createMarketplaceReceiver,
  createMarketplaceSso,
  createOutbox,
  createOutboxDispatcher,
  tenantStatusMessage,
  usageMessage,
} from '@mt-paas/marketplace';
import { marketplaceFastify } from '@mt-paas/marketplace/fastify';
import { eq } from 'drizzle-orm';
import Fastify from 'fastify';

function env(name: string): string {
  const value = process.env[name];
  if (value === undefined || value === '') throw new Error(`test-service: ${name} is required`);
  return value;
}

const serviceId = env('SERVICE_ID');
const marketUrl = env('MARKET_URL');
const catalog = await createCatalog(
  process.env.DATABASE_URL ? { connectionString: process.env.DATABASE_URL } : { dataDir: 'memory' },
);
await catalog.migrate();
const outbox = createOutbox(catalog);
const db = catalog.driver.db;
const { tenants } = catalog.tables;
const logins: Array<{ tenantId: string; user: unknown }> = [];

const receiver = createMarketplaceReceiver({
  serviceId,
  secrets: [env('WEBHOOK_SECRET')],
  apiKeys: [env('API_KEY')],
  ...(process.env.LEGACY_SECRET ? { legacySecret: process.env.LEGACY_SECRET } : {}),
  receipts: createCatalogReceiptStore(catalog),
  sso: createMarketplaceSso({
    jwks: `${marketUrl}/.well-known/jwks.json`,
    issuer: marketUrl,
    audience: serviceId,
    replayStore: createCatalogReplayStore(catalog),
  }),
  handlers: {
    async onProvisionRequested(data, { transaction }) {
      await catalog.tenants.upsert({
        id: data.tenantId,
        name: data.tenantName,
        status: 'active',
        adminEmail: data.adminEmail,
        applicationId: data.applicationId,
        applicationKind: data.applicationKind,
        ...(data.plan === undefined ? {} : { plan: data.plan }),
      });
      await outbox.enqueue([tenantStatusMessage({ tenantId: data.tenantId, status: 'active' })], {
        executor: transaction,
      });
      return { accessUrl: `http://service.test/?tenant=${data.tenantId}` };
    },
    async onSubscriptionUpdated(data) {
      await catalog.tenants.setEntitlements(data.tenantId, {
        plan: data.plan,
        features: data.features,
        limits: data.limits,
        expiresAt: data.expiresAt,
        source: 'marketplace',
      });
    },
    async onBlocked(data, { transaction }) {
      await catalog.tenants.setStatus(data.tenantId, 'blocked', { reason: data.reason });
      await outbox.enqueue(
        [tenantStatusMessage({ tenantId: data.tenantId, status: 'blocked', reason: data.reason })],
        { executor: transaction },
      );
    },
    async onUnblocked(data, { transaction }) {
      await catalog.tenants.setStatus(data.tenantId, 'active');
      await outbox.enqueue([tenantStatusMessage({ tenantId: data.tenantId, status: 'active' })], {
        executor: transaction,
      });
    },
    async onServiceCancelled(data) {
      const rows = await db.select().from(tenants).where(eq(tenants.applicationId, data.applicationId));
      for (const row of rows)
        await catalog.tenants.setStatus(row.id, 'suspended', { reason: 'service_cancelled' });
    },
    async onUserDeleted(data) {
      const rows = await db.select().from(tenants).where(eq(tenants.adminEmail, data.email));
      for (const row of rows) await catalog.tenants.setStatus(row.id, 'deleted', { reason: 'user_deleted' });
      return { deletedTenants: rows.map((row) => row.id) };
    },
    async onSsoLogin(login) {
      logins.push({ tenantId: login.tenantId, user: login.user });
      return { redirectTo: `/?tenant=${login.tenantId}` };
    },
  },
});

const client = createMarketplaceClient({
  apiUrl: `${marketUrl}/api/v1`,
  apiKey: env('API_KEY'),
  serviceId,
  retries: 0,
});
const dispatcher = createOutboxDispatcher({
  outbox,
  client,
  pollIntervalMs: 100,
  retryBaseSeconds: 0.2,
  maxRetryDelaySeconds: 1,
});

const app = Fastify({ logger: false });
await app.register(marketplaceFastify, { receiver });
// Test hooks: what the test asks the service to do or show.
app.post('/test/usage', async (request) => {
  const body = request.body as { tenant_id: string; meter: string; quantity: number; key: string };
  const record = {
    tenantId: body.tenant_id,
    meter: body.meter,
    quantity: body.quantity,
    at: new Date(),
    idempotencyKey: body.key,
  };
  await outbox.enqueue([usageMessage(record as Parameters<typeof usageMessage>[0])]);
  return { queued: true };
});
app.get('/test/tenants', async () => ({
  tenants: (await db.select().from(tenants)).map((row) => ({
    id: row.id,
    status: row.status,
    plan: row.plan,
    adminEmail: row.adminEmail,
    applicationId: row.applicationId,
  })),
}));
app.get('/test/outbox', async () => outbox.stats());
app.get('/test/logins', async () => ({ logins }));

await app.listen({ port: Number(process.env.PORT ?? 0), host: '127.0.0.1' });
dispatcher.start();
const heartbeat = setInterval(
  async () => {
    try {
      const rows = await db.select({ id: tenants.id }).from(tenants).where(eq(tenants.status, 'active'));
      await client.heartbeat({
        status: 'healthy',
        activeTenants: rows.map((row) => row.id),
        metrics: { requestsPerMinute: 1 },
      });
    } catch {
      // the next beat replaces a lost one
    }
  },
  Number(process.env.HEARTBEAT_MS ?? 500),
);
console.log(`listening on http://127.0.0.1:${(app.server.address() as AddressInfo).port}`);

const stop = async () => {
  clearInterval(heartbeat);
  await dispatcher.stop();
  await app.close();
  await catalog.close();
  process.exit(0);
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
