import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { QuotaStore } from '../quota.js';
import type { RateLimitStore } from '../rate-limiter.js';

const freshKey = (label: string) => `${label}:${randomBytes(6).toString('hex')}`;

/** The `RateLimitStore` contract, run by the in-process and the Redis store. */
export function describeRateLimitStore(
  name: string,
  create: () => RateLimitStore,
  keyPrefix = () => 'contract',
): void {
  describe(`RateLimitStore contract: ${name}`, () => {
    it('admits exactly the limit out of 100 concurrent requests', async () => {
      const store = create();
      const key = freshKey(keyPrefix());
      const decisions = await Promise.all(Array.from({ length: 100 }, () => store.consume(key, 10, 60_000)));
      expect(decisions.filter((decision) => decision.allowed).length).toBe(10);
      const refused = decisions.filter((decision) => !decision.allowed);
      expect(refused.every((decision) => decision.remaining === 0)).toBe(true);
      expect(
        refused.every((decision) => decision.retryAfterSeconds >= 1 && decision.retryAfterSeconds <= 6),
      ).toBe(true);
    });

    it('counts down remaining and keeps keys apart', async () => {
      const store = create();
      const key = freshKey(keyPrefix());
      const remaining: number[] = [];
      for (let index = 0; index < 3; index++) remaining.push((await store.consume(key, 3, 60_000)).remaining);
      expect(remaining).toEqual([2, 1, 0]);
      expect((await store.consume(key, 3, 60_000)).allowed).toBe(false);
      expect((await store.consume(freshKey(keyPrefix()), 3, 60_000)).allowed).toBe(true);
    });

    it('charges a cost of several units at once', async () => {
      const store = create();
      const key = freshKey(keyPrefix());
      expect((await store.consume(key, 10, 60_000, 8)).allowed).toBe(true);
      expect((await store.consume(key, 10, 60_000, 3)).allowed).toBe(false);
      expect((await store.consume(key, 10, 60_000, 2)).allowed).toBe(true);
    });
  });
}

/** The `QuotaStore` contract, run by the in-process and the Redis store. */
export function describeQuotaStore(
  name: string,
  create: () => QuotaStore,
  keyPrefix = () => 'contract',
): void {
  describe(`QuotaStore contract: ${name}`, () => {
    it('adds atomically and refuses past the limit only when blocking', async () => {
      const store = create();
      const key = freshKey(keyPrefix());
      const results = await Promise.all(Array.from({ length: 30 }, () => store.add(key, 1, 20, true, 3600)));
      expect(results.filter((result) => result.allowed).length).toBe(20);
      expect(await store.get(key)).toBe(20);
      const over = await store.add(key, 5, 20, false, 3600);
      expect(over).toEqual({ allowed: true, before: 20, after: 25 });
    });

    it('gives every increment a distinct before/after pair (threshold crossings are unique)', async () => {
      const store = create();
      const key = freshKey(keyPrefix());
      const results = await Promise.all(
        Array.from({ length: 50 }, () => store.add(key, 1, null, false, 3600)),
      );
      expect(new Set(results.map((result) => result.after)).size).toBe(50);
      expect(results.every((result) => result.after === result.before + 1)).toBe(true);
    });

    it('reads an unknown counter as 0', async () => {
      expect(await create().get(freshKey(keyPrefix()))).toBe(0);
    });
  });
}
