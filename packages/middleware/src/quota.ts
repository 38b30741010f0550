import { randomUUID } from 'node:crypto';
import type { QuotaLimit, QuotaPeriod, TenantId, UsageRecord, UsageSink } from '@mt-paas/context';
import { MtPaasError } from '@mt-paas/context';
import type { Redis } from 'ioredis';
import { REDIS_KEY_PREFIX, tenantKey } from './redis-keys.js';

/** The result of one atomic check-and-add on a quota counter. */
export interface QuotaCounterResult {
  /** False only when `block` was asked and the amount would pass the limit (nothing was added). */
  allowed: boolean;
  /** Counter before the call. */
  before: number;
  /** Counter after the call. */
  after: number;
}

/** Stores quota counters. One call is atomic across instances. */
export interface QuotaStore {
  /**
   * Adds `amount` to `key` unless `block` and the result would pass `limit` (`null` = no limit).
   * `ttlSeconds` (when > 0) is set once, when the counter is created.
   */
  add(
    key: string,
    amount: number,
    limit: number | null,
    block: boolean,
    ttlSeconds: number,
  ): Promise<QuotaCounterResult>;
  /** Current value of a counter. */
  get(key: string): Promise<number>;
}

/** Check-and-add as one Lua script. */
export const QUOTA_LUA = `
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
local amount = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local block = ARGV[3] == '1'
local ttl = tonumber(ARGV[4])
if block and limit >= 0 and current + amount > limit then
  return {0, current, current}
end
local after = redis.call('INCRBY', KEYS[1], amount)
if ttl > 0 and redis.call('TTL', KEYS[1]) < 0 then redis.call('EXPIRE', KEYS[1], ttl) end
return {1, current, after}
`;

type QuotaRedis = Redis & {
  mtpaasQuotaAdd(
    key: string,
    amount: number,
    limit: number,
    block: string,
    ttl: number,
  ): Promise<[number, number, number]>;
};

/** Quota counters in Redis: one `EVALSHA` per check. */
export function createRedisQuotaStore(options: { redis: Redis }): QuotaStore {
  const redis = options.redis as QuotaRedis;
  if (typeof redis.mtpaasQuotaAdd !== 'function') {
    redis.defineCommand('mtpaasQuotaAdd', { numberOfKeys: 1, lua: QUOTA_LUA });
  }
  return {
    async add(key, amount, limit, block, ttlSeconds) {
      const [allowed, before, after] = await redis.mtpaasQuotaAdd(
        key,
        Math.ceil(amount),
        limit === null ? -1 : limit,
        block ? '1' : '0',
        Math.ceil(ttlSeconds),
      );
      return { allowed: allowed === 1, before, after };
    },
    async get(key) {
      return Number((await redis.get(key)) ?? 0);
    },
  };
}

/** Quota counters in process memory (single instance, tests). */
export function createMemoryQuotaStore(options: { now?: () => number } = {}): QuotaStore {
  const now = options.now ?? Date.now;
  const counters = new Map<string, { value: number; expiresAt: number }>();
  function read(key: string): number {
    const entry = counters.get(key);
    if (entry === undefined) return 0;
    if (entry.expiresAt <= now()) {
      counters.delete(key);
      return 0;
    }
    return entry.value;
  }
  return {
    async add(key, amount, limit, block, ttlSeconds) {
      const before = read(key);
      const rounded = Math.ceil(amount);
      if (block && limit !== null && before + rounded > limit)
        return { allowed: false, before, after: before };
      const existing = counters.get(key);
      const expiresAt =
        existing !== undefined && before > 0
          ? existing.expiresAt
          : ttlSeconds > 0
            ? now() + ttlSeconds * 1000
            : Number.POSITIVE_INFINITY;
      counters.set(key, { value: before + rounded, expiresAt });
      return { allowed: true, before, after: before + rounded };
    },
    async get(key) {
      return read(key);
    },
  };
}

