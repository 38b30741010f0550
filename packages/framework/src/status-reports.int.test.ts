/**
 * Tenant status reports on Postgres with two instances sharing the catalog and Redis: every transition is
 * reported once although both instances see its event and flush, marketplace deliveries included; with
 * the market down the reports wait in the outbox and arrive when it is back.
 */
import { createProvisioner } from '@mt-paas/provisioning';
import { describeWith, testRedis, useTestDatabase } from '@mt-paas/test-env';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { buildApp, FIXTURE_MIGRATIONS, seedAdmin } from './__fixtures__/app.js';
import { deliver, eventually, provisionData, WEBHOOK_SECRET } from './__fixtures__/market.js';
import { type MarketStandIn, startMarketStandIn } from './__fixtures__/market-stand-in.js';
import { createServiceFramework, type ServiceFramework } from './index.js';

interface StatusBody {
  tenant_id: string;
  status: string;
}

describeWith(['postgres', 'redis'], 'tenant status reports (Postgres, two instances)', () => {
  const database = useTestDatabase({ label: 'fw_status' });
  const redis = testRedis({ label: 'fw_status' });
  let market: MarketStandIn;
  let first: ServiceFramework;
  let second: ServiceFramework;
  let app: FastifyInstance;

  const open = () =>
    createServiceFramework({
      config: `
service:
  id: fw_status
  public_url: https://tutor.example
marketplace:
  api_url: ${market.url}
  api_key: mk_status_0123456789
  webhooks:
    secrets: ${WEBHOOK_SECRET}
database:
  central:
    url: ${database.url}
    pool_size: 3
redis:
  url: ${redis.url}
logging:
  level: silent
`,
      env: {},
      appRole: 'mtp_fw_app',
      migrationsFolder: FIXTURE_MIGRATIONS,
      hooks: seedAdmin,
      actionSweepIntervalMs: 300,
    });

  beforeAll(async () => {
    market = await startMarketStandIn();
    first = await open();
    second = await open();
    app = await buildApp(first);
  });
  afterAll(async () => {
    await app?.close();
    await first?.close();
    await second?.close();
    await market?.close();
  });

  const reported = (tenantId: string) =>
    market.statusReports
      .map((call) => call.body as StatusBody)
      .filter((body) => body.tenant_id === tenantId)
      .map((body) => body.status);
  const arrived = (tenantId: string, count: number) =>
    eventually(
      async () => reported(tenantId).length >= count,
      `${count} reports of ${tenantId} (so far ${reported(tenantId).join(' → ')})`,
      60_000,
    );

  it('marketplace deliveries: approve → active, cancel → suspended, user deleted → deleted, each once', async () => {
    const tenantId = 'st_market';
    expect((await deliver(app, 'tenant.provision_requested', provisionData(tenantId))).statusCode).toBe(200);
    await arrived(tenantId, 1);
    expect(
      (
        await deliver(app, 'service.cancelled', {
          application_id: `app-${tenantId}`,
          tenant_id: tenantId,
          reason: 'service_cancelled',
        })
      ).statusCode,
    ).toBe(200);
    await arrived(tenantId, 2);
    expect(
      (
        await deliver(app, 'user.deleted', {
          user_id: 7,
          email: `admin@${tenantId}.ac.kr`,
          deleted_at: new Date().toISOString(),
        })
      ).statusCode,
    ).toBe(200);
    await arrived(tenantId, 3);
    // Both instances flushed on every event and sweep: still one report per transition.
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    expect(reported(tenantId)).toEqual(['active', 'suspended', 'deleted']);
  });

  it('a transition by another process (the CLI) is reported once by the instances', async () => {
    const tenantId = 'st_cli';
    await first.onboard({ id: tenantId, name: 'Status CLI' });
    await arrived(tenantId, 1);
    const cli = createProvisioner({
      catalog: second.catalog,
      tenantDbs: { [second.tenantDb.mode]: second.tenantDb },
    });
    await cli.suspend(tenantId);
    await cli.resume(tenantId);
    await arrived(tenantId, 3);
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    expect(reported(tenantId)).toEqual(['active', 'suspended', 'active']);
  });

  it('with the market down, the reports arrive once it is back', async () => {
    const tenantId = 'st_down';
    market.down = true;
    const refusedBefore = market.refused;
    await second.onboard({ id: tenantId, name: 'Status Down' });
    await second.provisioner.suspend(tenantId);
    await first.provisioner.offboard(tenantId);
    await eventually(async () => market.refused > refusedBefore, 'the market was tried while down');
    expect(reported(tenantId)).toEqual([]);
    market.down = false;
    await arrived(tenantId, 3);
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    expect([...reported(tenantId)].sort()).toEqual(['active', 'deleted', 'suspended']);
  });
});
