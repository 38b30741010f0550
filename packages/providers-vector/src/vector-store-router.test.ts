import { isMtPaasError, runWithTenant, type TenantId } from '@mt-paas/context';
import { describe, expect, it } from 'vitest';
import { createMemoryVectorStore } from './memory-store.js';
import { testVectorStore } from './testing.js';
import { createVectorStoreRouter } from './vector-store-router.js';

describe('createVectorStoreRouter', () => {
  const premium = createMemoryVectorStore({ dimensions: 8 });
  const shared = createMemoryVectorStore({ dimensions: 8 });
  const router = () =>
    createVectorStoreRouter({
      dimensions: 8,
      route: (tenantId: TenantId) => (tenantId.startsWith('t_premium') ? premium : shared),
    });

  testVectorStore(router, { name: 'router contract (two memory stores)', close: false });

  it('sends each tenant to the store its route picks', async () => {
    const store = router();
    await runWithTenant({ tenantId: 't_premium_a' }, () =>
      store.upsert([{ id: 'x', vector: [1, 0, 0, 0, 0, 0, 0, 0] }]),
    );
    await runWithTenant({ tenantId: 'plain_b' }, () =>
      store.upsert([{ id: 'x', vector: [1, 0, 0, 0, 0, 0, 0, 0] }]),
    );
    expect(await premium.forTenant('t_premium_a').count()).toBe(1);
    expect(await shared.forTenant('t_premium_a').count()).toBe(0);
    expect(await shared.forTenant('plain_b').count()).toBe(1);
  });

  it('refuses a routed store of other dimensions', async () => {
    const store = createVectorStoreRouter({ dimensions: 4, route: () => premium });
    const error = await store
      .forTenant('acme_univ')
      .count()
      .catch((caught: unknown) => caught);
    expect(isMtPaasError(error, 'CONFIG_INVALID')).toBe(true);
  });
});
