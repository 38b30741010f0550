import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FakeChroma, startFakeChroma } from './__fixtures__/fake-chroma.js';
import { type FakeQdrant, startFakeQdrant } from './__fixtures__/fake-qdrant.js';
import { createChromaVectorStore } from './chroma-store.js';
import { createQdrantVectorStore } from './qdrant-store.js';

// The stores are tested against these local servers, so the servers must refuse what the real
// Qdrant and Chroma refuse — a stand-in that accepts anything would hide wire-format bugs.

async function call(url: string, method: string, body?: unknown) {
  const response = await fetch(url, {
    method,
    headers: { 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
  });
  return { status: response.status, body: (await response.json()) as unknown };
}

describe('fake Qdrant', () => {
  let qdrant: FakeQdrant;
  let collection: string;
  beforeAll(async () => {
    qdrant = await startFakeQdrant();
    collection = `${qdrant.url}/collections/docs`;
    expect((await call(collection, 'PUT', { vectors: { size: 3, distance: 'Cosine' } })).status).toBe(200);
  });
  afterAll(async () => {
    await qdrant?.close();
  });

  it('answers 409 for an existing collection and 404 for a missing one, in Qdrant error bodies', async () => {
    expect(await call(collection, 'PUT', { vectors: { size: 3, distance: 'Cosine' } })).toEqual({
      status: 409,
      body: { status: { error: 'Wrong input: Collection `docs` already exists!' }, time: expect.any(Number) },
    });
    expect(await call(`${qdrant.url}/collections/nope/points/count`, 'POST', {})).toMatchObject({
      status: 404,
      body: { status: { error: "Not found: Collection `nope` doesn't exist!" } },
    });
  });

  it('refuses point ids that are neither unsigned integers nor UUIDs', async () => {
    const response = await call(`${collection}/points?wait=true`, 'PUT', {
      points: [{ id: 'doc-1', vector: [1, 0, 0], payload: {} }],
    });
    expect(response.status).toBe(400);
    expect(JSON.stringify(response.body)).toMatch(/not a valid point ID/);
  });

  it('refuses vectors of the wrong dimension, unknown distances and fractional match values', async () => {
    const wrongSize = await call(`${collection}/points?wait=true`, 'PUT', {
      points: [{ id: 1, vector: [1, 0] }],
    });
    expect(wrongSize).toMatchObject({
      status: 400,
      body: { status: { error: 'Wrong input: Vector dimension error: expected dim: 3, got 2' } },
    });
    expect(
      (await call(`${qdrant.url}/collections/other`, 'PUT', { vectors: { size: 3, distance: 'cosine' } }))
        .status,
    ).toBe(400);
    const fractional = await call(`${collection}/points/query`, 'POST', {
      query: [1, 0, 0],
      filter: { must: [{ key: 'weight', match: { value: 0.5 } }] },
    });
    expect(fractional.status).toBe(400);
  });

  it('refuses unknown fields, a delete selecting both points and filter, and bad JSON', async () => {
    expect((await call(`${collection}/points/count`, 'POST', { filter: {}, exactly: true })).status).toBe(
      400,
    );
    expect((await call(`${collection}/points/delete`, 'POST', { points: [1], filter: {} })).status).toBe(400);
    expect((await call(`${collection}/points/count`, 'POST', '{"filter":')).status).toBe(400);
  });

  it('leaves the payload out of query results unless with_payload asks for it', async () => {
    await call(`${collection}/points?wait=true`, 'PUT', {
      points: [{ id: 5, vector: [0, 1, 0], payload: { a: 1 } }],
    });
    const bare = (await call(`${collection}/points/query`, 'POST', { query: [0, 1, 0], limit: 1 })).body as {
      result: { points: Record<string, unknown>[] };
    };
    expect(bare.result.points[0]).not.toHaveProperty('payload');
  });
});

describe('fake Chroma', () => {
  let chroma: FakeChroma;
  let collectionUrl: string;
  beforeAll(async () => {
    chroma = await startFakeChroma();
    await call(`${chroma.url}/api/v2/tenants`, 'POST', { name: 'acme' });
    await call(`${chroma.url}/api/v2/tenants/acme/databases`, 'POST', { name: 'main' });
    const created = await call(`${chroma.url}/api/v2/tenants/acme/databases/main/collections`, 'POST', {
      name: 'docs',
      configuration: { hnsw: { space: 'cosine' } },
    });
    collectionUrl = `${chroma.url}/api/v2/tenants/acme/databases/main/collections/${(created.body as { id: string }).id}`;
  });
  afterAll(async () => {
    await chroma?.close();
  });

  it('answers 404 with { error, message } for a missing tenant and 409 for a duplicate', async () => {
    expect(await call(`${chroma.url}/api/v2/tenants/nobody`, 'GET')).toEqual({
      status: 404,
      body: { error: 'NotFoundError', message: 'Tenant [nobody] not found' },
    });
    expect((await call(`${chroma.url}/api/v2/tenants`, 'POST', { name: 'acme' })).status).toBe(409);
    expect(
      (await call(`${chroma.url}/api/v2/tenants/acme/databases/main/collections`, 'POST', { name: 'docs' }))
        .status,
    ).toBe(409);
  });

  it('refuses invalid collection names, duplicate ids, empty metadata and mismatched dimensions', async () => {
    const badName = await call(`${chroma.url}/api/v2/tenants/acme/databases/main/collections`, 'POST', {
      name: '_x',
    });
    expect(badName.status).toBe(400);
    expect(
      (
        await call(`${collectionUrl}/upsert`, 'POST', {
          ids: ['a', 'a'],
          embeddings: [
            [1, 0],
            [0, 1],
          ],
        })
      ).status,
    ).toBe(400);
    expect(
      (await call(`${collectionUrl}/upsert`, 'POST', { ids: ['a'], embeddings: [[1, 0]], metadatas: [{}] }))
        .status,
    ).toBe(400);
    expect((await call(`${collectionUrl}/upsert`, 'POST', { ids: ['a'], embeddings: [[1, 0]] })).status).toBe(
      200,
    );
    expect(
      (await call(`${collectionUrl}/upsert`, 'POST', { ids: ['b'], embeddings: [[1, 0, 0]] })).status,
    ).toBe(400);
  });

  it('refuses where clauses with several keys at one level or a mixed-type $in', async () => {
    const twoKeys = await call(`${collectionUrl}/query`, 'POST', {
      query_embeddings: [[1, 0]],
      where: { lang: 'ko', year: 2024 },
    });
    expect(twoKeys).toMatchObject({ status: 400, body: { error: 'InvalidArgumentError' } });
    const mixed = await call(`${collectionUrl}/get`, 'POST', { where: { year: { $in: [2024, '2025'] } } });
    expect(mixed.status).toBe(400);
    const empty = await call(`${collectionUrl}/delete`, 'POST', {});
    expect(empty.status).toBe(400);
  });

  it('merges metadata on upsert and deletes keys sent as null, as Chroma does', async () => {
    await call(`${collectionUrl}/upsert`, 'POST', {
      ids: ['m'],
      embeddings: [[0, 1]],
      metadatas: [{ a: 1, b: 2 }],
    });
    await call(`${collectionUrl}/upsert`, 'POST', {
      ids: ['m'],
      embeddings: [[0, 1]],
      metadatas: [{ b: null, c: 3 }],
    });
    const got = await call(`${collectionUrl}/get`, 'POST', { ids: ['m'], include: ['metadatas'] });
    expect((got.body as { metadatas: unknown[] }).metadatas).toEqual([{ a: 1, c: 3 }]);
  });
});

describe('first use racing another process', () => {
  it('treats "already exists" from Qdrant and Chroma as success', async () => {
    // Another process creates the collection / tenant / database between our existence check and our create.
    const qdrant = await startFakeQdrant({
      beforeRequest: (request, collections) => {
        if (
          request.method === 'PUT' &&
          request.path === '/collections/mt_paas_default_2' &&
          !collections.has('mt_paas_default_2')
        ) {
          collections.set('mt_paas_default_2', {
            size: 2,
            distance: 'Cosine',
            points: new Map(),
            payloadSchema: {},
          });
        }
      },
    });
    const chroma = await startFakeChroma({
      beforeRequest: (request, tenants) => {
        if (
          request.method === 'POST' &&
          request.path === '/api/v2/tenants' &&
          !tenants.has('mt_paas_acme_univ')
        ) {
          tenants.set('mt_paas_acme_univ', new Map());
        }
        const database = tenants.get('mt_paas_acme_univ');
        if (
          request.method === 'POST' &&
          request.path.endsWith('/databases') &&
          database &&
          !database.has('default_database')
        ) {
          database.set('default_database', {
            id: 'other',
            name: 'default_database',
            tenant: 'mt_paas_acme_univ',
            collections: new Map(),
          });
        }
      },
    });
    try {
      const qdrantStore = createQdrantVectorStore({ url: qdrant.url, dimensions: 2 }).forTenant('acme_univ');
      await qdrantStore.upsert([{ id: 'a', vector: [1, 0] }]);
      expect(await qdrantStore.count()).toBe(1);
      const conflicts = qdrant.requests.filter(
        (request) => request.method === 'PUT' && request.path === '/collections/mt_paas_default_2',
      );
      expect(conflicts).toHaveLength(1); // it was sent, answered 409, and the store went on

      const chromaStore = createChromaVectorStore({ url: chroma.url, dimensions: 2 }).forTenant('acme_univ');
      await chromaStore.upsert([{ id: 'a', vector: [1, 0] }]);
      expect(await chromaStore.count()).toBe(1);
      expect(
        chroma.requests.some((request) => request.method === 'POST' && request.path === '/api/v2/tenants'),
      ).toBe(true);
    } finally {
      await qdrant.close();
      await chroma.close();
    }
  });
});
