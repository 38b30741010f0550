import { type Catalog, createCatalog } from '@mt-paas/db';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { catalogHandlerSuite } from './__fixtures__/catalog-handlers.js';
import { createOutbox, tenantStatusMessage } from './outbox.js';
import { createCatalogReceiptStore } from './receipts.js';
import { createCatalogReplayStore } from './sso.js';

/** The catalog-backed stores also run on the embedded database (PGlite), the default of `pnpm start`. */
describe('on the embedded catalog (PGlite)', () => {
  let catalog: Catalog;
  beforeAll(async () => {
    catalog = await createCatalog({ dataDir: 'memory' });
    await catalog.migrate();
  }, 60_000);
  afterAll(async () => {
    await catalog?.close();
  });

  it('keeps receipts: once per id, in order per tenant, nothing stored when the handler throws', async () => {
    const receipts = createCatalogReceiptStore(catalog);
    const stale = { status: 200, body: { result: 'ignored' } };
    const key = {
      webhookId: 'msg_1',
      type: 'tenant.blocked',
      tenantId: 'hallym',
      orderingKey: 'access',
      occurredAt: new Date(2000),
    };
    await expect(
      receipts.once({ ...key }, async () => Promise.reject(new Error('boom')), stale),
    ).rejects.toThrow('boom');
    const first = await receipts.once({ ...key }, async () => ({ status: 200, body: { n: 1 } }), stale);
    expect(first).toEqual({ answer: { status: 200, body: { n: 1 } }, result: 'processed' });
    expect(
      (await receipts.once({ ...key }, async () => ({ status: 200, body: { n: 2 } }), stale)).result,
    ).toBe('duplicate');
    const older = await receipts.once(
      { ...key, webhookId: 'msg_0', occurredAt: new Date(1000) },
      async () => ({ status: 200, body: {} }),
      stale,
    );
    expect(older).toEqual({ answer: stale, result: 'stale' });
  });

  it('keeps the outbox and used SSO token ids', async () => {
    const outbox = createOutbox(catalog);
    expect(
      await outbox.enqueue([tenantStatusMessage({ tenantId: 'hallym', status: 'active', id: 's1' })]),
    ).toBe(1);
    expect(
      await outbox.enqueue([tenantStatusMessage({ tenantId: 'hallym', status: 'active', id: 's1' })]),
    ).toBe(0);
    const [claimed] = await outbox.claim(10, 60);
    expect(claimed?.id).toBe('s1');
    expect(await outbox.claim(10, 60)).toEqual([]);
    await outbox.complete('s1');
    expect(await outbox.stats()).toEqual({ pending: 0, parked: 0, oldestPendingAgeSeconds: null });
    const replay = createCatalogReplayStore(catalog);
    expect(await replay.claim('jti-a', new Date(Date.now() + 60_000))).toBe(true);
    expect(await replay.claim('jti-a', new Date(Date.now() + 60_000))).toBe(false);
  });

  catalogHandlerSuite(() => catalog);
});
