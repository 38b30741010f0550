import { describe, expect, it } from 'vitest';
import { createMemoryVectorStore } from './memory-store.js';
import { testVectorStore } from './testing.js';

testVectorStore(() => createMemoryVectorStore({ dimensions: 8 }), { name: 'memory store contract' });

describe('createMemoryVectorStore', () => {
  it('refuses dimensions that are not a positive integer', () => {
    expect(() => createMemoryVectorStore({ dimensions: 0 })).toThrow(/dimensions/);
    expect(() => createMemoryVectorStore({ dimensions: 1.5 })).toThrow(/dimensions/);
  });

  it('returns copies: mutating a result does not change the store', async () => {
    const store = createMemoryVectorStore({ dimensions: 2 }).forTenant('acme_univ');
    await store.upsert([{ id: 'a', vector: [1, 0], metadata: { lang: 'ko' } }]);
    const [match] = await store.query({ vector: [1, 0] });
    match!.metadata.lang = 'en';
    expect(await store.count({ lang: 'ko' })).toBe(1);
  });
});
