import {
  type Entitlements,
  isMtPaasError,
  MtPaasError,
  type QuotaLimit,
  type TenantId,
  type UsageSink,
} from '@mt-paas/context';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { RequestPrincipal, RoutePolicy } from './http-types.js';
import type { FailMode, QuotaOptions, RateLimitOptions } from './pipeline-options.js';
import {
  assertUsageAmount,
  createMemoryQuotaStore,
  createQuotaMeter,
  createRedisQuotaStore,
  type QuotaCounterResult,
  type QuotaDecision,
  type QuotaMeter,
  type QuotaStore,
  quotaExceededError,
} from './quota.js';
import {
  createMemoryRateLimitStore,
  createRedisRateLimitStore,
  type RateLimitDecision,
  type RateLimitStore,
  rateLimitHeaders,
} from './rate-limiter.js';
import { waitUntilReady } from './redis-client.js';
import { safeKeyPart, tenantKey } from './redis-keys.js';
import { createRedisLimits, type RedisLimits } from './redis-limits.js';
import { clientSafe } from './server-faults.js';

const MINUTE_MS = 60_000;

/** The limits stage: the per-tenant rate limit and quota metering, with their store outages handled. */
export interface LimitsStage {
  /**
   * The rate limit and the request's quota of an admitted request, as its policy asks: one Redis round trip
   * when both live on the same client. Returns the `RateLimit-*` headers to answer with; throws
   * `RATE_LIMITED` / `QUOTA_EXCEEDED` (with those headers on the error) or, under `failMode: 'closed'`, 503.
   */
  charge(
    tenantId: TenantId,
    entitlements: Entitlements,
    principal: RequestPrincipal,
    policy: RoutePolicy,
  ): Record<string, string> | undefined | Promise<Record<string, string> | undefined>;
  /** Meters `amount` on any meter for the tenant (`pipeline.consume`). */
  consume(
    tenantId: TenantId,
    entitlements: Entitlements,
    meter: string,
    amount: number,
  ): Promise<QuotaDecision | undefined>;
  quotas: QuotaMeter | undefined;
  /** Whether requests must still wait for {@link LimitsStage.whenReady} (a Redis client, not yet ready or timed out). */
  readonly mustWait: boolean;
  /** One bounded wait for the Redis clients to connect (shared by every caller). */
  whenReady(): Promise<void>;
  close(): Promise<void>;
}

/** A store failure decided per call (open: `undefined`, closed: a 503), logged once per outage. */
interface OutageGuard {
  run<T>(call: () => Promise<T>): Promise<T | undefined>;
  /** Decides a failure of a call made outside {@link OutageGuard.run}. */
  failed(error: unknown): undefined;
  recovered(): void;
}

function outageGuard(component: string, failMode: FailMode, logger: Logger): OutageGuard {
  let down = false;
  const guard: OutageGuard = {
    async run(call) {
      let result: Awaited<ReturnType<typeof call>>;
      try {
        result = await call();
      } catch (error) {
        return guard.failed(error);
      }
      guard.recovered();
      return result;
    },
    failed(error) {
      if (isMtPaasError(error)) throw error;
      if (!down) {
        down = true;
        logger.error(
          { component, err: error },
          `${component} store unavailable; failing ${failMode} until it is back (logged once per outage)`,
        );
      }
      if (failMode === 'open') return undefined;
      throw clientSafe(
        new MtPaasError('SERVICE_UNAVAILABLE', `The ${component} is unavailable; retry in a few seconds.`, {
          cause: error,
          retryAfterSeconds: 5,
        }),
      );
    },
    recovered() {
      if (!down) return;
      down = false;
      logger.info({ component }, `${component} store is reachable again`);
    },
  };
  return guard;
}

function rateLimited(tenantId: TenantId, decision: RateLimitDecision): MtPaasError {
  return new MtPaasError(
    'RATE_LIMITED',
    `Tenant "${tenantId}" sent more than ${decision.limit} requests per minute; retry in ${decision.retryAfterSeconds} s.`,
    {
      details: { limit: decision.limit },
      retryAfterSeconds: decision.retryAfterSeconds,
      headers: rateLimitHeaders(decision, 60),
    },
  );
}

/** rpm 0 means no requests at all (null is unlimited): refused without asking the store. */
function noRequestsAllowed(tenantId: TenantId): MtPaasError {
  const none: RateLimitDecision = {
    allowed: false,
    limit: 0,
    remaining: 0,
    resetSeconds: 60,
    retryAfterSeconds: 60,
  };
  return new MtPaasError(
    'RATE_LIMITED',
    `Tenant "${tenantId}" has a rate limit of 0 requests per minute; upgrade the plan or ask its administrator.`,
    { details: { limit: 0 }, retryAfterSeconds: 60, headers: rateLimitHeaders(none, 60) },
  );
}

/**
 * Builds the limits stage from the pipeline's `rateLimit` and `quota` options: stores (Redis when a client
 * is given, else in-process), the quota meter, and the combined one-script path when both options name the
 * same Redis client and neither gives its own store.
 */
