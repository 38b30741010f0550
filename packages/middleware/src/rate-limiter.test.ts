import { describe, expect, it } from 'vitest';
import { createMemoryRateLimitStore, rateLimitHeaders } from './rate-limiter.js';

describe('createMemoryRateLimitStore (GCRA)', () => {
  it('admits exactly the limit out of 100 concurrent requests', async () => {
    const store = createMemoryRateLimitStore({ now: () => 1_000_000 });
    const decisions = await Promise.all(Array.from({ length: 100 }, () => store.consume('k', 10, 60_000)));
    expect(decisions.filter((decision) => decision.allowed).length).toBe(10);
    const refused = decisions.find((decision) => !decision.allowed)!;
    expect(refused.remaining).toBe(0);
    expect(refused.retryAfterSeconds).toBe(6);
  });

  it('refills one request per interval', async () => {
    let now = 0;
    const store = createMemoryRateLimitStore({ now: () => now });
    for (let index = 0; index < 10; index++)
      expect((await store.consume('k', 10, 60_000)).allowed).toBe(true);
    expect((await store.consume('k', 10, 60_000)).allowed).toBe(false);
    now += 6_000;
    expect((await store.consume('k', 10, 60_000)).allowed).toBe(true);
    expect((await store.consume('k', 10, 60_000)).allowed).toBe(false);
  });

  it('keeps keys apart', async () => {
    const store = createMemoryRateLimitStore({ now: () => 0 });
    await store.consume('a', 1, 60_000);
    expect((await store.consume('a', 1, 60_000)).allowed).toBe(false);
    expect((await store.consume('b', 1, 60_000)).allowed).toBe(true);
  });

  it('builds the IETF draft headers and Retry-After on refusal', () => {
    expect(
      rateLimitHeaders(
        { allowed: false, limit: 10, remaining: 0, resetSeconds: 60, retryAfterSeconds: 6 },
        60,
      ),
    ).toEqual({
      'ratelimit-limit': '10',
      'ratelimit-remaining': '0',
      'ratelimit-reset': '60',
      'ratelimit-policy': '10;w=60',
      'retry-after': '6',
    });
  });
});
