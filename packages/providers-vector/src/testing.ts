/**
 * The contract every vector store passes — run it against your own implementation:
 *
 * ```ts
 * import { testVectorStore } from '@mt-paas/providers-vector/testing';
 * testVectorStore(() => createMyVectorStore({ dimensions: 8 }));
 * ```
 *
 * Needs `vitest` (an optional peer dependency of this package).
 */
import { randomUUID } from 'node:crypto';
import { isMtPaasError, runWithTenant } from '@mt-paas/context';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { VectorFilter, VectorMatch, VectorRecord, VectorStore } from './types.js';
import { cosineSimilarity } from './validation.js';

/** Options of {@link testVectorStore}. */
export interface TestVectorStoreOptions {
  /** Suite name. @default `vector store contract (<kind>)` */
  name?: string;
  /** Called after each test with the store the test used (before `store.close()`). */
  cleanup?: (store: VectorStore) => Promise<void> | void;
  /** Close the store after each test. @default true */
  close?: boolean;
}

/**
 * A deterministic pseudo-random vector for `seed` (same seed, same vector; components in [-1, 1)).
 * Stands in for embeddings in tests.
 */
export function deterministicVector(seed: string, dimensions: number): number[] {
  let state = 2166136261;
  for (let index = 0; index < seed.length; index++) {
    state ^= seed.charCodeAt(index);
    state = Math.imul(state, 16777619) >>> 0;
  }
  const vector: number[] = [];
  for (let index = 0; index < dimensions; index++) {
    // mulberry32
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    vector.push(((t ^ (t >>> 14)) >>> 0) / 2 ** 31 - 1);
  }
  return vector;
}

/** A fresh, valid tenant id (unique per call, so suites may share a backend). */
function newTenantId(label: string): string {
  return `t_${label}_${randomUUID().replaceAll('-', '').slice(0, 12)}`;
}

async function expectCode(promise: Promise<unknown>, code: string): Promise<void> {
  let caught: unknown;
  try {
    await promise;
  } catch (error) {
    caught = error;
  }
  expect(caught, `expected an MtPaasError ${code}`).toBeDefined();
  expect(isMtPaasError(caught) ? caught.code : caught).toBe(code);
}

const ids = (matches: readonly VectorMatch[]) => matches.map((match) => match.id);

/**
 * Registers the vector store contract as a vitest `describe` block. `createStore` is called before
 * each test; tests use fresh random tenant ids, so the factory may return stores sharing one backend.
 */
