import { isMtPaasError, runWithTenant, type TenantId } from '@mt-paas/context';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FakeChroma, startFakeChroma } from './__fixtures__/fake-chroma.js';
import { type FakeQdrant, startFakeQdrant } from './__fixtures__/fake-qdrant.js';
import { createVectorStore, createVectorStoreRouter } from './create-vector-store.js';
import { createMemoryVectorStore } from './memory-store.js';
import { testVectorStore } from './testing.js';

let qdrant: FakeQdrant;
let chroma: FakeChroma;

beforeAll(async () => {
  qdrant = await startFakeQdrant();
  chroma = await startFakeChroma();
});
afterAll(async () => {
  await qdrant?.close();
  await chroma?.close();
});

describe('createVectorStore', () => {
  it('builds a Qdrant store from the seed-shaped config section', async () => {
    const store = createVectorStore(
      { type: 'qdrant', url: qdrant.url, collection_prefix: 'tenant_' },
      { dimensions: 4, model: 'bge-m3' },
    );
    expect(store.kind).toBe('qdrant');
    await store.forTenant('hallym_univ').upsert([{ id: 'a', vector: [1, 0, 0, 0] }]);
    expect(qdrant.collections.has('tenant_bge_m3_4')).toBe(true);
  });

  it('builds a Chroma store from the parsed @mt-paas/config shape (camelCase)', async () => {
    const store = createVectorStore(
      { type: 'chroma', url: chroma.url, collectionPrefix: 'tenant_' },
      { dimensions: 4, model: 'bge-m3' },
    );
    expect(store.kind).toBe('chroma');
    await store.forTenant('hallym_univ').upsert([{ id: 'a', vector: [1, 0, 0, 0] }]);
    expect(chroma.tenants.has('tenant_hallym_univ')).toBe(true);
  });

  it('builds memory and pgvector stores', () => {
    expect(createVectorStore({ type: 'memory' }, { dimensions: 4 }).kind).toBe('memory');
    expect(createVectorStore({ type: 'pgvector' }, { dimensions: 4 }).kind).toBe('pgvector');
  });

  it('refuses an unknown type with CONFIG_INVALID naming the supported ones', () => {
    let caught: unknown;
    try {
      createVectorStore({ type: 'milvus', url: 'http://localhost:19530' }, { dimensions: 4 });
    } catch (error) {
      caught = error;
    }
    expect(isMtPaasError(caught, 'CONFIG_INVALID')).toBe(true);
    expect((caught as Error).message).toMatch(/pgvector, qdrant, chroma, memory/);
  });
});

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
