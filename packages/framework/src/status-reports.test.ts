/**
 * Every tenant status change the framework drives or observes reaches the marketplace once, through the
 * outbox: onboarding, suspend / resume, offboard / restore, purge, the kill switch (reported by control,
 * not again here), and a transition made by another process (the CLI) that publishes no event.
 */
import { createProvisioner } from '@mt-paas/provisioning';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FIXTURE_MIGRATIONS } from './__fixtures__/app.js';
import { eventually } from './__fixtures__/market.js';
import { type MarketStandIn, startMarketStandIn } from './__fixtures__/market-stand-in.js';
import { createServiceFramework, type ServiceFramework } from './index.js';

interface StatusBody {
  tenant_id: string;
  status: string;
  reason: string | null;
}

describe('tenant status reports', () => {
  let market: MarketStandIn;
  let mt: ServiceFramework;

  beforeEach(async () => {
    market = await startMarketStandIn();
    mt = await createServiceFramework({
      config: `
service:
  id: fw_status
marketplace:
  api_url: ${market.url}
  api_key: mk_status_0123456789
logging:
  level: silent
`,
      env: {},
      dataDir: 'memory',
      migrationsFolder: FIXTURE_MIGRATIONS,
      actionSweepIntervalMs: 200,
    });
  });
  afterEach(async () => {
    await mt.close();
    await market.close();
  });

  const reported = (tenantId: string) =>
    market.statusReports
      .map((call) => call.body as StatusBody)
      .filter((body) => body.tenant_id === tenantId)
      .map((body) => body.status);
  const arrived = (tenantId: string, statuses: string[]) =>
    eventually(
      async () => reported(tenantId).length >= statuses.length,
      `${tenantId} reported ${statuses.join(' → ')} (so far ${reported(tenantId).join(' → ')})`,
      30_000,
    );

  it('reports each lifecycle transition once, in order, and the kill switch once', async () => {
    await mt.onboard({ id: 'st_one', name: 'Status One' });
    await arrived('st_one', ['active']);
    await mt.provisioner.suspend('st_one', { reason: 'service_cancelled' });
    await arrived('st_one', ['active', 'suspended']);
    await mt.provisioner.suspend('st_one'); // a no-op transition reports nothing
    await mt.provisioner.resume('st_one');
    await arrived('st_one', ['active', 'suspended', 'active']);
    await mt.control.block('st_one', { reason: 'policy_violation' });
    await mt.control.unblock('st_one');
    await arrived('st_one', ['active', 'suspended', 'active', 'blocked', 'active']);
    await mt.provisioner.offboard('st_one', { reason: 'user_deleted' });
    await arrived('st_one', ['active', 'suspended', 'active', 'blocked', 'active', 'deleted']);
    await mt.provisioner.restore('st_one');
    await mt.provisioner.offboard('st_one');
    await mt.provisioner.purge('st_one', { force: true, exportTo: false });
    const all = [
      'active',
      'suspended',
      'active',
      'blocked',
      'active',
      'deleted',
      'active',
      'deleted',
      'purged',
    ];
    await arrived('st_one', all);
    // A last sweep and the close drain add nothing.
    await mt.close();
    expect(reported('st_one')).toEqual(all);
    const bodies = market.statusReports.map((call) => call.body as StatusBody);
    expect(bodies.find((body) => body.status === 'suspended')?.reason).toBe('service_cancelled');
    expect(bodies.find((body) => body.status === 'deleted')?.reason).toBe('user_deleted');
    const keys = market.statusReports.map((call) => call.headers['idempotency-key']);
    expect(new Set(keys).size).toBe(keys.length);
  });

  it('reports a transition another process made without an event (the CLI), from the sweep', async () => {
    await mt.onboard({ id: 'st_cli', name: 'Status CLI' });
    await arrived('st_cli', ['active']);
    // Another provisioner on the same catalog with no event bus: only its job row tells.
    const cli = createProvisioner({ catalog: mt.catalog, tenantDbs: { [mt.tenantDb.mode]: mt.tenantDb } });
    await cli.suspend('st_cli', { reason: 'operator' });
    await arrived('st_cli', ['active', 'suspended']);
    await cli.block('st_cli', { reason: 'abuse' });
    await arrived('st_cli', ['active', 'suspended', 'blocked']);
    await mt.close();
    expect(reported('st_cli')).toEqual(['active', 'suspended', 'blocked']);
  });

  it('with the market down, the reports wait in the outbox and arrive once it is back', async () => {
    market.down = true;
    await mt.onboard({ id: 'st_down', name: 'Status Down' });
    await mt.provisioner.suspend('st_down');
    await mt.provisioner.offboard('st_down');
    await eventually(async () => market.refused > 0, 'the dispatcher tried the market while it was down');
    expect(reported('st_down')).toEqual([]);
    expect((await mt.outbox.stats()).pending).toBeGreaterThanOrEqual(3);
    market.down = false;
    await eventually(
      async () => reported('st_down').length >= 3,
      `the reports arrived after the market came back (so far ${reported('st_down').join(', ')})`,
      60_000,
    );
    await mt.close();
    expect([...reported('st_down')].sort()).toEqual(['active', 'deleted', 'suspended']);
  });
});
