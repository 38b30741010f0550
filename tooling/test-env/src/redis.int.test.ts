import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { describeWithRedis, testBackend, testRedis } from './index.js';

describeWithRedis('testRedis()', () => {
  it('returns one run-scoped prefix per file and label', () => {
    const first = testRedis();
    expect(first.prefix).toMatch(new RegExp(`^mtp:t:${testBackend().runId}:redis_[0-9a-z]{6}:$`));
    expect(testRedis().prefix).toBe(first.prefix);
    expect(testRedis({ label: 'other' }).prefix).not.toBe(first.prefix);
    expect(first.key('counter')).toBe(`${first.prefix}counter`);
  });

  it('flush() deletes only the keys under its own prefix', async () => {
    const mine = testRedis();
    const neighbour = testRedis({ label: 'neighbour' });
    const client = new Redis(mine.url);
    try {
      await client.set(mine.key('a'), '1');
      await client.set(mine.key('b'), '2');
      await client.set(neighbour.key('a'), '3');
      expect(await mine.flush()).toBe(2);
      expect(await client.exists(mine.key('a'), mine.key('b'))).toBe(0);
      expect(await client.get(neighbour.key('a'))).toBe('3');
      await neighbour.flush();
    } finally {
      client.disconnect();
    }
  });
});

describe('skip reasons', () => {
  it('reports a reason exactly when a service is missing', () => {
    const { redis } = testBackend();
    if (redis.available) expect(() => testRedis()).not.toThrow();
    else expect(() => testRedis()).toThrow(redis.reason);
  });
});
