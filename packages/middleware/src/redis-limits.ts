import type { Redis } from 'ioredis';
import type { QuotaCounterResult } from './quota.js';
import { assertRateArguments, type RateLimitDecision, rateDecision } from './rate-limiter.js';

/**
 * GCRA (as `GCRA_LUA`) and then the quota check-and-add (as `QUOTA_LUA`) in one script, so a request that
 * is both rate limited and metered costs one round trip. A request the rate limit refuses is not counted
 * on the quota, exactly as when the two run one after the other. Both keys are `tenantKey()`s of one
 * tenant, so they share a Redis Cluster slot.
 */
export const LIMITS_LUA = `
local limit = tonumber(ARGV[1])
local period = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local interval = period / limit
local tat = tonumber(redis.call('GET', KEYS[1]))
if tat == nil or tat < now then tat = now end
local new_tat = tat + interval * cost
local allow_at = new_tat - period
if allow_at > now then
  local remaining = math.floor((period - (tat - now)) / interval)
  return {0, remaining, math.ceil(tat - now), math.ceil(allow_at - now), 0, 0, 0}
end
redis.call('SET', KEYS[1], tostring(new_tat), 'PX', math.max(1, math.ceil(new_tat - now)))
local remaining = math.floor((period - (new_tat - now)) / interval)
local current = tonumber(redis.call('GET', KEYS[2]) or '0')
local amount = tonumber(ARGV[4])
local qlimit = tonumber(ARGV[5])
local block = ARGV[6] == '1'
local ttl = tonumber(ARGV[7])
if block and qlimit >= 0 and current + amount > qlimit then
  return {1, remaining, math.ceil(new_tat - now), 0, 0, current, current}
end
local after = redis.call('INCRBY', KEYS[2], amount)
if ttl > 0 and redis.call('TTL', KEYS[2]) < 0 then redis.call('EXPIRE', KEYS[2], ttl) end
return {1, remaining, math.ceil(new_tat - now), 0, 1, current, after}
`;

type LimitsRedis = Redis & {
  mtpaasLimits(
    rateKey: string,
    quotaKey: string,
    limit: number,
    periodMs: number,
    cost: number,
    amount: number,
    quotaLimit: number,
    block: string,
    ttlSeconds: number,
  ): Promise<[number, number, number, number, number, number, number]>;
};

/** The rate limit decision and, when the rate limit admitted the request, the quota counter's answer. */
export interface LimitsResult {
  rate: RateLimitDecision;
  /** `undefined` when the rate limit refused (the quota was not touched). */
  quota: QuotaCounterResult | undefined;
}

/** A rate limit and a quota charge in one round trip. */
export interface RedisLimits {
  consume(
    rate: { key: string; limit: number; periodMs: number; cost: number },
    quota: { key: string; amount: number; limit: number | null; block: boolean; ttlSeconds: number },
  ): Promise<LimitsResult>;
}

/** One `EVALSHA` of {@link LIMITS_LUA} per request (ioredis `defineCommand`). */
export function createRedisLimits(redis: Redis): RedisLimits {
  const client = redis as LimitsRedis;
  if (typeof client.mtpaasLimits !== 'function') {
    client.defineCommand('mtpaasLimits', { numberOfKeys: 2, lua: LIMITS_LUA });
  }
  return {
    async consume(rate, quota) {
      assertRateArguments(rate.limit, rate.periodMs, rate.cost);
      const [allowed, remaining, resetMs, retryMs, counted, before, after] = await client.mtpaasLimits(
        rate.key,
        quota.key,
        rate.limit,
        rate.periodMs,
        rate.cost,
        Math.ceil(quota.amount),
        quota.limit === null ? -1 : quota.limit,
        quota.block ? '1' : '0',
        Math.ceil(quota.ttlSeconds),
      );
      const decision = rateDecision(allowed === 1, rate.limit, remaining, resetMs, retryMs);
      if (allowed !== 1) return { rate: decision, quota: undefined };
      return { rate: decision, quota: { allowed: counted === 1, before, after } };
    },
  };
}
