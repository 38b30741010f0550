import { isMtPaasError } from '@mt-paas/context';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FakeChroma, startFakeChroma } from './__fixtures__/fake-chroma.js';
import { createChromaVectorStore } from './chroma-store.js';
import { testVectorStore } from './testing.js';

let chroma: FakeChroma;

beforeAll(async () => {
  chroma = await startFakeChroma({ token: 'test-token' });
});
afterAll(async () => {
  await chroma?.close();
});

testVectorStore(
  () => createChromaVectorStore({ url: chroma.url, apiKey: 'test-token', dimensions: 8, model: 'contract' }),
  { name: 'Chroma store contract (Chroma tenant per tenant, fake v2 REST server)' },
);

testVectorStore(
  () =>
    createChromaVectorStore({
      url: chroma.url,
      apiKey: 'test-token',
      dimensions: 8,
      model: 'contract',
      layout: 'database',
      collectionPrefix: 'tenant_',
    }),
  { name: 'Chroma store contract (database per tenant)' },
);

describe('createChromaVectorStore', () => {
  it('creates a Chroma tenant, a database and a cosine collection per tenant', async () => {
    const store = createChromaVectorStore({
      url: chroma.url,
      apiKey: 'test-token',
      dimensions: 4,
      model: 'text-embedding-3-small',
      collectionPrefix: 'tenant_',
    });
    await store.forTenant('acme_univ').upsert([{ id: 'a', vector: [1, 0, 0, 0] }]);
    const database = chroma.tenants.get('tenant_acme_univ')?.get('default_database');
    const collection = database?.collections.get('text_embedding_3_small_4');
    expect(collection).toMatchObject({ space: 'cosine', dimension: 4 });
    expect(collection?.records.size).toBe(1);
  });

  it('puts each tenant in its own database in the database layout', async () => {
    const store = createChromaVectorStore({
      url: chroma.url,
      apiKey: 'test-token',
      dimensions: 4,
      model: 'layout',
      layout: 'database',
      chromaTenant: 'keli_tutor',
    });
    await store.forTenant('acme_univ').upsert([{ id: 'a', vector: [1, 0, 0, 0] }]);
    await store.forTenant('beta_univ').upsert([{ id: 'a', vector: [1, 0, 0, 0] }]);
    expect([...(chroma.tenants.get('keli_tutor')?.keys() ?? [])].sort()).toEqual([
      'mt_paas_acme_univ',
      'mt_paas_beta_univ',
    ]);
  });

  it('deletes the tenant database on purgeTenant', async () => {
    const store = createChromaVectorStore({
      url: chroma.url,
      apiKey: 'test-token',
      dimensions: 4,
      model: 'purge',
    });
    await store.forTenant('gone_univ').upsert([{ id: 'a', vector: [1, 0, 0, 0] }]);
    expect(chroma.tenants.get('mt_paas_gone_univ')?.has('default_database')).toBe(true);
    await store.forTenant('gone_univ').purgeTenant();
    expect(chroma.tenants.get('mt_paas_gone_univ')?.has('default_database')).toBe(false);
  });

  it('sends where clauses with one operator per object ($and for several keys)', async () => {
    const store = createChromaVectorStore({
      url: chroma.url,
      apiKey: 'test-token',
      dimensions: 4,
      model: 'where',
    });
    const tenant = store.forTenant('acme_univ');
    await tenant.upsert([{ id: 'a', vector: [1, 0, 0, 0], metadata: { lang: 'ko', year: 2024 } }]);
    await tenant.query({ vector: [1, 0, 0, 0], filter: { lang: 'ko', year: { $in: [2024, 2025] } } });
    const query = chroma.requests.findLast((request) => request.path.endsWith('/query'));
    expect((query!.body as { where: unknown }).where).toEqual({
      $and: [{ lang: { $eq: 'ko' } }, { year: { $in: [2024, 2025] } }],
    });
  });

  it('maps a wrong token to PROVIDER_ERROR with the server message', async () => {
    const store = createChromaVectorStore({ url: chroma.url, apiKey: 'wrong', dimensions: 4, retries: 0 });
    const error = await store
      .forTenant('acme_univ')
      .count()
      .catch((caught: unknown) => caught);
    expect(isMtPaasError(error, 'PROVIDER_ERROR')).toBe(true);
    expect((error as { details?: Record<string, unknown> }).details).toMatchObject({
      status: 401,
      serverMessage: 'Unauthorized',
    });
  });

  it('refuses an existing collection of another space', async () => {
    const store = createChromaVectorStore({
      url: chroma.url,
      apiKey: 'test-token',
      dimensions: 4,
      model: 'space',
    });
    await store.forTenant('space_univ').count();
    const collection = chroma.tenants
      .get('mt_paas_space_univ')
      ?.get('default_database')
      ?.collections.get('space_4');
    collection!.space = 'l2';
    const fresh = createChromaVectorStore({
      url: chroma.url,
      apiKey: 'test-token',
      dimensions: 4,
      model: 'space',
    });
    const error = await fresh
      .forTenant('space_univ')
      .count()
      .catch((caught: unknown) => caught);
    expect(isMtPaasError(error, 'CONFIG_INVALID')).toBe(true);
  });
});
