import { runWithTenant } from '@mt-paas/context';
import { createLocalEmbeddingModel } from '@mt-paas/providers-llm';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { type FakeQdrant, startFakeQdrant } from './__fixtures__/fake-qdrant.js';
import { createQdrantVectorStore } from './qdrant-store.js';
import { createVectorStoreRouter } from './vector-store-router.js';

// The README example, with a local Qdrant stand-in for the configured server and the dedicated one.
let sharedQdrant: FakeQdrant;
let dedicatedQdrant: FakeQdrant;

beforeAll(async () => {
  sharedQdrant = await startFakeQdrant();
  dedicatedQdrant = await startFakeQdrant();
});
afterAll(async () => {
  await sharedQdrant?.close();
  await dedicatedQdrant?.close();
});

it('runs the per-tenant selection example end to end with the local embedding model', async () => {
  const embedding = createLocalEmbeddingModel({ dimensions: 384 });
  const model = { dimensions: embedding.dimensions, model: embedding.modelId };

  const shared = createQdrantVectorStore({ ...model, url: sharedQdrant.url, collectionPrefix: 'tenant_' });
  const dedicated = createQdrantVectorStore({ ...model, url: dedicatedQdrant.url });
  const vectors = createVectorStoreRouter({
    dimensions: 384,
    route: (tenantId) => (tenantId === 'hallym_univ' ? dedicated : shared),
    stores: [shared, dedicated],
  });

  const texts = ['Photosynthesis converts light to chemical energy.', 'The French Revolution began in 1789.'];
  for (const tenantId of ['hallym_univ', 'other_univ']) {
    await runWithTenant({ tenantId }, async () => {
      const { embeddings } = await embedding.embed(texts);
      await vectors.upsert(
        texts.map((text, index) => ({
          id: `doc-${index}`,
          vector: embeddings[index]!,
          metadata: { text, course: index === 0 ? 'bio101' : 'hist201', owner: tenantId },
        })),
      );
    });
  }

  const matches = await runWithTenant({ tenantId: 'hallym_univ' }, async () => {
    const question = (await embedding.embed(['How does photosynthesis convert light energy?']))
      .embeddings[0]!;
    return vectors.query({ vector: question, topK: 3, filter: { course: { $in: ['bio101', 'bio102'] } } });
  });
  expect(matches.map((match) => match.id)).toEqual(['doc-0']);
  expect(matches[0]?.metadata).toMatchObject({ owner: 'hallym_univ', text: texts[0] });

  // hallym_univ lives only on the dedicated server, everyone else on the configured one.
  expect(
    dedicatedQdrant.collections.get(`mt_paas_${embedding.modelId.replaceAll('-', '_')}_384`)?.points.size,
  ).toBe(2);
  expect(
    sharedQdrant.collections.get(`tenant_${embedding.modelId.replaceAll('-', '_')}_384`)?.points.size,
  ).toBe(2);

  await vectors.forTenant('other_univ').purgeTenant();
  expect(await vectors.forTenant('other_univ').count()).toBe(0);
  expect(await vectors.forTenant('hallym_univ').count()).toBe(2);
  await vectors.close();
});
