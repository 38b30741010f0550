import { randomUUID } from 'node:crypto';
import type {
  AuditEvent,
  AuditSink,
  Entitlements,
  Tenant,
  TenantDirectory,
  TenantEventBus,
  TenantId,
  TenantUser,
  UsageSink,
} from '@mt-paas/context';
import { createTenantContext, isMtPaasError, MtPaasError, tenantIdProblem } from '@mt-paas/context';
import type { Redis } from 'ioredis';
import { type Logger, pino } from 'pino';
import { type ApiKeyAuthOptions, type ApiKeyVerifier, createApiKeyVerifier } from './api-key-auth.js';
import { readableBody } from './body-guard.js';
import {
  assertFeature,
  assertPlan,
  createEntitlementsResolver,
  DEFAULT_PLAN_ORDER,
  type EntitlementsResolverOptions,
} from './entitlements.js';
import { assertRoles } from './guards.js';
import {
  type AdmittedRequest,
  type AuthRequirement,
  type ErrorResponse,
  headerValue,
  type PipelineRequest,
  type RequestPrincipal,
  type RouteMatching,
  type RoutePolicy,
} from './http-types.js';
import {
  bearerToken,
  createJwtVerifier,
  type JwtAuthOptions,
  type JwtVerifier,
  type VerifiedToken,
} from './jwt-auth.js';
import { createPipelineMetrics, type PipelineMetrics, type PipelineMetricsOptions } from './metrics.js';
import {
  assertUsageAmount,
  createMemoryQuotaStore,
  createQuotaMeter,
  createRedisQuotaStore,
  type QuotaDecision,
  type QuotaEvent,
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
import { REDIS_KEY_PREFIX, safeKeyPart, tenantKey } from './redis-keys.js';
import { matchesRule, type RouteRule } from './route-rules.js';
import { clientSafe, isClientSafe, serverFaultMessage } from './server-faults.js';
import { checkTenantStatus } from './status-gate.js';
import { type CachedDirectory, createCachedDirectory } from './tenant-cache.js';
import {
  collectCandidates,
  identityHeaderNames,
  normalizeHost,
  type ResolutionStrategy,
  refuseRepeatedHeaders,
  type TenantCandidate,
} from './tenant-resolver.js';

export type { RouteRule } from './route-rules.js';

/** Options of {@link createTenantPipeline}. */
export interface TenantPipelineOptions {
  /** Where tenants are looked up (the `@mt-paas/db` catalog). */
  directory: TenantDirectory;
  /** Cache invalidation across instances (`createRedisEventBus` / `createInProcessEventBus`). */
  events?: TenantEventBus;
  /** Receives metered usage (the usage ledger). */
  usageSink?: UsageSink;
  /** Receives security events (cross-tenant attempts). */
  auditSink?: AuditSink;
  /**
   * Resolution strategies, in order.
   * @default [{ type: 'header' }, { type: 'jwt-claim' }]
   */
  strategies?: readonly ResolutionStrategy[];
  /** A tenant used when a request names none (the seed's `hltutor`). Off by default. */
  defaultTenant?: string;
  /** Directory cache. @default { max: 10_000, ttlMs: 60_000, negativeTtlMs: 5_000 } */
  cache?: { max?: number; ttlMs?: number; negativeTtlMs?: number };
  /** JWT verification (jose). Without it, bearer tokens are refused on `jwt` routes. */
  jwt?: JwtAuthOptions;
  /** API keys for service-to-service and marketplace routes. */
  apiKeys?: ApiKeyAuthOptions;
  /** Auth of routes that set none. @default 'optional' */
  defaultAuth?: AuthRequirement;
  /** Grace after `expiresAt` when a tenant has no `graceUntil` (seed: 24 h). @default 0 */
  gracePeriodMs?: number;
  /** Plan order for `plan` requirements, lowest first. @default ['free', 'starter', 'professional', 'enterprise'] */
  planOrder?: readonly string[];
  /** How effective entitlements are built. @default the tenant's own entitlements */
  entitlements?: EntitlementsResolverOptions;
  /** Rate limiting per tenant from the plan's `rpm`. */
  rateLimit?: {
    /** @default true */
    enabled?: boolean;
    /** A store; or give `redis`. @default an in-process store */
    store?: RateLimitStore;
    /** An ioredis client (use `createRedisClient` for fail-fast settings). */
    redis?: Redis;
    /**
     * Requests per minute of the base entitlements layer (seed `default_rpm`); a plan default or the
     * tenant's own `limits.rpm` overrides it (`null` there = unlimited). @default 60
     */
    defaultRpm?: number | null;
    /** Limit per tenant + user instead of per tenant. @default false */
    perUser?: boolean;
    /** When the store fails: `open` admits, `closed` refuses with 503. @default 'open' */
    failMode?: 'open' | 'closed';
  };
  /** Quota metering. */
  quota?: {
    /** @default true */
    enabled?: boolean;
    store?: QuotaStore;
    redis?: Redis;
    /** Meter counted once per request. @default 'api_requests' */
    requestMeter?: string;
    /** How often metered usage goes to `usageSink`. @default 10_000 (ms) */
    flushIntervalMs?: number;
    /** Soft-limit fractions. @default [0.8, 0.9, 0.95] */
    thresholds?: readonly number[];
    /** Soft-limit and exceeded events (once per period). */
    onEvent?: (event: QuotaEvent) => void;
    /** Requests per minute allowed to a tenant past a `throttle` quota. @default 6 */
    throttleRpm?: number;
    /** @default 'open' */
    failMode?: 'open' | 'closed';
  };
  /** Route policies by path (Fastify also reads `config.mtPaas` of each route). */
  routes?: readonly RouteRule[];
  /** Body fields checked by the body guard. @default ['tenantId', 'tenant_id'] */
  bodyGuardFields?: readonly string[];
  /** pino logger; a child per request carries `tenantId` and `requestId`. @default pino({ level: 'info' }) */
  logger?: Logger;
  /** prom-client metrics; `false` disables. @default a fresh registry */
  metrics?: PipelineMetricsOptions | false;
  /** Log one line per finished request (status, route template, duration) on the request's logger. @default true */
  logRequests?: boolean;
  /** Header that carries the request id. @default 'x-request-id' */
  requestIdHeader?: string;
  /** Redis key prefix. @default 'mtpaas' */
  keyPrefix?: string;
  /**
   * How long `start()` — and requests that arrive before it finished — wait for the Redis clients of
   * `rateLimit.redis` / `quota.redis` to connect. A client that is still connecting is not an outage:
   * no request is decided (opened or closed) before it is ready or this time has passed; after that,
   * `failMode` applies. @default 5000 (ms)
   */
  storeStartTimeoutMs?: number;
  /** @default () => new Date() */
  now?: () => Date;
}

/** An admitted request plus its logger. */
export interface PipelineAdmission extends AdmittedRequest {
  logger: Logger;
  startedAt: number;
}

/** The framework-agnostic request pipeline. */
export interface TenantPipeline {
  /** Resolve → authenticate → admit. Throws an `MtPaasError` on refusal. */
  admit(request: PipelineRequest, policy?: RoutePolicy): Promise<PipelineAdmission>;
  /**
   * The body guard: throws `CROSS_TENANT_ACCESS` when the body names another tenant. `body` is what the
   * framework parsed, or the raw text / bytes (read as JSON, else as a urlencoded form, whatever the
   * content type claims: the app can read it that way too).
   */
  checkBody(admission: PipelineAdmission, body: unknown): Promise<void>;
  /**
   * Policy of a route from `routes` (first match). `path` is the path the framework routes on (see
   * `PipelineRequest.routePath`), compared the way the framework compares (`matching`).
   */
  policyFor(method: string, path: string, matching?: RouteMatching): RoutePolicy | undefined;
  /** Turns any thrown value into an HTTP error response (5xx only for real faults). */
  errorResponse(error: unknown, request?: { requestId?: string; logger?: Logger }): ErrorResponse;
  /** Records metrics and a log line for a finished request. */
  finish(
    admission: PipelineAdmission | undefined,
    outcome: { status: number; route: string | undefined; startedAt?: number },
  ): void;
  /** Meters usage on any meter (e.g. `llm_tokens`) for the admitted tenant. */
  consume(admission: PipelineAdmission, meter: string, amount: number): Promise<QuotaDecision | undefined>;
  /** The cached directory (invalidate, stats). */
  directory: CachedDirectory;
  quotas: QuotaMeter | undefined;
  metrics: PipelineMetrics | undefined;
  logger: Logger;
  /** Subscribes to tenant events; call once before serving (adapters do). */
  start(): Promise<void>;
  /** Flushes usage, stops listening. */
  close(): Promise<void>;
}

const REQUEST_ID_PATTERN = /^[A-Za-z0-9._:-]{1,128}$/;

/** How a client uses one strategy, for error messages (`the X-Tenant-ID header`). */
function describeStrategy(strategy: ResolutionStrategy, tenantClaim: string): string {
  switch (strategy.type) {
    case 'header':
      return `the ${strategy.name ?? 'X-Tenant-ID'} header`;
    case 'subdomain':
      return strategy.baseDomain === undefined
        ? 'the tenant subdomain'
        : `the tenant subdomain (<tenant>.${strategy.baseDomain})`;
    case 'custom-domain':
      return "the tenant's own domain";
    case 'jwt-claim':
      return `a bearer token with a "${strategy.claim ?? tenantClaim}" claim`;
    case 'query':
      return `the ?${strategy.name ?? 'tenant'}= query parameter`;
    case 'cookie':
      return `the ${strategy.name ?? 'tenant_id'} cookie`;
    case 'path-prefix':
      return `a path starting ${strategy.prefix ?? '/t/'}<tenant>/`;
  }
}

/**
 * Builds the request pipeline every adapter runs:
 * resolve tenant id (ordered strategies, all sources must agree) → grammar → cached lookup →
 * authenticate (JWT / API key; the token's tenant claim must equal the resolved id) → status gate →
 * roles / features / plan → rate limit → quota → tenant context.
 *
 * @example
 * const pipeline = createTenantPipeline({ directory, strategies: [{ type: 'header' }] });
 * const admission = await pipeline.admit({ method: 'GET', path: '/courses', headers });
 */
export function createTenantPipeline(options: TenantPipelineOptions): TenantPipeline {
  const logger = options.logger ?? pino({ level: 'info' });
  const now = options.now ?? (() => new Date());
  const prefix = options.keyPrefix ?? REDIS_KEY_PREFIX;
  const strategies = options.strategies ?? [{ type: 'header' }, { type: 'jwt-claim' }];
  const planOrder = options.planOrder ?? DEFAULT_PLAN_ORDER;
  const bodyFields = options.bodyGuardFields ?? ['tenantId', 'tenant_id'];
  const requestIdHeader = (options.requestIdHeader ?? 'x-request-id').toLowerCase();
  const defaultAuth = options.defaultAuth ?? 'optional';

  if (options.defaultTenant !== undefined) {
    const problem = tenantIdProblem(options.defaultTenant);
    if (problem !== undefined) {
      throw new MtPaasError(
        'CONFIG_INVALID',
        `defaultTenant "${options.defaultTenant}" is not a tenant id: ${problem}.`,
      );
    }
  }
  const directory = createCachedDirectory({
    directory: options.directory,
    ...(options.events === undefined ? {} : { events: options.events }),
    ...options.cache,
  });
  const claimStrategy = strategies.find((strategy) => strategy.type === 'jwt-claim');
  const hasClaimStrategy = claimStrategy !== undefined;
  const tenantClaimName = options.jwt?.tenantClaim ?? claimStrategy?.claim ?? 'tenant_id';
  /** What a client can do to name its tenant, from the strategies actually configured. */
  const strategyList = strategies
    .map((strategy) => describeStrategy(strategy, tenantClaimName))
    .join(', or ');
  const jwt: JwtVerifier | undefined =
    options.jwt === undefined
      ? undefined
      : createJwtVerifier({ ...options.jwt, tenantClaim: tenantClaimName });
  const apiKeys: ApiKeyVerifier | undefined =
    options.apiKeys === undefined ? undefined : createApiKeyVerifier(options.apiKeys);
  const identityHeaders = identityHeaderNames(strategies, apiKeys === undefined ? [] : [apiKeys.header]);
  const defaultRpm = options.rateLimit?.defaultRpm === undefined ? 60 : options.rateLimit.defaultRpm;
  if (defaultRpm !== null && !(Number.isSafeInteger(defaultRpm) && defaultRpm > 0)) {
    throw new MtPaasError(
      'CONFIG_INVALID',
      `rateLimit.defaultRpm is ${String(defaultRpm)}; give a whole number > 0, null for unlimited, or rateLimit.enabled: false.`,
    );
  }
  const throttleRpm = options.quota?.throttleRpm ?? 6;
  if (!(Number.isSafeInteger(throttleRpm) && throttleRpm > 0)) {
    throw new MtPaasError(
      'CONFIG_INVALID',
      `quota.throttleRpm is ${String(throttleRpm)}; give a whole number of requests per minute > 0.`,
    );
  }
  const resolveEntitlements = createEntitlementsResolver({ ...options.entitlements, defaultRpm });
  const metrics = options.metrics === false ? undefined : createPipelineMetrics(options.metrics);

  const rateEnabled = options.rateLimit?.enabled ?? true;
  const rateStore: RateLimitStore | undefined = !rateEnabled
    ? undefined
    : (options.rateLimit?.store ??
      (options.rateLimit?.redis !== undefined
        ? createRedisRateLimitStore({ redis: options.rateLimit.redis })
        : createMemoryRateLimitStore()));

  const quotaEnabled = options.quota?.enabled ?? true;
  const quotaStore: QuotaStore | undefined = !quotaEnabled
    ? undefined
    : (options.quota?.store ??
      (options.quota?.redis !== undefined
        ? createRedisQuotaStore({ redis: options.quota.redis })
        : createMemoryQuotaStore()));
  const quotas =
    quotaStore === undefined
      ? undefined
      : createQuotaMeter({
          store: quotaStore,
          keyPrefix: prefix,
          ...(options.usageSink === undefined ? {} : { usageSink: options.usageSink }),
          ...(options.quota?.flushIntervalMs === undefined
            ? {}
            : { flushIntervalMs: options.quota.flushIntervalMs }),
          ...(options.quota?.thresholds === undefined ? {} : { thresholds: options.quota.thresholds }),
          onEvent: (event) => {
            logger.warn(
              { quota: event },
              `Quota ${event.meter} of ${event.tenantId} reached ${event.percent}%`,
            );
            options.quota?.onEvent?.(event);
          },
          onFlushError: (error) =>
            logger.error({ err: error }, 'Usage flush failed; retrying on the next flush'),
          now,
        });
  const requestMeter = options.quota?.requestMeter ?? 'api_requests';

  const inProcess = [
    rateEnabled && options.rateLimit?.store === undefined && options.rateLimit?.redis === undefined
      ? 'rate limits'
      : undefined,
    quotaEnabled && options.quota?.store === undefined && options.quota?.redis === undefined
      ? 'quotas'
      : undefined,
  ].filter((part) => part !== undefined);
  if (inProcess.length > 0) {
    logger.info(
      `In-process ${inProcess.join(' and ')}: correct for a single instance only; give rateLimit.redis / quota.redis when running several.`,
    );
  }
  for (const redis of [options.rateLimit?.redis, options.quota?.redis]) {
    if (redis !== undefined && redis.options.enableOfflineQueue !== false) {
      logger.warn(
        'The Redis client queues commands while disconnected (enableOfflineQueue), so an outage stalls requests instead of failing fast; build it with createRedisClient().',
      );
      break;
    }
  }

  /** Redis clients the request path needs, and one bounded wait for all of them to be ready. */
  const storeClients = [
    ...new Set([options.rateLimit?.redis, options.quota?.redis].filter((redis) => redis !== undefined)),
  ];
  const storeStartTimeoutMs = options.storeStartTimeoutMs ?? 5000;
  let storesReady: Promise<void> | undefined;
  function whenStoresReady(): Promise<void> {
    storesReady ??= Promise.all(storeClients.map((redis) => waitUntilReady(redis, storeStartTimeoutMs))).then(
      (ready) => {
        if (ready.every(Boolean)) return;
        logger.error(
          { component: 'redis', timeoutMs: storeStartTimeoutMs },
          `Redis did not connect within ${storeStartTimeoutMs} ms; rate limits and quotas now follow their failMode until it does`,
        );
      },
    );
    return storesReady;
  }

  /** Headers an error response must carry (rate limit headers on a 429). */
  const errorHeaders = new WeakMap<object, Record<string, string>>();

  /** Store failures: decided per call, logged once per outage. */
  function outageGuard(component: string, failMode: 'open' | 'closed') {
    let down = false;
    return async <T>(call: () => Promise<T>): Promise<T | undefined> => {
      try {
        const result = await call();
        if (down) {
          down = false;
          logger.info({ component }, `${component} store is reachable again`);
        }
        return result;
      } catch (error) {
        if (isMtPaasError(error)) throw error;
        if (!down) {
          down = true;
          logger.error(
            { component, err: error },
            `${component} store unavailable; failing ${failMode} until it is back (logged once per outage)`,
          );
        }
        if (failMode === 'open') return undefined;
        const unavailable = new MtPaasError(
          'SERVICE_UNAVAILABLE',
          `The ${component} is unavailable; retry in a few seconds.`,
          {
            cause: error,
            retryAfterSeconds: 5,
          },
        );
        throw clientSafe(unavailable);
      }
    };
  }
  const guardRate = outageGuard('rate limit', options.rateLimit?.failMode ?? 'open');
  const guardQuota = outageGuard('quota', options.quota?.failMode ?? 'open');

  async function audit(event: Omit<AuditEvent, 'at'>): Promise<void> {
    if (options.auditSink === undefined) return;
    try {
      await options.auditSink.record({ ...event, at: now() });
    } catch (error) {
      logger.error({ err: error, audit: event.type }, 'Audit sink failed');
    }
  }

  function policyFor(method: string, path: string, matching?: RouteMatching): RoutePolicy | undefined {
    for (const rule of options.routes ?? [])
      if (matchesRule(rule, method, path, matching)) return rule.policy;
    return undefined;
  }

  async function authenticate(
    request: PipelineRequest,
    auth: AuthRequirement,
  ): Promise<{ principal: RequestPrincipal; token: VerifiedToken | undefined }> {
    const anonymous = { principal: { kind: 'anonymous' } as RequestPrincipal, token: undefined };
    if (auth === 'none') return anonymous;
    const acceptsKey = auth === 'api-key' || auth === 'jwt-or-api-key';
    const acceptsJwt = auth === 'jwt' || auth === 'optional' || auth === 'jwt-or-api-key';
    if (acceptsKey && apiKeys !== undefined) {
      const presented = headerValue(request.headers, apiKeys.header);
      if (presented !== undefined) {
        const entry = presented.length <= 1024 ? apiKeys.match(presented) : undefined;
        if (entry === undefined) {
          throw new MtPaasError(
            'UNAUTHENTICATED',
            'The API key is not valid; check the key configured for this caller.',
          );
        }
        return {
          principal: {
            kind: 'service',
            service: entry.id,
            user: { id: `service:${entry.id}`, roles: [...(entry.roles ?? [])] },
          },
          token: undefined,
        };
      }
    }
    const authorization = headerValue(request.headers, 'authorization');
    const token = acceptsJwt ? bearerToken(authorization) : undefined;
    if (authorization !== undefined && acceptsJwt && token === undefined) {
      throw new MtPaasError(
        'UNAUTHENTICATED',
        'The Authorization header is not "Bearer <token>"; send a bearer token.',
      );
    }
    if (token !== undefined) {
      if (jwt === undefined) {
        throw new MtPaasError(
          'UNAUTHENTICATED',
          'Bearer tokens are not accepted by this service (no JWT verification configured).',
        );
      }
      const verified = await jwt.verify(token);
      const user: TenantUser = { id: verified.subject ?? 'unknown', roles: verified.roles };
      return { principal: { kind: 'user', user, claims: verified.claims }, token: verified };
    }
    if (auth === 'jwt')
      throw new MtPaasError('UNAUTHENTICATED', 'This route needs a bearer token; sign in first.');
    if (auth === 'api-key')
      throw new MtPaasError(
        'UNAUTHENTICATED',
        `This route needs an API key in the ${apiKeys?.header ?? 'x-api-key'} header.`,
      );
    if (auth === 'jwt-or-api-key')
      throw new MtPaasError('UNAUTHENTICATED', 'This route needs a bearer token or an API key.');
    return anonymous;
  }

  const checkRoles = assertRoles;

  /** Records a `cross_tenant_access_attempt` audit event and throws `CROSS_TENANT_ACCESS`. */
  async function crossTenant(attempt: {
    /** The request, when known (adds ip, method and path to the audit event). */
    request: Pick<PipelineRequest, 'ip' | 'method' | 'path'> | undefined;
    requestId: string;
    principal: RequestPrincipal;
    first: { source: string; raw: string };
    other: { source: string; raw: string };
    reason: string;
    message?: string;
  }): Promise<never> {
    const { request, principal, first, other } = attempt;
    await audit({
      type: 'cross_tenant_access_attempt',
      severity: 'high',
      tenantId: first.raw as TenantId,
      targetTenantId: other.raw,
      actor: {
        ...(principal.user?.id === undefined ? {} : { userId: principal.user.id }),
        ...(request?.ip === undefined ? {} : { ip: request.ip }),
        ...(principal.service === undefined ? {} : { service: principal.service }),
      },
      requestId: attempt.requestId,
      details: {
        reason: attempt.reason,
        sources: [first.source, other.source],
        ...(request === undefined ? {} : { method: request.method, path: request.path }),
      },
    });
    throw new MtPaasError(
      'CROSS_TENANT_ACCESS',
      attempt.message ??
        `The request names two tenants (${first.source}: "${first.raw}", ${other.source}: "${other.raw}"); send one tenant only.`,
      { details: { sources: [first.source, other.source] } },
    );
  }

  async function rateLimit(
    tenantId: TenantId,
    entitlements: Entitlements,
    principal: RequestPrincipal,
    headers: Record<string, string>,
  ): Promise<void> {
    if (rateStore === undefined) return;
    const effective = entitlements.limits.rpm;
    if (effective === null) return;
    if (!Number.isSafeInteger(effective) || effective < 0) {
      throw new MtPaasError(
        'CONFIG_INVALID',
        `Tenant "${tenantId}" has rpm ${String(effective)}; an rpm is a whole number ≥ 0, or null for unlimited. Fix its plan or entitlements.`,
      );
    }
    if (effective === 0) {
      // rpm 0 means no requests at all (null is unlimited): refused without asking the store.
      const none: RateLimitDecision = {
        allowed: false,
        limit: 0,
        remaining: 0,
        resetSeconds: 60,
        retryAfterSeconds: 60,
      };
      const error = new MtPaasError(
        'RATE_LIMITED',
        `Tenant "${tenantId}" has a rate limit of 0 requests per minute; upgrade the plan or ask its administrator.`,
        { details: { limit: 0 }, retryAfterSeconds: 60 },
      );
      errorHeaders.set(error, rateLimitHeaders(none, 60));
      throw error;
    }
    const key =
      options.rateLimit?.perUser === true && principal.user !== undefined
        ? tenantKey(prefix, tenantId, 'rl', 'u', safeKeyPart(principal.user.id))
        : tenantKey(prefix, tenantId, 'rl');
    const decision = await guardRate(() => rateStore.consume(key, effective, 60_000, 1));
    if (decision === undefined) return;
    Object.assign(headers, rateLimitHeaders(decision, 60));
    if (!decision.allowed) {
      const error = rateLimited(tenantId, decision);
      errorHeaders.set(error, rateLimitHeaders(decision, 60));
      throw error;
    }
  }

  function rateLimited(tenantId: TenantId, decision: RateLimitDecision): MtPaasError {
    return new MtPaasError(
      'RATE_LIMITED',
      `Tenant "${tenantId}" sent more than ${decision.limit} requests per minute; retry in ${decision.retryAfterSeconds} s.`,
      { details: { limit: decision.limit }, retryAfterSeconds: decision.retryAfterSeconds },
    );
  }

  async function meter(
    tenantId: TenantId,
    entitlements: Entitlements,
    meterName: string,
    amount: number,
  ): Promise<QuotaDecision | undefined> {
    if (quotas === undefined) return undefined;
    const quota = entitlements.limits.quotas[meterName];
    if (quota === undefined) return undefined;
    const decision = await guardQuota(() => quotas.consume(tenantId, meterName, quota, amount));
    if (decision === undefined) return undefined;
    if (!decision.allowed) throw quotaExceededError(tenantId, meterName, decision);
    if (decision.throttled && rateStore !== undefined) {
      const throttle = await guardRate(() =>
        rateStore.consume(tenantKey(prefix, tenantId, 'qt', meterName), throttleRpm, 60_000, 1),
      );
      if (throttle !== undefined && !throttle.allowed) {
        const error = new MtPaasError(
          'QUOTA_EXCEEDED',
          `Tenant "${tenantId}" is past its ${meterName} quota and throttled to ${throttleRpm} requests per minute; retry in ${throttle.retryAfterSeconds} s or upgrade the plan.`,
          {
            details: { meter: meterName, limit: decision.limit, used: decision.used },
            retryAfterSeconds: throttle.retryAfterSeconds,
          },
        );
        errorHeaders.set(error, rateLimitHeaders(throttle, 60));
        throw error;
      }
    }
    return decision;
  }

  async function admit(request: PipelineRequest, givenPolicy?: RoutePolicy): Promise<PipelineAdmission> {
    const presentedId = headerValue(request.headers, requestIdHeader);
    const requestId =
      presentedId !== undefined && REQUEST_ID_PATTERN.test(presentedId) ? presentedId : randomUUID();
    // Requests that arrive while Redis is still connecting wait for it (bounded) instead of failing open.
    if (storeClients.length > 0) await whenStoresReady();
    try {
      return await admitWithId(request, givenPolicy, requestId);
    } catch (error) {
      // Refusals carry the request id too, so a client can quote it.
      if (isMtPaasError(error))
        errorHeaders.set(error, { ...errorHeaders.get(error), [requestIdHeader]: requestId });
      throw error;
    }
  }

  /** The admission of a request served without a tenant (`host-only`, or `optional` with none named). */
  function withoutTenant(
    admitted: Pick<PipelineAdmission, 'requestId' | 'principal' | 'headers' | 'policy' | 'startedAt'>,
  ): PipelineAdmission {
    const user = admitted.principal.user;
    return {
      ...admitted,
      tenant: undefined,
      tenantId: undefined,
      entitlements: undefined,
      context: undefined,
      source: undefined,
      logger: logger.child({
        requestId: admitted.requestId,
        ...(user === undefined ? {} : { userId: user.id }),
      }),
    };
  }

  async function admitWithId(
    request: PipelineRequest,
    givenPolicy: RoutePolicy | undefined,
    requestId: string,
  ): Promise<PipelineAdmission> {
    const startedAt = performance.now();
    const routePath = request.routePath ?? request.path;
    // A policy is decided on the route the framework runs; a target that is no path has no such route.
    if (!routePath.startsWith('/')) {
      throw new MtPaasError(
        'INVALID_REQUEST',
        'The request target is not a path; send an origin-form target ("/courses") or an absolute URL.',
      );
    }
    const policy = givenPolicy ?? policyFor(request.method, routePath, request.routeMatching) ?? {};
    refuseRepeatedHeaders(request.rawHeaders, identityHeaders);
    const headers: Record<string, string> = { [requestIdHeader]: requestId };
    const tenantMode = policy.tenant ?? 'required';

    if (tenantMode === 'host-only') {
      const { principal } = await authenticate(request, policy.auth ?? defaultAuth);
      checkRoles(principal, policy.roles);
      return withoutTenant({ requestId, principal, headers, policy, startedAt });
    }

    // 1. Raw ids from the request, checked against the grammar before anything else.
    const candidates = collectCandidates(request, strategies);
    for (const candidate of candidates) {
      const problem = tenantIdProblem(candidate.raw);
      if (problem !== undefined) {
        throw new MtPaasError(
          'INVALID_TENANT_ID',
          `The tenant id from the ${candidate.source} is invalid: ${problem}. A tenant id is 2-48 characters of a-z, 0-9 and "_", starting with a letter.`,
          { details: { source: candidate.source, reason: problem } },
        );
      }
    }

    // 2. Credentials (the JWT's tenant claim is a source too).
    const { principal, token } = await authenticate(request, policy.auth ?? defaultAuth);
    let claimCandidate: TenantCandidate | undefined;
    if (token !== undefined && token.tenantClaim !== undefined) {
      const raw = token.tenantClaim;
      if (typeof raw !== 'string' || tenantIdProblem(raw) !== undefined) {
        throw new MtPaasError(
          'UNAUTHENTICATED',
          `The token's "${tenantClaimName}" claim is not a valid tenant id; sign in again.`,
        );
      }
      claimCandidate = { source: 'jwt-claim', raw };
    }

    // 3. Custom domain (a catalog lookup by host, cached).
    if (strategies.some((s) => s.type === 'custom-domain')) {
      const strategy = strategies.find((s) => s.type === 'custom-domain') as Extract<
        ResolutionStrategy,
        { type: 'custom-domain' }
      >;
      const host = normalizeHost(request);
      const ignore = new Set(strategy.ignore ?? ['localhost', '127.0.0.1', '[::1]']);
      const bases = strategies.flatMap((s) =>
        s.type === 'subdomain' && s.baseDomain !== undefined ? [s.baseDomain.toLowerCase()] : [],
      );
      if (
        host !== undefined &&
        !ignore.has(host) &&
        !bases.some((base) => host === base || host.endsWith(`.${base}`))
      ) {
        const owner = await directory.resolveDomain(host);
        if (owner !== undefined) candidates.push({ source: 'custom-domain', raw: owner });
      }
    }

    // The verified claim is a source when configured, and must match whatever other source there is.
    if (claimCandidate !== undefined && (hasClaimStrategy || candidates.length > 0))
      candidates.push(claimCandidate);

    // 4. All sources must agree.
    const first = candidates[0];
    if (first !== undefined) {
      const other = candidates.find((candidate) => candidate.raw !== first.raw);
      if (other !== undefined) {
        await crossTenant({ request, requestId, principal, first, other, reason: 'sources disagree' });
      }
    }
    let tenantId = first?.raw as TenantId | undefined;
    let source: string | undefined = first?.source;
    if (tenantId === undefined && options.defaultTenant !== undefined && tenantMode === 'required') {
      tenantId = options.defaultTenant as TenantId;
      source = 'default';
      // A signed-in user of another tenant must not fall through to the default tenant.
      if (claimCandidate !== undefined && claimCandidate.raw !== tenantId) {
        await crossTenant({
          request,
          requestId,
          principal,
          first: { source: 'default', raw: tenantId },
          other: claimCandidate,
          reason: 'default tenant differs from the token',
          message: `The token is for tenant "${claimCandidate.raw}", not the default tenant "${tenantId}"; name "${claimCandidate.raw}" with ${strategyList}.`,
        });
      }
    }
    if (tenantId === undefined) {
      if (tenantMode === 'required') {
        throw new MtPaasError(
          'TENANT_NOT_IDENTIFIED',
          `No tenant in this request; name one with ${strategyList}.`,
        );
      }
      checkRoles(principal, policy.roles);
      return withoutTenant({ requestId, principal, headers, policy, startedAt });
    }

    // A signed-in user acts in a tenant only with a token that names it (the claim matched above).
    if (token !== undefined && claimCandidate === undefined && options.jwt?.requireTenantClaim !== false) {
      throw new MtPaasError(
        'FORBIDDEN',
        `The token has no "${tenantClaimName}" claim, so it cannot act in tenant "${tenantId}"; sign in with a token issued for that tenant.`,
        { details: { tenantId } },
      );
    }

    // 5. Lookup (cached; negative entries too).
    const tenant: Tenant | undefined = await directory.get(tenantId);
    if (tenant === undefined) {
      throw new MtPaasError('TENANT_NOT_FOUND', `Tenant "${tenantId}" does not exist; check the tenant id.`, {
        details: { tenantId },
      });
    }

    // 6. Admission.
    let status: ReturnType<typeof checkTenantStatus>;
    try {
      status = checkTenantStatus(tenant, {
        now,
        ...(options.gracePeriodMs === undefined ? {} : { gracePeriodMs: options.gracePeriodMs }),
      });
    } catch (error) {
      // Its 503 ("still being set up") is written for the client.
      if (isMtPaasError(error)) clientSafe(error);
      throw error;
    }
    if (status.warning !== undefined)
      headers['x-tenant-warning'] = status.warning.replace(/[^\x20-\x7e]/g, '?');
    checkRoles(principal, policy.roles);
    const entitlements = resolveEntitlements(tenant);
    for (const feature of policy.features ?? []) assertFeature(entitlements, feature);
    if (policy.plan !== undefined) assertPlan(entitlements, policy.plan, planOrder);
    if (policy.rateLimit !== false) await rateLimit(tenantId, entitlements, principal, headers);
    if (policy.quota !== false) {
      const meterName = typeof policy.quota === 'object' ? policy.quota.meter : requestMeter;
      const cost = typeof policy.quota === 'object' ? (policy.quota.cost ?? 1) : 1;
      assertUsageAmount(meterName, cost);
      await meter(tenantId, entitlements, meterName, cost);
    }

    const context = createTenantContext({
      tenant,
      requestId,
      ...(principal.user === undefined ? {} : { user: principal.user }),
    });
    return {
      requestId,
      tenant,
      tenantId,
      entitlements,
      principal,
      context,
      headers,
      source,
      policy,
      logger: logger.child({
        tenantId,
        requestId,
        ...(principal.user === undefined ? {} : { userId: principal.user.id }),
      }),
      startedAt,
    };
  }

  function foreignTenant(body: unknown, tenantId: string, depth: number): string | undefined {
    if (body === null || typeof body !== 'object' || depth > 2) return undefined;
    if (Array.isArray(body)) {
      for (const item of body.slice(0, 1000)) {
        const found = foreignTenant(item, tenantId, depth + 1);
        if (found !== undefined) return found;
      }
      return undefined;
    }
    for (const field of bodyFields) {
      const value = (body as Record<string, unknown>)[field];
      if (value !== undefined && value !== null && value !== tenantId) return String(value).slice(0, 64);
    }
    return undefined;
  }

  return {
    admit,
    policyFor,
    directory,
    quotas,
    metrics,
    logger,
    async checkBody(admission, body) {
      if (admission.policy.bodyGuard === false || admission.tenantId === undefined) return;
      const foreign = foreignTenant(readableBody(body), admission.tenantId, 0);
      if (foreign === undefined) return;
      await crossTenant({
        request: undefined,
        requestId: admission.requestId,
        principal: admission.principal,
        first: { source: admission.source ?? 'header', raw: admission.tenantId },
        other: { source: 'body', raw: foreign },
        reason: 'body names another tenant',
        message: `The request body names tenant "${foreign}" but the request is for "${admission.tenantId}"; send data for your own tenant only.`,
      });
    },
    errorResponse(error, context) {
      const requestId = context?.requestId;
      let failure: MtPaasError;
      if (isMtPaasError(error)) {
        failure = error;
      } else {
        (context?.logger ?? logger).error(
          { err: error, requestId },
          'Unhandled error in the tenant pipeline',
        );
        failure = new MtPaasError(
          'INTERNAL',
          'Something went wrong on our side; retry, and report the request id if it persists.',
        );
      }
      let body = failure.toJSON();
      if (failure.httpStatus >= 500) {
        // Driver messages (database names, addresses, ECONNREFUSED) go to the log, never to the client.
        if (isMtPaasError(error)) {
          (context?.logger ?? logger).warn({ code: failure.code, requestId, err: failure }, failure.message);
        }
        if (!isClientSafe(failure)) {
          body = { error: { code: failure.code, message: serverFaultMessage(failure) } };
        }
      }
      metrics?.refused(failure.code);
      const headers: Record<string, string> = {
        ...errorHeaders.get(failure),
        'content-type': 'application/json; charset=utf-8',
      };
      if (requestId !== undefined) headers[requestIdHeader] = requestId;
      if (failure.retryAfterSeconds !== undefined) headers['retry-after'] = String(failure.retryAfterSeconds);
      if (failure.code === 'UNAUTHENTICATED') headers['www-authenticate'] = 'Bearer';
      return { status: failure.httpStatus, headers, body };
    },
    finish(admission, outcome) {
      const startedAt = outcome.startedAt ?? admission?.startedAt;
      const durationSeconds = startedAt === undefined ? 0 : (performance.now() - startedAt) / 1000;
      if (options.logRequests !== false) {
        const level = outcome.status >= 500 ? 'error' : 'info';
        (admission?.logger ?? logger)[level](
          { status: outcome.status, route: outcome.route, durationMs: Math.round(durationSeconds * 1000) },
          'request completed',
        );
      }
      metrics?.observe({
        plan: admission?.entitlements?.plan,
        route: outcome.route,
        status: outcome.status,
        tenantId: admission?.tenantId,
        durationSeconds,
      });
    },
    async consume(admission, meterName, amount) {
      assertUsageAmount(meterName, amount);
      if (admission.tenantId === undefined || admission.entitlements === undefined) {
        throw new MtPaasError(
          'TENANT_CONTEXT_MISSING',
          'Usage can only be metered for a request with a tenant.',
        );
      }
      return meter(admission.tenantId, admission.entitlements, meterName, amount);
    },
    async start() {
      await Promise.all([directory.start(), whenStoresReady()]);
    },
    async close() {
      await directory.close();
      await quotas?.close();
    },
  };
}