export function testVectorStore(
  createStore: () => VectorStore | Promise<VectorStore>,
  options: TestVectorStoreOptions = {},
): void {
  describe(options.name ?? 'vector store contract', () => {
    let store: VectorStore;
    let dimensions: number;
    const vector = (seed: string) => deterministicVector(seed, dimensions);

    beforeEach(async () => {
      store = await createStore();
      dimensions = store.dimensions;
    });
    afterEach(async () => {
      await options.cleanup?.(store);
      if (options.close ?? true) await store.close();
    });

    describe('upsert and count', () => {
      it('stores records and counts them', async () => {
        const tenant = store.forTenant(newTenantId('a'));
        expect(await tenant.count()).toBe(0);
        await tenant.upsert([
          { id: 'doc-1', vector: vector('1'), metadata: { lang: 'ko' } },
          { id: 'doc-2', vector: vector('2') },
        ]);
        expect(await tenant.count()).toBe(2);
      });

      it('is idempotent: upserting the same records again changes nothing', async () => {
        const tenant = store.forTenant(newTenantId('a'));
        const records: VectorRecord[] = [
          { id: 'doc-1', vector: vector('1'), metadata: { lang: 'ko', page: 1 } },
          { id: 'doc-2', vector: vector('2'), metadata: { lang: 'en', page: 2 } },
        ];
        await tenant.upsert(records);
        const before = await tenant.query({ vector: vector('1'), topK: 5 });
        await tenant.upsert(records);
        expect(await tenant.count()).toBe(2);
        const after = await tenant.query({ vector: vector('1'), topK: 5 });
        expect(ids(after)).toEqual(ids(before));
        expect(after.map((match) => match.metadata)).toEqual(before.map((match) => match.metadata));
      });

      it('replaces the vector and the whole metadata of an existing id', async () => {
        const tenant = store.forTenant(newTenantId('a'));
        await tenant.upsert([
          { id: 'doc-1', vector: vector('old'), metadata: { lang: 'ko', draft: true } },
          { id: 'doc-2', vector: vector('other') },
        ]);
        await tenant.upsert([{ id: 'doc-1', vector: vector('new'), metadata: { lang: 'en' } }]);
        expect(await tenant.count()).toBe(2);
        const [best] = await tenant.query({ vector: vector('new'), topK: 1 });
        expect(best?.id).toBe('doc-1');
        expect(best?.score).toBeCloseTo(1, 3);
        expect(best?.metadata).toEqual({ lang: 'en' });
        expect(await tenant.count({ draft: true })).toBe(0);
      });

      it('keeps the last record when one batch repeats an id', async () => {
        const tenant = store.forTenant(newTenantId('a'));
        await tenant.upsert([
          { id: 'dup', vector: vector('first'), metadata: { version: 1 } },
          { id: 'dup', vector: vector('second'), metadata: { version: 2 } },
        ]);
        expect(await tenant.count()).toBe(1);
        const [match] = await tenant.query({ vector: vector('second'), topK: 1 });
        expect(match).toMatchObject({ id: 'dup', metadata: { version: 2 } });
        expect(match?.score).toBeCloseTo(1, 3);
      });

      it('accepts ids that are not UUIDs or integers and returns them unchanged', async () => {
        const tenant = store.forTenant(newTenantId('a'));
        const odd = ['lecture 3/slide#7', '42', '한글-문서', 'a'.repeat(200)];
        await tenant.upsert(odd.map((id) => ({ id, vector: vector(id) })));
        for (const id of odd) {
          const [match] = await tenant.query({ vector: vector(id), topK: 1 });
          expect(match?.id).toBe(id);
        }
      });
    });

    describe('query', () => {
      it('returns the top k by cosine similarity, best first, with cosine scores', async () => {
        const tenant = store.forTenant(newTenantId('a'));
        const records = Array.from({ length: 20 }, (_, index) => ({
          id: `doc-${index}`,
          vector: vector(`doc-${index}`),
        }));
        await tenant.upsert(records);
        const query = vector('query');
        const expected = records
          .map((record) => ({ id: record.id, score: cosineSimilarity(query, record.vector) }))
          .sort((a, b) => b.score - a.score);
        const matches = await tenant.query({ vector: query, topK: 5 });
        expect(ids(matches)).toEqual(ids(expected.slice(0, 5) as VectorMatch[]));
        matches.forEach((match, index) => {
          expect(match.score).toBeCloseTo(expected[index]!.score, 3);
        });
      });

      it('finds a stored vector as its own best match with score 1, and scales do not matter', async () => {
        const tenant = store.forTenant(newTenantId('a'));
        await tenant.upsert([
          { id: 'x', vector: vector('x') },
          { id: 'y', vector: vector('y') },
        ]);
        const [match] = await tenant.query({
          vector: vector('x').map((component) => component * 7.5),
          topK: 1,
        });
        expect(match?.id).toBe('x');
        expect(match?.score).toBeCloseTo(1, 3);
      });

      it('scores an opposite vector -1', async () => {
        const tenant = store.forTenant(newTenantId('a'));
        await tenant.upsert([{ id: 'x', vector: vector('x') }]);
        const [match] = await tenant.query({ vector: vector('x').map((component) => -component), topK: 1 });
        expect(match?.score).toBeCloseTo(-1, 3);
      });

      it('returns fewer than k when the tenant has fewer records, and [] when it has none', async () => {
        const tenant = store.forTenant(newTenantId('a'));
        expect(await tenant.query({ vector: vector('q') })).toEqual([]);
        await tenant.upsert([
          { id: 'a', vector: vector('a') },
          { id: 'b', vector: vector('b') },
        ]);
        expect((await tenant.query({ vector: vector('q'), topK: 10 })).length).toBe(2);
        expect((await tenant.query({ vector: vector('q'), topK: 1 })).length).toBe(1);
      });
    });

    describe('metadata filters', () => {
      const seed = async () => {
        const tenant = store.forTenant(newTenantId('f'));
        await tenant.upsert([
          {
            id: 'ko-2024',
            vector: vector('1'),
            metadata: { lang: 'ko', year: 2024, public: true, weight: 0.5 },
          },
          {
            id: 'ko-2025',
            vector: vector('2'),
            metadata: { lang: 'ko', year: 2025, public: false, weight: 1.5 },
          },
          {
            id: 'en-2024',
            vector: vector('3'),
            metadata: { lang: 'en', year: 2024, public: true, weight: 2.5 },
          },
          { id: 'ja-2023', vector: vector('4'), metadata: { lang: 'ja', year: 2023, code: '2023' } },
          { id: 'bare', vector: vector('5') },
        ]);
        return tenant;
      };
      const matching = async (tenant: Awaited<ReturnType<typeof seed>>, filter: VectorFilter) => {
        const found = ids(await tenant.query({ vector: vector('q'), topK: 10, filter })).sort();
        expect(await tenant.count(filter)).toBe(found.length);
        return found;
      };

      it('filters by string, integer, fractional and boolean equality', async () => {
        const tenant = await seed();
        expect(await matching(tenant, { lang: 'ko' })).toEqual(['ko-2024', 'ko-2025']);
        expect(await matching(tenant, { year: 2024 })).toEqual(['en-2024', 'ko-2024']);
        expect(await matching(tenant, { weight: 1.5 })).toEqual(['ko-2025']);
        expect(await matching(tenant, { public: false })).toEqual(['ko-2025']);
        expect(await matching(tenant, { lang: { $eq: 'en' } })).toEqual(['en-2024']);
      });

      it('filters by $in for strings, integers, fractional numbers and booleans', async () => {
        const tenant = await seed();
        expect(await matching(tenant, { lang: { $in: ['en', 'ja'] } })).toEqual(['en-2024', 'ja-2023']);
        expect(await matching(tenant, { year: { $in: [2023, 2025] } })).toEqual(['ja-2023', 'ko-2025']);
        expect(await matching(tenant, { weight: { $in: [0.5, 2.5] } })).toEqual(['en-2024', 'ko-2024']);
        expect(await matching(tenant, { public: { $in: [true, false] } })).toEqual([
          'en-2024',
          'ko-2024',
          'ko-2025',
        ]);
      });

      it('ANDs conditions on several keys', async () => {
        const tenant = await seed();
        expect(await matching(tenant, { lang: 'ko', year: 2024 })).toEqual(['ko-2024']);
        expect(await matching(tenant, { lang: { $in: ['ko', 'en'] }, public: true })).toEqual([
          'en-2024',
          'ko-2024',
        ]);
        expect(await matching(tenant, { lang: 'ja', public: true })).toEqual([]);
      });

      it('is type-strict and never matches a record without the key', async () => {
        const tenant = await seed();
        expect(await matching(tenant, { year: '2024' })).toEqual([]);
        expect(await matching(tenant, { code: 2023 })).toEqual([]);
        expect(await matching(tenant, { code: '2023' })).toEqual(['ja-2023']);
        expect(await matching(tenant, { public: 1 })).toEqual([]);
        expect(await matching(tenant, { missing: 'x' })).toEqual([]);
      });

      it('applies the filter before top k', async () => {
        const tenant = await seed();
        const [match] = await tenant.query({ vector: vector('1'), topK: 1, filter: { lang: 'en' } });
        expect(match?.id).toBe('en-2024');
      });

      it('rejects malformed filters with INVALID_REQUEST', async () => {
        const tenant = await seed();
        await expectCode(
          tenant.query({ vector: vector('q'), filter: { lang: { $ne: 'ko' } as never } }),
          'INVALID_REQUEST',
        );
        await expectCode(
          tenant.query({ vector: vector('q'), filter: { lang: { $in: [] } } }),
          'INVALID_REQUEST',
        );
        await expectCode(tenant.count({ year: { $in: [2024, '2025'] } }), 'INVALID_REQUEST');
        await expectCode(tenant.count({ 'a.b': 'x' }), 'INVALID_REQUEST');
      });
    });

    describe('delete', () => {
      it('deletes by ids; unknown ids are ignored', async () => {
        const tenant = store.forTenant(newTenantId('d'));
        await tenant.upsert(['a', 'b', 'c'].map((id) => ({ id, vector: vector(id) })));
        await tenant.delete({ ids: ['a', 'c', 'nope'] });
        expect(await tenant.count()).toBe(1);
        expect(ids(await tenant.query({ vector: vector('a'), topK: 5 }))).toEqual(['b']);
      });

      it('deletes by filter', async () => {
        const tenant = store.forTenant(newTenantId('d'));
        await tenant.upsert([
          { id: 'a', vector: vector('a'), metadata: { course: 'math' } },
          { id: 'b', vector: vector('b'), metadata: { course: 'art' } },
          { id: 'c', vector: vector('c'), metadata: { course: 'math' } },
        ]);
        await tenant.delete({ filter: { course: 'math' } });
        expect(ids(await tenant.query({ vector: vector('a'), topK: 5 }))).toEqual(['b']);
      });

      it('deletes by ids and filter together: only records matching both', async () => {
        const tenant = store.forTenant(newTenantId('d'));
        await tenant.upsert([
          { id: 'a', vector: vector('a'), metadata: { course: 'math' } },
          { id: 'b', vector: vector('b'), metadata: { course: 'art' } },
          { id: 'c', vector: vector('c'), metadata: { course: 'math' } },
        ]);
        await tenant.delete({ ids: ['a', 'b'], filter: { course: 'math' } });
        expect(ids(await tenant.query({ vector: vector('a'), topK: 5 })).sort()).toEqual(['b', 'c']);
      });

      it('refuses a delete that selects nothing explicitly', async () => {
        const tenant = store.forTenant(newTenantId('d'));
        await tenant.upsert([{ id: 'a', vector: vector('a') }]);
        await expectCode(tenant.delete({}), 'INVALID_REQUEST');
        await expectCode(tenant.delete({ filter: {} }), 'INVALID_REQUEST');
        expect(await tenant.count()).toBe(1);
      });
    });

    describe('purgeTenant', () => {
      it("removes every vector of the tenant and nothing of another tenant's", async () => {
        const gone = store.forTenant(newTenantId('p'));
        const kept = store.forTenant(newTenantId('p'));
        const records = ['a', 'b', 'c'].map((id) => ({ id, vector: vector(id), metadata: { n: 1 } }));
        await gone.upsert(records);
        await kept.upsert(records);
        await gone.purgeTenant();
        expect(await gone.count()).toBe(0);
        expect(await gone.query({ vector: vector('a') })).toEqual([]);
        expect(await kept.count()).toBe(3);
        await gone.upsert([{ id: 'again', vector: vector('again') }]);
        expect(await gone.count()).toBe(1);
        await gone.purgeTenant();
        await gone.purgeTenant();
        expect(await gone.count()).toBe(0);
      });
    });

    describe('tenant isolation', () => {
      it('keeps two tenants with identical ids and vectors apart', async () => {
        const tenantA = newTenantId('iso');
        const tenantB = newTenantId('iso');
        const records = (owner: string): VectorRecord[] =>
          ['shared-1', 'shared-2', 'shared-3'].map((id) => ({ id, vector: vector(id), metadata: { owner } }));
        await store.forTenant(tenantA).upsert(records('a'));
        await store.forTenant(tenantB).upsert(records('b'));

        const a = await store.forTenant(tenantA).query({ vector: vector('shared-1'), topK: 10 });
        const b = await store.forTenant(tenantB).query({ vector: vector('shared-1'), topK: 10 });
        expect(a.map((match) => match.metadata.owner)).toEqual(['a', 'a', 'a']);
        expect(b.map((match) => match.metadata.owner)).toEqual(['b', 'b', 'b']);

        await store.forTenant(tenantA).delete({ ids: ['shared-1'] });
        await store.forTenant(tenantA).delete({ filter: { owner: 'b' } });
        expect(await store.forTenant(tenantA).count()).toBe(2);
        expect(await store.forTenant(tenantB).count()).toBe(3);
        expect(await store.forTenant(tenantB).count({ owner: 'a' })).toBe(0);
      });

      it('never takes the tenant from metadata or a filter', async () => {
        const tenantA = newTenantId('iso');
        const tenantB = newTenantId('iso');
        await store.forTenant(tenantB).upsert([{ id: 'b-doc', vector: vector('b-doc') }]);
        await store
          .forTenant(tenantA)
          .upsert([
            { id: 'a-doc', vector: vector('a-doc'), metadata: { tenant_id: tenantB, tenantId: tenantB } },
          ]);
        expect(await store.forTenant(tenantB).count()).toBe(1);
        const fromA = await store
          .forTenant(tenantA)
          .query({ vector: vector('b-doc'), filter: { tenant_id: tenantB } });
        expect(ids(fromA)).toEqual(['a-doc']);
        expect(await store.forTenant(tenantA).count({ tenant_id: tenantB })).toBe(1);
        await store.forTenant(tenantA).delete({ filter: { tenant_id: tenantB } });
        expect(await store.forTenant(tenantB).count()).toBe(1);
        expect(await store.forTenant(tenantA).count()).toBe(0);
      });

      it('uses the tenant of the current context, and refuses to run without one', async () => {
        const tenantA = newTenantId('ctx');
        const tenantB = newTenantId('ctx');
        await runWithTenant({ tenantId: tenantA }, () => store.upsert([{ id: 'x', vector: vector('x') }]));
        expect(await runWithTenant({ tenantId: tenantA }, () => store.count())).toBe(1);
        expect(await runWithTenant({ tenantId: tenantB }, () => store.count())).toBe(0);
        expect(await store.forTenant(tenantA).count()).toBe(1);
        await expectCode(store.count(), 'TENANT_CONTEXT_MISSING');
        await expectCode(store.query({ vector: vector('x') }), 'TENANT_CONTEXT_MISSING');
        await expectCode(store.upsert([{ id: 'y', vector: vector('y') }]), 'TENANT_CONTEXT_MISSING');
        await expectCode(store.purgeTenant(), 'TENANT_CONTEXT_MISSING');
      });

      it("refuses a store bound to one tenant inside another tenant's context", async () => {
        const tenantA = newTenantId('ctx');
        const tenantB = newTenantId('ctx');
        const boundToA = store.forTenant(tenantA);
        await boundToA.upsert([{ id: 'x', vector: vector('x') }]);
        await expectCode(
          runWithTenant({ tenantId: tenantB }, () => boundToA.query({ vector: vector('x') })),
          'CROSS_TENANT_ACCESS',
        );
        expect(await runWithTenant({ tenantId: tenantA }, () => boundToA.count())).toBe(1);
      });

      it('rejects invalid tenant ids', () => {
        expect(() => store.forTenant('Robert; DROP TABLE')).toThrow();
        expect(() => store.forTenant('')).toThrow();
      });

      it('keeps concurrent, interleaved tenants apart', async () => {
        const tenants = Array.from({ length: 6 }, () => newTenantId('conc'));
        await Promise.all(
          tenants.map((tenantId, tenantIndex) =>
            runWithTenant({ tenantId }, async () => {
              for (let batch = 0; batch < 3; batch++) {
                await store.upsert(
                  Array.from({ length: 4 }, (_, index) => ({
                    id: `doc-${batch}-${index}`,
                    vector: vector(`doc-${batch}-${index}`),
                    metadata: { owner: tenantId, batch },
                  })),
                );
                const seen = await store.query({ vector: vector(`doc-${batch}-0`), topK: 50 });
                expect(seen.every((match) => match.metadata.owner === tenantId)).toBe(true);
                expect(seen[0]?.id).toBe(`doc-${batch}-0`);
              }
              if (tenantIndex % 2 === 0) await store.delete({ filter: { batch: 0 } });
            }),
          ),
        );
        for (const [tenantIndex, tenantId] of tenants.entries()) {
          const tenant = store.forTenant(tenantId);
          expect(await tenant.count()).toBe(tenantIndex % 2 === 0 ? 8 : 12);
          expect(await tenant.count({ owner: tenantId })).toBe(await tenant.count());
        }
      });
    });

    describe('validation', () => {
      it('rejects vectors of the wrong length, non-finite or all-zero vectors, and bad metadata', async () => {
        const tenant = store.forTenant(newTenantId('v'));
        await expectCode(tenant.upsert([{ id: 'a', vector: [1, 2] }]), 'INVALID_REQUEST');
        await expectCode(tenant.query({ vector: vector('q').slice(1) }), 'INVALID_REQUEST');
        const withNaN = vector('n');
        withNaN[0] = Number.NaN;
        await expectCode(tenant.upsert([{ id: 'a', vector: withNaN }]), 'INVALID_REQUEST');
        await expectCode(
          tenant.upsert([{ id: 'a', vector: new Array(dimensions).fill(0) }]),
          'INVALID_REQUEST',
        );
        await expectCode(
          tenant.upsert([{ id: 'a', vector: vector('a'), metadata: { nested: { x: 1 } as never } }]),
          'INVALID_REQUEST',
        );
        await expectCode(tenant.upsert([{ id: '', vector: vector('a') }]), 'INVALID_REQUEST');
        await expectCode(tenant.query({ vector: vector('q'), topK: 0 }), 'INVALID_REQUEST');
        expect(await tenant.count()).toBe(0);
      });
    });
  });
}
