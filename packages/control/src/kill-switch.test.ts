import type { TenantEvent } from '@mt-paas/context';
import { type Catalog, createCatalog } from '@mt-paas/db';
import { createInProcessEventBus, createTenantPipeline, type TenantPipeline } from '@mt-paas/middleware';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { captureLogger } from './__fixtures__/capture-logger.js';
import { catalogOutbox } from './__fixtures__/catalog-outbox.js';
import { createKillSwitch } from './kill-switch.js';

/** The same kill switch on the embedded catalog (PGlite): the SQL runs on both drivers. */
describe('kill switch on the embedded catalog (PGlite) with the in-process event bus', () => {
  let catalog: Catalog;
  let pipeline: TenantPipeline;
  const events = createInProcessEventBus();
  const heard: TenantEvent[] = [];

  beforeAll(async () => {
    catalog = await createCatalog({ dataDir: 'memory' });
    await catalog.migrate();
    for (const id of ['univ_1', 'univ_2', 'univ_3'])
      await catalog.tenants.upsert({ id, name: id, status: 'active' });
    pipeline = createTenantPipeline({
      directory: catalog.directory,
      events,
      logger: pino({ level: 'silent' }),
      metrics: false,
    });
    await pipeline.start();
    await events.subscribe((event) => void heard.push(event));
  }, 60_000);
  afterAll(async () => {
    await pipeline?.close();
    await events.close();
    await catalog?.close();
  });

  const admit = (tenantId: string) =>
    pipeline.admit({ method: 'GET', path: '/x', headers: { 'x-tenant-id': tenantId } });

  it('blocks, refuses with the message, reports in the outbox and unblocks', async () => {
    const outbox = catalogOutbox(catalog);
    const killSwitch = createKillSwitch({
      catalog,
      events,
      outbox,
      serviceId: 'svc',
      logger: captureLogger(),
    });
    await admit('univ_1'); // cached
    await killSwitch.block('univ_1', { reason: 'policy_violation', message: 'Blocked for review.' });
    await expect(admit('univ_1')).rejects.toMatchObject({
      code: 'TENANT_BLOCKED',
      message: 'Blocked for review.',
    });
    expect(heard.map((event) => event.type)).toContain('tenant.blocked');
    expect((await outbox.stats!()).pending).toBe(1);
    expect(await killSwitch.unblock('univ_1')).toMatchObject({ unblocked: true, status: 'active' });
    await expect(admit('univ_1')).resolves.toMatchObject({ tenantId: 'univ_1' });
  });

  it("takes the marketplace receiver's block data as is (message up to 2000 characters, Date blockAt, grace hours)", async () => {
    const killSwitch = createKillSwitch({ catalog, events, serviceId: 'svc', logger: captureLogger() });
    const message = '갱'.repeat(2000);
    const data = {
      tenantId: 'univ_1',
      reason: 'subscription_expired',
      blockAt: new Date(),
      gracePeriodHours: 0,
      message,
    };
    await killSwitch.block(data.tenantId, data);
    await expect(admit('univ_1')).rejects.toMatchObject({ code: 'TENANT_BLOCKED', message });
    await expect(killSwitch.block('univ_1', { reason: 'x', message: `${message}!` })).rejects.toMatchObject({
      code: 'INVALID_REQUEST',
      details: { field: 'message' },
    });
    await killSwitch.unblock('univ_1', { reason: undefined });
  });

  it('the sweep lifts an expired block on its timer and stop() ends it', async () => {
    const actions: string[] = [];
    const killSwitch = createKillSwitch({
      catalog,
      events,
      serviceId: 'svc',
      expiryCheckIntervalMs: 50,
      onAction: (action) => actions.push(action),
      logger: captureLogger(),
    });
    await killSwitch.block('univ_2', { reason: 'short', until: new Date(Date.now() + 300) });
    await expect(admit('univ_2')).rejects.toMatchObject({ code: 'TENANT_BLOCKED' });
    killSwitch.start();
    await expect.poll(() => actions, { timeout: 5_000 }).toContain('expire');
    await killSwitch.stop();
    expect((await catalog.directory.get('univ_2' as never))?.status).toBe('active');
    await expect(admit('univ_2')).resolves.toBeDefined();
    // Stopped: a new expired block is not lifted any more.
    await killSwitch.block('univ_3', {
      reason: 'old',
      blockAt: new Date(Date.now() - 7_200_000),
      until: new Date(Date.now() - 3_600_000),
    });
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect((await catalog.directory.get('univ_3' as never))?.status).toBe('blocked');
    expect(await killSwitch.liftExpired()).toEqual(['univ_3']);
  });

  it('a catalog outage during sweeps is logged once, and once on recovery', async () => {
    const logger = captureLogger();
    let down = true;
    const flaky = {
      schema: catalog.schema,
      driver: new Proxy(catalog.driver, {
        get(target, property, receiver) {
          if (property === 'query' && down)
            return async () => Promise.reject(new Error('connection refused'));
          return Reflect.get(target, property, receiver);
        },
      }),
    };
    const killSwitch = createKillSwitch({
      catalog: flaky,
      serviceId: 'svc',
      expiryCheckIntervalMs: 20,
      logger,
    });
    killSwitch.start();
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(logger.at('warn')).toHaveLength(1);
    down = false;
    await expect.poll(() => logger.at('info').length, { timeout: 2_000 }).toBe(1);
    await killSwitch.stop();
    expect(logger.at('warn')).toHaveLength(1);
  });
});