export function createLimitsStage(stage: {
  rateLimit: RateLimitOptions | undefined;
  quota: QuotaOptions | undefined;
  defaultRpm: number | null;
  throttleRpm: number;
  keyPrefix: string;
  usageSink: UsageSink | undefined;
  storeStartTimeoutMs: number;
  logger: Logger;
  now: () => Date;
}): LimitsStage {
  const { rateLimit, quota, logger, keyPrefix: prefix, throttleRpm } = stage;
  const rateEnabled = rateLimit?.enabled ?? true;
  const rateStore: RateLimitStore | undefined = !rateEnabled
    ? undefined
    : (rateLimit?.store ??
      (rateLimit?.redis !== undefined
        ? createRedisRateLimitStore({ redis: rateLimit.redis })
        : createMemoryRateLimitStore()));
  const quotaEnabled = quota?.enabled ?? true;
  const quotaStore: QuotaStore | undefined = !quotaEnabled
    ? undefined
    : (quota?.store ??
      (quota?.redis !== undefined
        ? createRedisQuotaStore({ redis: quota.redis })
        : createMemoryQuotaStore()));
  const quotas =
    quotaStore === undefined
      ? undefined
      : createQuotaMeter({
          store: quotaStore,
          keyPrefix: prefix,
          ...(stage.usageSink === undefined ? {} : { usageSink: stage.usageSink }),
          ...(quota?.flushIntervalMs === undefined ? {} : { flushIntervalMs: quota.flushIntervalMs }),
          ...(quota?.thresholds === undefined ? {} : { thresholds: quota.thresholds }),
          onEvent: (event) => {
            logger.warn(
              { quota: event },
              `Quota ${event.meter} of ${event.tenantId} reached ${event.percent}%`,
            );
            quota?.onEvent?.(event);
          },
          onFlushError: (error) =>
            logger.error({ err: error }, 'Usage flush failed; retrying on the next flush'),
          now: stage.now,
        });
  const requestMeter = quota?.requestMeter ?? 'api_requests';
  const perUser = rateLimit?.perUser === true;
  // One script for both when they share one Redis client and use the stores this stage built.
  const combined: RedisLimits | undefined =
    rateStore !== undefined &&
    quotas !== undefined &&
    rateLimit?.store === undefined &&
    quota?.store === undefined &&
    rateLimit?.redis !== undefined &&
    rateLimit.redis === quota?.redis
      ? createRedisLimits(rateLimit.redis)
      : undefined;

  const inProcess = [
    rateEnabled && rateLimit?.store === undefined && rateLimit?.redis === undefined
      ? 'rate limits'
      : undefined,
    quotaEnabled && quota?.store === undefined && quota?.redis === undefined ? 'quotas' : undefined,
  ].filter((part) => part !== undefined);
  if (inProcess.length > 0) {
    logger.info(
      `In-process ${inProcess.join(' and ')}: correct for a single instance only; give rateLimit.redis / quota.redis when running several.`,
    );
  }
  for (const redis of [rateLimit?.redis, quota?.redis]) {
    if (redis !== undefined && redis.options.enableOfflineQueue !== false) {
      logger.warn(
        'The Redis client queues commands while disconnected (enableOfflineQueue), so an outage stalls requests instead of failing fast; build it with createRedisClient().',
      );
      break;
    }
  }

  const storeClients: Redis[] = [
    ...new Set([rateLimit?.redis, quota?.redis].filter((redis) => redis !== undefined)),
  ];
  let ready: Promise<void> | undefined;
  let waited = storeClients.length === 0;
  function whenReady(): Promise<void> {
    ready ??= Promise.all(storeClients.map((redis) => waitUntilReady(redis, stage.storeStartTimeoutMs))).then(
      (states) => {
        waited = true;
        if (states.every(Boolean)) return;
        logger.error(
          { component: 'redis', timeoutMs: stage.storeStartTimeoutMs },
          `Redis did not connect within ${stage.storeStartTimeoutMs} ms; rate limits and quotas now follow their failMode until it does`,
        );
      },
    );
    return ready;
  }

  const guardRate = outageGuard('rate limit', rateLimit?.failMode ?? 'open', logger);
  const guardQuota = outageGuard('quota', quota?.failMode ?? 'open', logger);

  /** The rpm to enforce, `undefined` for none (unlimited or off). */
  function rpmOf(tenantId: TenantId, entitlements: Entitlements): number | undefined {
    if (rateStore === undefined) return undefined;
    const rpm = entitlements.limits.rpm;
    if (rpm === null) return undefined;
    if (!Number.isSafeInteger(rpm) || rpm < 0) {
      throw new MtPaasError(
        'CONFIG_INVALID',
        `Tenant "${tenantId}" has rpm ${String(rpm)}; an rpm is a whole number ≥ 0, or null for unlimited. Fix its plan or entitlements.`,
      );
    }
    if (rpm === 0) throw noRequestsAllowed(tenantId);
    return rpm;
  }

  function rateKey(tenantId: TenantId, principal: RequestPrincipal): string {
    return perUser && principal.user !== undefined
      ? tenantKey(prefix, tenantId, 'rl', 'u', safeKeyPart(principal.user.id))
      : tenantKey(prefix, tenantId, 'rl');
  }

  /** After the quota counter answered: refusal, throttle, or the decision. */
  async function quotaOutcome(
    tenantId: TenantId,
    meterName: string,
    decision: QuotaDecision,
  ): Promise<QuotaDecision> {
    if (!decision.allowed) throw quotaExceededError(tenantId, meterName, decision);
    if (decision.throttled && rateStore !== undefined) {
      const throttle = await guardRate.run(() =>
        rateStore.consume(tenantKey(prefix, tenantId, 'qt', meterName), throttleRpm, MINUTE_MS, 1),
      );
      if (throttle !== undefined && !throttle.allowed) {
        throw new MtPaasError(
          'QUOTA_EXCEEDED',
          `Tenant "${tenantId}" is past its ${meterName} quota and throttled to ${throttleRpm} requests per minute; retry in ${throttle.retryAfterSeconds} s or upgrade the plan.`,
          {
            details: { meter: meterName, limit: decision.limit, used: decision.used },
            retryAfterSeconds: throttle.retryAfterSeconds,
            headers: rateLimitHeaders(throttle, 60),
          },
        );
      }
    }
    return decision;
  }

  async function meter(
    tenantId: TenantId,
    entitlements: Entitlements,
    meterName: string,
    amount: number,
  ): Promise<QuotaDecision | undefined> {
    if (quotas === undefined) return undefined;
    const limit = entitlements.limits.quotas[meterName];
    if (limit === undefined) return undefined;
    const decision = await guardQuota.run(() => quotas.consume(tenantId, meterName, limit, amount));
    if (decision === undefined) return undefined;
    return quotaOutcome(tenantId, meterName, decision);
  }

  return {
    quotas,
    get mustWait() {
      return !waited;
    },
    whenReady,
    charge(tenantId, entitlements, principal, policy) {
      const rpm = policy.rateLimit === false ? undefined : rpmOf(tenantId, entitlements);
      let meterName: string | undefined;
      let cost = 1;
      if (policy.quota !== false) {
        meterName = typeof policy.quota === 'object' ? policy.quota.meter : requestMeter;
        cost = typeof policy.quota === 'object' ? (policy.quota.cost ?? 1) : 1;
        assertUsageAmount(meterName, cost);
      }
      const limit =
        meterName === undefined || quotas === undefined ? undefined : entitlements.limits.quotas[meterName];
      // Nothing to decide (no rpm, no quota on this meter): answered without waiting.
      if (rpm === undefined && limit === undefined) return undefined;
      return decide(tenantId, entitlements, principal, rpm, meterName, cost, limit);
    },
    consume(tenantId, entitlements, meterName, amount) {
      assertUsageAmount(meterName, amount);
      return meter(tenantId, entitlements, meterName, amount);
    },
    async close() {
      await quotas?.close();
    },
  };

  async function decide(
    tenantId: TenantId,
    entitlements: Entitlements,
    principal: RequestPrincipal,
    rpm: number | undefined,
    meterName: string | undefined,
    cost: number,
    limit: QuotaLimit | undefined,
  ): Promise<Record<string, string> | undefined> {
    if (combined !== undefined && rpm !== undefined && limit !== undefined && meterName !== undefined) {
      const charge = quotas!.prepare(tenantId, meterName, limit, cost);
      let result: Awaited<ReturnType<RedisLimits['consume']>> | undefined;
      try {
        result = await combined.consume(
          { key: rateKey(tenantId, principal), limit: rpm, periodMs: MINUTE_MS, cost: 1 },
          { ...charge, limit: limit.limit },
        );
      } catch (error) {
        // As if the two calls had failed one after the other: each follows its own failMode.
        guardRate.failed(error);
        guardQuota.failed(error);
        return undefined;
      }
      guardRate.recovered();
      guardQuota.recovered();
      if (!result.rate.allowed) throw rateLimited(tenantId, result.rate);
      const headers = rateLimitHeaders(result.rate, 60);
      const settled = quotas!.settle(charge, result.quota as QuotaCounterResult);
      // Only a refusal or a throttle needs quotaOutcome (a throttle asks Redis again): the common case
      // returns without another async call and its extra microtask.
      if (!settled.allowed || (settled.throttled && rateStore !== undefined)) {
        await quotaOutcome(tenantId, meterName, settled);
      }
      return headers;
    }

    let headers: Record<string, string> | undefined;
    if (rpm !== undefined && rateStore !== undefined) {
      const decision = await guardRate.run(() =>
        rateStore.consume(rateKey(tenantId, principal), rpm, MINUTE_MS, 1),
      );
      if (decision !== undefined) {
        if (!decision.allowed) throw rateLimited(tenantId, decision);
        headers = rateLimitHeaders(decision, 60);
      }
    }
    if (meterName !== undefined) await meter(tenantId, entitlements, meterName, cost);
    return headers;
  }
}
