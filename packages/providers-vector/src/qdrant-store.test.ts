import { isMtPaasError } from '@mt-paas/context';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FakeQdrant, startFakeQdrant } from './__fixtures__/fake-qdrant.js';
import { createQdrantVectorStore, qdrantPointId } from './qdrant-store.js';
import { testVectorStore } from './testing.js';

let qdrant: FakeQdrant;

beforeAll(async () => {
  qdrant = await startFakeQdrant({ apiKey: 'test-key' });
});
afterAll(async () => {
  await qdrant?.close();
});

testVectorStore(
  () => createQdrantVectorStore({ url: qdrant.url, apiKey: 'test-key', dimensions: 8, model: 'contract' }),
  { name: 'Qdrant store contract (shared collection, fake Qdrant REST server)' },
);

testVectorStore(
  () =>
    createQdrantVectorStore({
      url: qdrant.url,
      apiKey: 'test-key',
      dimensions: 8,
      model: 'contract',
      layout: 'collection-per-tenant',
      collectionPrefix: 'tenant_',
    }),
  { name: 'Qdrant store contract (collection per tenant)' },
);

describe('createQdrantVectorStore', () => {
  it('creates one collection per model with a tenant_id keyword index marked is_tenant', async () => {
    const store = createQdrantVectorStore({
      url: qdrant.url,
      apiKey: 'test-key',
      dimensions: 4,
      model: 'text-embedding-3-small',
      collectionPrefix: 'tenant_',
    });
    await store.forTenant('acme_univ').upsert([{ id: 'a', vector: [1, 0, 0, 0] }]);
    await store.forTenant('beta_univ').upsert([{ id: 'a', vector: [1, 0, 0, 0] }]);
    const collection = qdrant.collections.get('tenant_text_embedding_3_small_4');
    expect(collection).toMatchObject({ size: 4, distance: 'Cosine' });
    expect(collection?.payloadSchema.tenant_id?.params).toEqual({ type: 'keyword', is_tenant: true });
    expect(collection?.points.size).toBe(2);
  });

  it('builds HNSW graphs per tenant when asked (m: 0, payload_m: 16)', async () => {
    const store = createQdrantVectorStore({
      url: qdrant.url,
      apiKey: 'test-key',
      dimensions: 4,
      model: 'per-tenant-graph',
      perTenantIndex: true,
    });
    await store.forTenant('acme_univ').upsert([{ id: 'a', vector: [1, 0, 0, 0] }]);
    expect(qdrant.collections.get('mt_paas_per_tenant_graph_4')?.hnswConfig).toMatchObject({
      m: 0,
      payload_m: 16,
    });
    expect((await store.forTenant('acme_univ').query({ vector: [1, 0, 0, 0] }))[0]?.id).toBe('a');
  });

  it('stores string ids as deterministic UUIDs per tenant and keeps the original id in the payload', async () => {
    const store = createQdrantVectorStore({
      url: qdrant.url,
      apiKey: 'test-key',
      dimensions: 4,
      model: 'ids',
    });
    await store
      .forTenant('acme_univ')
      .upsert([{ id: 'lecture-1', vector: [0, 1, 0, 0], metadata: { lang: 'ko' } }]);
    const upsert = qdrant.requests.findLast(
      (request) => request.method === 'PUT' && request.path.endsWith('/points'),
    );
    const [point] = (upsert!.body as { points: { id: string; payload: unknown }[] }).points;
    expect(point?.id).toBe(qdrantPointId('acme_univ', 'lecture-1'));
    expect(point?.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(point?.payload).toEqual({
      tenant_id: 'acme_univ',
      record_id: 'lecture-1',
      metadata: { lang: 'ko' },
    });
    expect(upsert?.query.get('wait')).toBe('true');
    expect(qdrantPointId('acme_univ', 'lecture-1')).not.toBe(qdrantPointId('beta_univ', 'lecture-1'));
  });

  it('sends the tenant_id condition with every query, count and delete', async () => {
    const store = createQdrantVectorStore({
      url: qdrant.url,
      apiKey: 'test-key',
      dimensions: 4,
      model: 'audit',
    });
    const tenant = store.forTenant('acme_univ');
    const before = qdrant.requests.length;
    await tenant.upsert([{ id: 'a', vector: [1, 0, 0, 0], metadata: { year: 2024 } }]);
    await tenant.query({ vector: [1, 0, 0, 0], filter: { year: { $in: [2024, 2025] } } });
    await tenant.count({ year: 2024 });
    await tenant.delete({ ids: ['a'] });
    await tenant.purgeTenant();
    const reads = qdrant.requests.slice(before).filter((request) => request.method === 'POST');
    expect(reads.map((request) => request.path.split('/').slice(3).join('/'))).toEqual([
      'points/query',
      'points/count',
      'points/delete',
      'points/delete',
    ]);
    for (const request of reads) {
      expect((request.body as { filter: { must: unknown[] } }).filter.must[0]).toEqual({
        key: 'tenant_id',
        match: { value: 'acme_univ' },
      });
    }
  });

  it('drops points of another tenant even if the server ignored the filter', async () => {
    const broken = await startFakeQdrant({ ignoreQueryFilter: true });
    try {
      const store = createQdrantVectorStore({ url: broken.url, dimensions: 4, model: 'defence' });
      await store.forTenant('acme_univ').upsert([{ id: 'a', vector: [1, 0, 0, 0] }]);
      await store.forTenant('beta_univ').upsert([{ id: 'b', vector: [1, 0, 0, 0] }]);
      expect(broken.collections.get('mt_paas_defence_4')?.points.size).toBe(2);
      const matches = await store.forTenant('acme_univ').query({ vector: [1, 0, 0, 0] });
      expect(matches.map((match) => match.id)).toEqual(['a']);
    } finally {
      await broken.close();
    }
  });

  it('refuses a collection created with another size or distance', async () => {
    qdrant.collections.set('mt_paas_clash_4', {
      size: 5,
      distance: 'Dot',
      points: new Map(),
      payloadSchema: {},
    });
    const store = createQdrantVectorStore({
      url: qdrant.url,
      apiKey: 'test-key',
      dimensions: 4,
      model: 'clash',
    });
    const error = await store
      .forTenant('acme_univ')
      .upsert([{ id: 'a', vector: [1, 0, 0, 0] }])
      .catch((caught: unknown) => caught);
    expect(isMtPaasError(error, 'CONFIG_INVALID')).toBe(true);
  });

  it('maps a wrong api key to PROVIDER_ERROR and a dead server to PROVIDER_UNAVAILABLE', async () => {
    const wrongKey = createQdrantVectorStore({ url: qdrant.url, apiKey: 'nope', dimensions: 4, retries: 0 });
    const refused = await wrongKey
      .forTenant('acme_univ')
      .count()
      .catch((caught: unknown) => caught);
    expect(isMtPaasError(refused, 'PROVIDER_ERROR')).toBe(true);
    expect((refused as Error).message).toMatch(/apiKey/);

    const dead = createQdrantVectorStore({ url: 'http://127.0.0.1:9', dimensions: 4, retries: 0 });
    const unreachable = await dead
      .forTenant('acme_univ')
      .count()
      .catch((caught: unknown) => caught);
    expect(isMtPaasError(unreachable, 'PROVIDER_UNAVAILABLE')).toBe(true);
  });

  it('reports the server message of a rejected request', async () => {
    qdrant.collections.set('mt_paas_narrow_4', {
      size: 3,
      distance: 'Cosine',
      points: new Map(),
      payloadSchema: {},
    });
    const store = createQdrantVectorStore({
      url: qdrant.url,
      apiKey: 'test-key',
      dimensions: 4,
      model: 'narrow',
    });
    // query() does not create the collection, so this reaches the server's own validation.
    const error = await store
      .forTenant('acme_univ')
      .query({ vector: [1, 0, 0, 0] })
      .catch((caught: unknown) => caught);
    expect(isMtPaasError(error, 'PROVIDER_ERROR')).toBe(true);
    expect((error as Error).message).toMatch(/Vector dimension error: expected dim: 3, got 4/);
  });
});
