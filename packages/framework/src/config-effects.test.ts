/** The switches of seed 001 that the seed file leaves on, turned off (embedded defaults, a local market stand-in). */
import { afterEach, beforeEach, expect, it } from 'vitest';
import { buildApp, FIXTURE_MIGRATIONS } from './__fixtures__/app.js';
import { type MarketStandIn, startMarketStandIn } from './__fixtures__/market-stand-in.js';
import { createServiceFramework } from './index.js';

let market: MarketStandIn;
beforeEach(async () => {
  market = await startMarketStandIn();
});
afterEach(async () => {
  await market.close();
});

const frameworkWith = (yaml: string) =>
  createServiceFramework({
    config: `service:\n  id: fw_switches\nlogging:\n  level: silent\n${yaml}`,
    env: {},
    dataDir: 'memory',
    migrationsFolder: FIXTURE_MIGRATIONS,
  });

it('marketplace.subscription_check: false serves a tenant whose subscription ended long ago', async () => {
  const mt = await frameworkWith('marketplace:\n  enabled: false\n  subscription_check: false\n');
  try {
    const app = await buildApp(mt);
    await mt.onboard({
      id: 'lapsed',
      name: 'Lapsed',
      entitlements: {
        plan: 'free',
        features: {},
        limits: { rpm: null, quotas: {} },
        expiresAt: new Date(Date.now() - 30 * 86_400_000),
        source: 'test',
      },
    });
    const response = await app.inject({ url: '/courses', headers: { 'x-tenant-id': 'lapsed' } });
    expect(response.statusCode).toBe(200);
    expect(response.headers['x-tenant-warning']).toBeUndefined();
    // Status still counts: a suspended tenant is refused.
    await mt.provisioner.suspend('lapsed');
    mt.pipeline.directory.invalidate('lapsed' as never);
    expect((await app.inject({ url: '/courses', headers: { 'x-tenant-id': 'lapsed' } })).statusCode).toBe(
      403,
    );
    await app.close();
  } finally {
    await mt.close();
  }
});

it('logging.usage_report.enabled: false keeps usage in the ledger and reports none to the marketplace', async () => {
  const yaml = (enabled: boolean) =>
    `marketplace:\n  api_url: ${market.url}\n  api_key: mk_switch_0123456789\nlogging:\n  level: silent\n  usage_report:\n    enabled: ${enabled}\n`;
  for (const enabled of [false, true]) {
    const mt = await createServiceFramework({
      config: `service:\n  id: fw_usage_${enabled}\n${yaml(enabled)}`,
      env: {},
      dataDir: 'memory',
      migrationsFolder: FIXTURE_MIGRATIONS,
    });
    const app = await buildApp(mt);
    await mt.onboard({ id: 'counted', name: 'Counted' });
    expect((await app.inject({ url: '/courses', headers: { 'x-tenant-id': 'counted' } })).statusCode).toBe(
      200,
    );
    await mt.pipeline.quotas?.flush();
    const { rows } = await mt.catalog.driver.query<{ total: number }>(
      `SELECT coalesce(sum(quantity), 0)::int AS total FROM mt_paas.usage_ledger WHERE tenant_id = 'counted'`,
    );
    expect(rows[0]?.total).toBeGreaterThan(0); // the ledger has it either way
    await app.close();
    await mt.close();
    const reported = market.calls.some((call) => call.path === `/api/v1/services/fw_usage_${enabled}/usage`);
    expect(reported).toBe(enabled);
  }
});