/** Start and end of the quota period containing `at` (UTC). `never` has no end. */
export function quotaPeriod(
  period: QuotaPeriod,
  at: Date,
): { start: Date; end: Date | undefined; key: string } {
  const y = at.getUTCFullYear();
  const m = at.getUTCMonth();
  const d = at.getUTCDate();
  const h = at.getUTCHours();
  let start: Date;
  let end: Date | undefined;
  switch (period) {
    case 'hourly':
      start = new Date(Date.UTC(y, m, d, h));
      end = new Date(Date.UTC(y, m, d, h + 1));
      break;
    case 'daily':
      start = new Date(Date.UTC(y, m, d));
      end = new Date(Date.UTC(y, m, d + 1));
      break;
    case 'monthly':
      start = new Date(Date.UTC(y, m, 1));
      end = new Date(Date.UTC(y, m + 1, 1));
      break;
    case 'never':
      return { start: new Date(0), end: undefined, key: 'all' };
  }
  const key = start.toISOString().slice(0, 13).replace(/[-T]/g, '');
  return { start, end, key };
}

/** A quota event: a soft limit (80 / 90 / 95 %) or the limit itself reached, once per period. */
export interface QuotaEvent {
  type: 'quota.threshold' | 'quota.exceeded';
  tenantId: TenantId;
  meter: string;
  /** Threshold crossed, in percent (80, 90, 95, 100). */
  percent: number;
  used: number;
  limit: number;
  enforcement: QuotaLimit['enforcement'];
  periodStart: string;
}

/** What {@link QuotaMeter.consume} decided. */
export interface QuotaDecision {
  allowed: boolean;
  /** True when the limit is passed under `throttle`: the caller slows the tenant down. */
  throttled: boolean;
  used: number;
  limit: number | null;
  /** Seconds until the period resets (for `Retry-After`). */
  resetSeconds: number | undefined;
}

/** Options of {@link createQuotaMeter}. */
export interface QuotaMeterOptions {
  store: QuotaStore;
  /** Receives the usage this instance metered, every `flushIntervalMs`. */
  usageSink?: UsageSink;
  /** @default 10_000 (ms). A crash loses at most this much metered usage of this instance. */
  flushIntervalMs?: number;
  /** Soft-limit thresholds as fractions. @default [0.8, 0.9, 0.95] */
  thresholds?: readonly number[];
  /** Called once per period per crossed threshold (across all instances sharing the store). */
  onEvent?: (event: QuotaEvent) => void;
  /** Called when a flush fails (the records are retried on the next flush). */
  onFlushError?: (error: unknown) => void;
  /** Key prefix. @default 'mtpaas' */
  keyPrefix?: string;
  /** Names this instance in idempotency keys. @default a random UUID */
  instanceId?: string;
  /** @default () => new Date() */
  now?: () => Date;
}

/** One quota charge before it reaches the store: what to add to which counter (see {@link QuotaMeter.prepare}). */
export interface QuotaCharge {
  readonly tenantId: TenantId;
  readonly meter: string;
  readonly quota: QuotaLimit;
  readonly amount: number;
  /** The counter of the running period (`tenantKey(prefix, tenantId, 'q', meter, period)`). */
  readonly key: string;
  /** Whether the store refuses an amount that would pass the limit (`block` enforcement with a limit). */
  readonly block: boolean;
  /** TTL of a new counter (end of period + 1 day); 0 for `never`. */
  readonly ttlSeconds: number;
  readonly resetSeconds: number | undefined;
  readonly periodStart: string;
}

/** Counts usage against quotas and ships it to the usage ledger. */
export interface QuotaMeter {
  consume(tenantId: TenantId, meter: string, quota: QuotaLimit, amount?: number): Promise<QuotaDecision>;
  /**
   * The first half of `consume`: the counter and arguments of a charge, without touching the store. A
   * caller that reaches the store its own way (the pipeline's one-round-trip Redis script) runs
   * `store.add(charge.key, charge.amount, charge.quota.limit, charge.block, charge.ttlSeconds)` and hands
   * the result to {@link QuotaMeter.settle}.
   */
  prepare(tenantId: TenantId, meter: string, quota: QuotaLimit, amount?: number): QuotaCharge;
  /** The second half of `consume`: soft-limit events, usage for the ledger, and the decision. */
  settle(charge: QuotaCharge, result: QuotaCounterResult): QuotaDecision;
  /** Current usage in the running period. */
  usage(tenantId: TenantId, meter: string, period: QuotaPeriod): Promise<number>;
  /** Sends pending usage to the sink now. */
  flush(): Promise<void>;
  /** Flushes and stops the timer. */
  close(): Promise<void>;
}

