import { MtPaasError } from '@mt-paas/context';
import type { Redis } from 'ioredis';

/** The outcome of one rate limit decision. */
export interface RateLimitDecision {
  allowed: boolean;
  /** Requests allowed per window. */
  limit: number;
  /** Requests left right now. */
  remaining: number;
  /** Seconds until the bucket is full again. */
  resetSeconds: number;
  /** Seconds to wait before retrying (0 when allowed). */
  retryAfterSeconds: number;
}

/**
 * Stores rate limit state. One call = one decision = (for Redis) one round trip.
 * GCRA (generic cell rate algorithm): `limit` requests per `periodMs`, bursts up to `limit`.
 */
export interface RateLimitStore {
  consume(key: string, limit: number, periodMs: number, cost?: number): Promise<RateLimitDecision>;
  close?(): Promise<void>;
}

/** A {@link RateLimitDecision} from a store's raw answer (milliseconds), clamped and rounded. */
export function rateDecision(
  allowed: boolean,
  limit: number,
  remaining: number,
  resetMs: number,
  retryAfterMs: number,
): RateLimitDecision {
  return {
    allowed,
    limit,
    remaining: Math.max(0, Math.min(limit, remaining)),
    resetSeconds: Math.max(0, Math.ceil(resetMs / 1000)),
    retryAfterSeconds: allowed ? 0 : Math.max(1, Math.ceil(retryAfterMs / 1000)),
  };
}

/**
 * Throws `INTERNAL` for arguments no limiter can decide on: a limit that is not a positive whole number
 * (`0` is refused by the pipeline before any store is asked), a cost that is not a non-negative whole
 * number, a period that is not positive. GCRA with a negative cost would hand back capacity.
 */
export function assertRateArguments(limit: number, periodMs: number, cost: number): void {
  if (
    Number.isSafeInteger(limit) &&
    limit > 0 &&
    Number.isSafeInteger(cost) &&
    cost >= 0 &&
    Number.isFinite(periodMs) &&
    periodMs > 0
  )
    return;
  throw new MtPaasError(
    'INTERNAL',
    `A rate limit needs a positive whole limit, a non-negative whole cost and a positive period; got limit ${limit}, cost ${cost}, period ${periodMs} ms.`,
  );
}

/** Options of {@link createMemoryRateLimitStore}. */
export interface MemoryRateLimitStoreOptions {
  /** @default Date.now */
  now?: () => number;
  /** Most keys kept (oldest dropped first). @default 100_000 */
  maxKeys?: number;
}

/** GCRA in process memory: for a single instance (the embedded default) and tests. */
export function createMemoryRateLimitStore(options: MemoryRateLimitStoreOptions = {}): RateLimitStore {
  const now = options.now ?? Date.now;
  const maxKeys = options.maxKeys ?? 100_000;
  const tats = new Map<string, number>();
  return {
    async consume(key, limit, periodMs, cost = 1) {
      assertRateArguments(limit, periodMs, cost);
      const current = now();
      const interval = periodMs / limit;
      const stored = tats.get(key);
      const tat = stored === undefined || stored < current ? current : stored;
      const newTat = tat + interval * cost;
      const allowAt = newTat - periodMs;
      if (allowAt > current) {
        const remaining = Math.floor((periodMs - (tat - current)) / interval);
        return rateDecision(false, limit, remaining, tat - current, allowAt - current);
      }
      tats.delete(key);
      tats.set(key, newTat);
      if (tats.size > maxKeys) {
        const oldest = tats.keys().next().value;
        if (oldest !== undefined) tats.delete(oldest);
      }
      const remaining = Math.floor((periodMs - (newTat - current)) / interval);
      return rateDecision(true, limit, remaining, newTat - current, 0);
    },
  };
}

/**
 * GCRA as one Lua script: reads the theoretical arrival time, decides, writes it back with a TTL.
 * Time comes from Redis (`TIME`), so every instance agrees on it.
 */
export const GCRA_LUA = `
local key = KEYS[1]
local limit = tonumber(ARGV[1])
local period = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local interval = period / limit
local tat = tonumber(redis.call('GET', key))
if tat == nil or tat < now then tat = now end
local new_tat = tat + interval * cost
local allow_at = new_tat - period
if allow_at > now then
  local remaining = math.floor((period - (tat - now)) / interval)
  return {0, remaining, math.ceil(tat - now), math.ceil(allow_at - now)}
end
redis.call('SET', key, tostring(new_tat), 'PX', math.max(1, math.ceil(new_tat - now)))
local remaining = math.floor((period - (new_tat - now)) / interval)
return {1, remaining, math.ceil(new_tat - now), 0}
`;

type GcraRedis = Redis & {
  mtpaasGcra(
    key: string,
    limit: number,
    periodMs: number,
    cost: number,
  ): Promise<[number, number, number, number]>;
};

/** Options of {@link createRedisRateLimitStore}. */
export interface RedisRateLimitStoreOptions {
  /** An ioredis client; build it with `createRedisClient` for fail-fast behaviour. */
  redis: Redis;
}

/**
 * GCRA in Redis: one `EVALSHA` per decision (ioredis `defineCommand`; it falls back to `EVAL` once
 * when the script is not loaded). Atomic, so N concurrent requests against a limit of L admit
 * exactly L. Keys must be built with `tenantKey()` so they are hash-tagged for Redis Cluster.
 */
export function createRedisRateLimitStore(options: RedisRateLimitStoreOptions): RateLimitStore {
  const redis = options.redis as GcraRedis;
  if (typeof redis.mtpaasGcra !== 'function') {
    redis.defineCommand('mtpaasGcra', { numberOfKeys: 1, lua: GCRA_LUA });
  }
  return {
    async consume(key, limit, periodMs, cost = 1) {
      assertRateArguments(limit, periodMs, cost);
      const [allowed, remaining, resetMs, retryMs] = await redis.mtpaasGcra(key, limit, periodMs, cost);
      return rateDecision(allowed === 1, limit, remaining, resetMs, retryMs);
    },
  };
}

/**
 * The IETF draft headers for a decision: `RateLimit-Limit`, `RateLimit-Remaining`,
 * `RateLimit-Reset`, `RateLimit-Policy`, and `Retry-After` when refused.
 */
export function rateLimitHeaders(result: RateLimitDecision, windowSeconds: number): Record<string, string> {
  const headers: Record<string, string> = {
    'ratelimit-limit': String(result.limit),
    'ratelimit-remaining': String(result.remaining),
    'ratelimit-reset': String(result.resetSeconds),
    'ratelimit-policy': `${result.limit};w=${windowSeconds}`,
  };
  if (!result.allowed) headers['retry-after'] = String(result.retryAfterSeconds);
  return headers;
}
