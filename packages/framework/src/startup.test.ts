/** A bad config fails createServiceFramework itself (never the first request); close() leaves nothing running. */
import { getConfigIssues } from '@mt-paas/config';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { buildApp, FIXTURE_MIGRATIONS } from './__fixtures__/app.js';
import { eventually } from './__fixtures__/market.js';
import { type MarketStandIn, startMarketStandIn } from './__fixtures__/market-stand-in.js';
import { createServiceFramework } from './index.js';

const start = (config: string) =>
  createServiceFramework({
    config: config.includes('logging:') ? config : `logging:\n  level: silent\n${config}`,
    env: {},
    dataDir: 'memory',
    migrationsFolder: FIXTURE_MIGRATIONS,
  });

describe('misconfiguration fails at startup with the config error', () => {
  it.each([
    ['custom.rag.overlap', 'custom:\n  rag:\n    chunk_size: 200\n    overlap: 200\n'],
    ['custom.llm.default_model', 'custom:\n  llm:\n    default_model: ""\n'],
    ['isolation.mode', 'isolation:\n  mode: warp_drive\n'],
    ['database.vector.type', 'database:\n  vector:\n    type: milvus\n'],
    ['servce', 'servce:\n  id: typo\n'],
  ])('%s', async (path, yaml) => {
    const error = await start(yaml).catch((caught: unknown) => caught);
    expect(error).toMatchObject({ code: 'CONFIG_INVALID' });
    expect(getConfigIssues(error).map((issue) => issue.path)).toContain(path);
    // file:line of the offending key, and what to do
    expect((error as Error).message).toMatch(/mt-paas\.yaml:\d+/);
  });

  it.each([
    [
      'an unknown LLM provider',
      'custom:\n  llm:\n    default_model: "mistral:large"\n',
      /Unknown LLM provider "mistral"/,
    ],
    [
      'database mode without a Postgres server',
      'isolation:\n  mode: DATABASE_PER_TENANT\n',
      /needs a Postgres server.*database\.central\.url/,
    ],
    [
      'marketplace SSO without the marketplace',
      'auth:\n  marketplace_sso:\n    enabled: true\n',
      /auth\.marketplace_sso\.enabled needs .*marketplace\.api_url/,
    ],
    [
      'the activity log without service.public_url',
      'logging:\n  level: silent\n  activity_log:\n    endpoint: https://lrs.example/xapi\n',
      /service\.public_url/,
    ],
  ])('%s', async (_name, yaml, message) => {
    await expect(start(yaml)).rejects.toMatchObject({
      code: 'CONFIG_INVALID',
      message: expect.stringMatching(message),
    });
  });
});

it('needs the migrations of the tenant tables, not at the first onboarding', async () => {
  await expect(
    // A JavaScript caller (TypeScript requires the option).
    createServiceFramework({ config: 'logging:\n  level: silent\n', env: {}, dataDir: 'memory' } as never),
  ).rejects.toMatchObject({ code: 'CONFIG_INVALID', message: expect.stringContaining('migrationsFolder') });
});

describe('close()', () => {
  let market: MarketStandIn;
  beforeEach(async () => {
    market = await startMarketStandIn();
  });
  afterEach(async () => {
    await market.close().catch(() => {});
  });

  it('stops every timer and connection it started (heartbeat, dispatcher, sweeps, pools)', async () => {
    const resources = () => {
      const counts = new Map<string, number>();
      for (const type of process.getActiveResourcesInfo()) counts.set(type, (counts.get(type) ?? 0) + 1);
      return counts;
    };
    const before = resources();
    const mt = await createServiceFramework({
      config: `
service:
  id: fw_close
  public_url: https://tutor.example
marketplace:
  api_url: ${market.url}
  api_key: mk_close_0123456789
  heartbeat_interval: 1
logging:
  level: silent
  activity_log:
    endpoint: ${market.origin}/xapi
`,
      env: {},
      dataDir: 'memory',
      migrationsFolder: FIXTURE_MIGRATIONS,
    });
    const app = await buildApp(mt);
    await mt.onboard({ id: 'closing', name: 'Closing' });
    expect((await app.inject({ url: '/courses', headers: { 'x-tenant-id': 'closing' } })).statusCode).toBe(
      200,
    );
    // heartbeat_interval: 1 — the heartbeat timer runs…
    await eventually(async () => market.beats.length > 0, 'a heartbeat reached the market');
    await app.close();
    await mt.close();
    // …and stops with close(): no beat after it.
    const beats = market.beats.length;
    await new Promise((resolve) => setTimeout(resolve, 2_500));
    expect(market.beats.length).toBe(beats);
    // The usage of that request was drained to the marketplace on close.
    expect(market.calls.some((call) => call.path === '/api/v1/services/fw_close/usage')).toBe(true);
    // The stand-in drops its side of the keep-alive connections fetch pooled; what is left is ours.
    await market.close();
    const leftOpen = () =>
      [...resources()].filter(([type, count]) => count > (before.get(type) ?? 0)).map(([type]) => type);
    await eventually(
      async () => leftOpen().length === 0,
      `no handle left open (still: ${leftOpen()})`,
      3_000,
    );
  });
});