/**
 * Throws `INTERNAL` (a caller bug: never admit on it) unless `amount` is a non-negative safe integer.
 * A negative amount would refund the quota, `NaN` or `Infinity` would break the counter.
 */
export function assertUsageAmount(meter: string, amount: unknown): asserts amount is number {
  if (typeof amount === 'number' && Number.isSafeInteger(amount) && amount >= 0) return;
  throw new MtPaasError(
    'INTERNAL',
    `Usage of "${meter}" must be a non-negative whole number, got ${String(amount).slice(0, 32)}; round token counts before metering them.`,
    { details: { meter } },
  );
}

/**
 * Quota metering: an atomic check-and-add per request on a shared counter (Redis or memory), soft
 * limit events once per period, and the metered usage flushed to the `UsageSink` every
 * `flushIntervalMs` with idempotency keys (a failed flush is retried with the same keys).
 */
export function createQuotaMeter(options: QuotaMeterOptions): QuotaMeter {
  const prefix = options.keyPrefix ?? REDIS_KEY_PREFIX;
  const thresholds = [...(options.thresholds ?? [0.8, 0.9, 0.95])].sort((a, b) => a - b);
  const now = options.now ?? (() => new Date());
  const instanceId = options.instanceId ?? randomUUID();
  const pending = new Map<string, UsageRecord>();
  let retry: UsageRecord[] = [];
  let sequence = 0;
  let flushing: Promise<void> | undefined;
  const timer =
    options.usageSink === undefined
      ? undefined
      : setInterval(() => {
          void flush().catch(() => {});
        }, options.flushIntervalMs ?? 10_000);
  timer?.unref();

  function remember(
    tenantId: TenantId,
    meter: string,
    periodStart: string,
    quantity: number,
    overage: boolean,
  ) {
    if (options.usageSink === undefined || quantity <= 0) return;
    const key = `${tenantId}\u0000${meter}\u0000${periodStart}\u0000${overage ? 1 : 0}`;
    const existing = pending.get(key);
    if (existing !== undefined) {
      existing.quantity += quantity;
      existing.at = now();
      return;
    }
    pending.set(key, {
      tenantId,
      meter,
      quantity,
      at: now(),
      periodStart,
      idempotencyKey: '',
      ...(overage ? { attributes: { overage: 'true' } } : {}),
    });
  }

  async function flush(): Promise<void> {
    if (options.usageSink === undefined) return;
    if (flushing !== undefined) return flushing;
    const sink = options.usageSink;
    flushing = (async () => {
      sequence++;
      const batch = [...retry];
      for (const record of pending.values()) {
        batch.push({
          ...record,
          idempotencyKey: `${instanceId}:${sequence}:${record.tenantId}:${record.meter}:${record.periodStart}:${record.attributes?.overage === 'true' ? 'o' : 'n'}`,
        });
      }
      pending.clear();
      retry = [];
      if (batch.length === 0) return;
      try {
        await sink.record(batch);
      } catch (error) {
        retry = batch;
        options.onFlushError?.(error);
        throw error;
      }
    })().finally(() => {
      flushing = undefined;
    });
    return flushing;
  }

  /** The running period of each kind, kept until it ends (a period is computed once, not per request). */
  const periods = new Map<
    QuotaPeriod,
    { startMs: number; endMs: number | undefined; key: string; startIso: string; end: Date | undefined }
  >();
  function periodAt(kind: QuotaPeriod, at: Date) {
    const atMs = at.getTime();
    const cached = periods.get(kind);
    if (cached !== undefined && atMs >= cached.startMs && (cached.endMs === undefined || atMs < cached.endMs))
      return cached;
    const period = quotaPeriod(kind, at);
    const fresh = {
      startMs: period.start.getTime(),
      endMs: period.end?.getTime(),
      key: period.key,
      startIso: period.start.toISOString(),
      end: period.end,
    };
    periods.set(kind, fresh);
    return fresh;
  }

  function prepare(tenantId: TenantId, meter: string, quota: QuotaLimit, amount = 1): QuotaCharge {
    assertUsageAmount(meter, amount);
    const at = now();
    const period = periodAt(quota.period, at);
    return {
      tenantId,
      meter,
      quota,
      amount,
      key: tenantKey(prefix, tenantId, 'q', meter, period.key),
      block: quota.enforcement === 'block' && quota.limit !== null,
      ttlSeconds: period.end === undefined ? 0 : (period.end.getTime() - at.getTime()) / 1000 + 86_400,
      resetSeconds:
        period.end === undefined
          ? undefined
          : Math.max(1, Math.ceil((period.end.getTime() - at.getTime()) / 1000)),
      periodStart: period.startIso,
    };
  }

  function settle(charge: QuotaCharge, result: QuotaCounterResult): QuotaDecision {
    const { tenantId, meter, quota, amount, resetSeconds, periodStart } = charge;
    if (!result.allowed) {
      return { allowed: false, throttled: false, used: result.after, limit: quota.limit, resetSeconds };
    }
    const limit = quota.limit;
    let overageAmount = 0;
    if (limit !== null) {
      overageAmount = Math.max(0, result.after - Math.max(limit, result.before));
      for (const fraction of [...thresholds, 1]) {
        const mark = fraction * limit;
        if (result.before < mark && result.after >= mark) {
          options.onEvent?.({
            type: fraction >= 1 ? 'quota.exceeded' : 'quota.threshold',
            tenantId,
            meter,
            percent: Math.round(fraction * 100),
            used: result.after,
            limit,
            enforcement: quota.enforcement,
            periodStart,
          });
        }
      }
    }
    if (quota.enforcement === 'overage' && overageAmount > 0) {
      remember(tenantId, meter, periodStart, amount - overageAmount, false);
      remember(tenantId, meter, periodStart, overageAmount, true);
    } else {
      remember(tenantId, meter, periodStart, amount, false);
    }
    const over = limit !== null && result.after > limit;
    return {
      allowed: true,
      throttled: over && quota.enforcement === 'throttle',
      used: result.after,
      limit,
      resetSeconds,
    };
  }

  return {
    async consume(tenantId, meter, quota, amount = 1) {
      const charge = prepare(tenantId, meter, quota, amount);
      const result = await options.store.add(
        charge.key,
        charge.amount,
        quota.limit,
        charge.block,
        charge.ttlSeconds,
      );
      return settle(charge, result);
    },
    prepare,
    settle,
    async usage(tenantId, meter, period) {
      const current = quotaPeriod(period, now());
      return options.store.get(tenantKey(prefix, tenantId, 'q', meter, current.key));
    },
    flush,
    async close() {
      if (timer !== undefined) clearInterval(timer);
      await flush().catch(() => {});
    },
  };
}

/** The refusal for a used-up `block` quota. */
export function quotaExceededError(tenantId: TenantId, meter: string, decision: QuotaDecision): MtPaasError {
  return new MtPaasError(
    'QUOTA_EXCEEDED',
    `Tenant "${tenantId}" used its ${meter} quota (${decision.limit}); it resets ${
      decision.resetSeconds === undefined ? 'never — raise the plan limit' : `in ${decision.resetSeconds} s`
    }. Upgrade the plan in the marketplace for more.`,
    {
      details: { meter, limit: decision.limit, used: decision.used },
      ...(decision.resetSeconds === undefined ? {} : { retryAfterSeconds: decision.resetSeconds }),
    },
  );
}
