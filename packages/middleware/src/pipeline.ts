import { randomUUID } from 'node:crypto';
import {
  createTenantContext,
  type Entitlements,
  isTenantId,
  MtPaasError,
  type Tenant,
  type TenantContext,
  type TenantId,
  tenantIdProblem,
} from '@mt-paas/context';
import { type Logger, pino } from 'pino';
import { createAdmissionStage } from './admit.js';
import { createApiKeyVerifier } from './api-key-auth.js';
import { createAuthenticator } from './authenticate.js';
import { createBodyGuard } from './body-guard.js';
import { createCrossTenantRefusal } from './cross-tenant.js';
import { createEntitlementsResolver, DEFAULT_PLAN_ORDER } from './entitlements.js';
import { createErrorRenderer } from './error-response.js';
import { assertRoles } from './guards.js';
import {
  type ErrorResponse,
  headerValue,
  type PipelineRequest,
  type RequestPrincipal,
  type RouteMatching,
  type RoutePolicy,
} from './http-types.js';
import { createJwtVerifier } from './jwt-auth.js';
import { createLimitsStage } from './limits.js';
import { createPipelineMetrics, type PipelineMetrics } from './metrics.js';
import type { TenantAdmission, TenantPipelineOptions } from './pipeline-options.js';
import { assertUsageAmount, type QuotaDecision, type QuotaMeter } from './quota.js';
import { REDIS_KEY_PREFIX } from './redis-keys.js';
import { createTenantResolver } from './resolve-tenant.js';
import { matchesRule } from './route-rules.js';
import { type CachedDirectory, createCachedDirectory } from './tenant-cache.js';
import { identityHeaderNames, refuseRepeatedHeaders } from './tenant-resolver.js';

export type {
  DirectoryCacheOptions,
  FailMode,
  PipelineAdmission,
  QuotaOptions,
  RateLimitOptions,
  TenantAdmission,
  TenantPipelineOptions,
} from './pipeline-options.js';
export type { RouteRule } from './route-rules.js';

/** What {@link TenantPipeline.admitOrRefuse} decided: an admission, or the error response to send. */
export type AdmitOutcome =
  | { admitted: true; admission: TenantAdmission }
  | { admitted: false; response: ErrorResponse };

/** The framework-agnostic request pipeline. */
export interface TenantPipeline {
  /** Resolve → authenticate → admit → limits. Throws an `MtPaasError` on refusal. */
  admit(request: PipelineRequest, policy?: RoutePolicy): Promise<TenantAdmission>;
  /**
   * {@link TenantPipeline.admit} for adapters: a refusal comes back as the error response to send, carrying
   * the request id and the refusal's own headers (`RateLimit-*`, `Retry-After`). Answers without a promise
   * when no stage had to wait (cached tenant and token, no Redis call): check with `instanceof Promise`.
   */
  admitOrRefuse(request: PipelineRequest, policy?: RoutePolicy): MaybePromise<AdmitOutcome>;
  /**
   * The body guard: throws `CROSS_TENANT_ACCESS` when the body names another tenant. `body` is what the
   * framework parsed, or the raw text / bytes (read as JSON, else as a urlencoded form, whatever the
   * content type claims: the app can read it that way too).
   */
  checkBody(admission: TenantAdmission, body: unknown): Promise<void>;
  /**
   * Policy of a route from `routes` (first match). `path` is the path the framework routes on (see
   * `PipelineRequest.routePath`), compared the way the framework compares (`matching`).
   */
  policyFor(method: string, path: string, matching?: RouteMatching): RoutePolicy | undefined;
  /** Turns any thrown value into an HTTP error response (5xx only for real faults). */
  errorResponse(error: unknown, request?: { requestId?: string; logger?: Logger }): ErrorResponse;
  /** Records metrics and a log line for a finished request. */
  finish(
    admission: TenantAdmission | undefined,
    outcome: { status: number; route: string | undefined; startedAt?: number },
  ): void;
  /** Meters usage on any meter (e.g. `llm_tokens`) for the admitted tenant. */
  consume(admission: TenantAdmission, meter: string, amount: number): Promise<QuotaDecision | undefined>;
  /** The cached directory (invalidate, stats). */
  directory: CachedDirectory;
  quotas: QuotaMeter | undefined;
  metrics: PipelineMetrics | undefined;
  logger: Logger;
  /** Subscribes to tenant events and waits (bounded) for Redis; call once before serving (adapters do). */
  start(): Promise<void>;
  /** Flushes usage, stops listening. */
  close(): Promise<void>;
}

const REQUEST_ID_PATTERN = /^[A-Za-z0-9._:-]{1,128}$/;

/** A value now, or later. */
export type MaybePromise<T> = T | Promise<T>;

/** `next(value)` now when `value` is there, after it when it is a promise. */
function then<T, U>(value: MaybePromise<T>, next: (value: T) => MaybePromise<U>): MaybePromise<U> {
  return value instanceof Promise ? value.then(next) : next(value);
}

/** One admitted request. Frozen; its child logger is made the first time it is read. */
class Admission implements TenantAdmission {
  readonly requestId: string;
  readonly tenantId: TenantId | undefined;
  readonly record: Tenant | undefined;
  readonly entitlements: Entitlements | undefined;
  readonly principal: RequestPrincipal;
  readonly context: TenantContext | undefined;
  readonly headers: Readonly<Record<string, string>>;
  readonly source: string | undefined;
  readonly policy: RoutePolicy;
  readonly startedAt: number;
  readonly #base: Logger;
  #logger: Logger | undefined;

  constructor(
    fields: Omit<TenantAdmission, 'logger' | 'headers'> & { headers: Record<string, string> },
    base: Logger,
  ) {
    this.requestId = fields.requestId;
    this.tenantId = fields.tenantId;
    this.record = fields.record;
    this.entitlements = fields.entitlements;
    this.principal = fields.principal;
    this.context = fields.context;
    this.headers = Object.freeze(fields.headers);
    this.source = fields.source;
    this.policy = fields.policy;
    this.startedAt = fields.startedAt;
    this.#base = base;
    Object.freeze(this);
  }

  get logger(): Logger {
    this.#logger ??= this.#base.child(logBindings(this));
    return this.#logger;
  }
}

/** `tenantId`, `requestId` and `userId` of a request, for its log lines. */
function logBindings(admission: Pick<TenantAdmission, 'tenantId' | 'requestId' | 'principal'>) {
  const user = admission.principal.user;
  return {
    ...(admission.tenantId === undefined ? {} : { tenantId: admission.tenantId }),
    requestId: admission.requestId,
    ...(user === undefined ? {} : { userId: user.id }),
  };
}

/**
 * Builds the request pipeline every adapter runs, stage by stage:
 * resolve (ordered strategies, grammar, all sources must agree; `resolve-tenant.ts`) → authenticate
 * (JWT / API key; `authenticate.ts`) → admit (cached lookup, status gate, roles / features / plan;
 * `admit.ts`) → limits (rate limit and quota; `limits.ts`) → tenant context. The body guard
 * (`body-guard.ts`) and the error response (`error-response.ts`) are stages the adapters call.
 *
 * @example
 * const pipeline = createTenantPipeline({ directory, strategies: [{ type: 'header' }] });
 * const admission = await pipeline.admit({ method: 'GET', path: '/courses', headers });
 */
export function createTenantPipeline(options: TenantPipelineOptions): TenantPipeline {
  const logger = options.logger ?? pino({ level: 'info' });
  const now = options.now ?? (() => new Date());
  const strategies = options.strategies ?? [{ type: 'header' }, { type: 'jwt-claim' }];
  const requestIdHeader = (options.requestIdHeader ?? 'x-request-id').toLowerCase();
  const defaultAuth = options.defaultAuth ?? 'optional';
  const logRequests = options.logRequests !== false;

  const defaultTenant = options.defaultTenant;
  if (defaultTenant !== undefined && !isTenantId(defaultTenant)) {
    throw new MtPaasError(
      'CONFIG_INVALID',
      `defaultTenant "${defaultTenant}" is not a tenant id: ${tenantIdProblem(defaultTenant)}.`,
    );
  }
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

  const directory = createCachedDirectory({
    directory: options.directory,
    ...(options.events === undefined ? {} : { events: options.events }),
    ...options.cache,
  });
  const claimStrategy = strategies.find((strategy) => strategy.type === 'jwt-claim');
  const tenantClaim = options.jwt?.tenantClaim ?? claimStrategy?.claim ?? 'tenant_id';
  const jwt = options.jwt === undefined ? undefined : createJwtVerifier({ ...options.jwt, tenantClaim });
  const apiKeys = options.apiKeys === undefined ? undefined : createApiKeyVerifier(options.apiKeys);
  const identityHeaders = identityHeaderNames(strategies, apiKeys === undefined ? [] : [apiKeys.header]);
  const metrics = options.metrics === false ? undefined : createPipelineMetrics(options.metrics);

  // ---- the stages ----
  const refuseCrossTenant = createCrossTenantRefusal({ auditSink: options.auditSink, logger, now });
  const authenticate = createAuthenticator({ jwt, apiKeys });
  const resolver = createTenantResolver({
    strategies,
    tenantClaim,
    defaultTenant: defaultTenant as TenantId | undefined,
    requireTenantClaim: options.jwt?.requireTenantClaim !== false,
    directory,
    refuseCrossTenant,
  });
  const admission = createAdmissionStage({
    directory,
    resolveEntitlements: createEntitlementsResolver({ ...options.entitlements, defaultRpm }),
    planOrder: options.planOrder ?? DEFAULT_PLAN_ORDER,
    gracePeriodMs: options.gracePeriodMs,
    now,
  });
  const limits = createLimitsStage({
    rateLimit: options.rateLimit,
    quota: options.quota,
    defaultRpm,
    throttleRpm,
    keyPrefix: options.keyPrefix ?? REDIS_KEY_PREFIX,
    usageSink: options.usageSink,
    storeStartTimeoutMs: options.storeStartTimeoutMs ?? 5000,
    logger,
    now,
  });
  const checkBody = createBodyGuard({
    fields: options.bodyGuardFields ?? ['tenantId', 'tenant_id'],
    refuseCrossTenant,
  });
  const errorResponse = createErrorRenderer({ logger, metrics, requestIdHeader });
  const routes = options.routes ?? [];

  function policyFor(method: string, path: string, matching?: RouteMatching): RoutePolicy | undefined {
    for (const rule of routes) if (matchesRule(rule, method, path, matching)) return rule.policy;
    return undefined;
  }

  // Generated request ids: a random UUID per pipeline and a counter (`<uuid>-<n in base 36>`), unique
  // across instances and restarts without drawing 16 random bytes and formatting a UUID per request.
  const requestIdPrefix = `${randomUUID()}-`;
  let requestCount = 0;

  function requestIdOf(request: PipelineRequest): string {
    const presented = headerValue(request.headers, requestIdHeader);
    if (presented !== undefined && REQUEST_ID_PATTERN.test(presented)) return presented;
    requestCount += 1;
    return requestIdPrefix + requestCount.toString(36);
  }

  /**
   * Runs the stages in order. Each stage answers without waiting when it can (Redis ready, cached token,
   * cached tenant, no limit to ask), and only a stage that really waits makes the request wait: a request
   * needing no I/O is admitted without a single promise. Throws (synchronously or through the promise).
   */
  function admitWithId(
    request: PipelineRequest,
    givenPolicy: RoutePolicy | undefined,
    requestId: string,
  ): MaybePromise<TenantAdmission> {
    const startedAt = performance.now();
    // Requests that arrive while Redis is still connecting wait for it (bounded) instead of failing open.
    if (limits.mustWait)
      return limits.whenReady().then(() => admitReady(request, givenPolicy, requestId, startedAt));
    return admitReady(request, givenPolicy, requestId, startedAt);
  }

  function admitReady(
    request: PipelineRequest,
    givenPolicy: RoutePolicy | undefined,
    requestId: string,
    startedAt: number,
  ): MaybePromise<TenantAdmission> {
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
    const auth = policy.auth ?? defaultAuth;

    if (tenantMode === 'host-only') {
      return then(authenticate(request, auth), ({ principal }) => {
        assertRoles(principal, policy.roles);
        return withoutTenant(requestId, principal, headers, policy, startedAt);
      });
    }
    // Raw ids from the request are checked against the grammar before any credential is looked at.
    const candidates = resolver.candidates(request);
    return then(authenticate(request, auth), (authentication) => {
      const { principal } = authentication;
      return then(
        resolver.resolve(request, candidates, authentication, tenantMode, requestId),
        (resolution) => {
          if (resolution === undefined) {
            assertRoles(principal, policy.roles);
            return withoutTenant(requestId, principal, headers, policy, startedAt);
          }
          const { tenantId } = resolution;
          return then(admission.admit(tenantId, principal, policy), (admitted) => {
            if (admitted.warning !== undefined) headers['x-tenant-warning'] = admitted.warning;
            return then(limits.charge(tenantId, admitted.entitlements, principal, policy), (limitHeaders) => {
              if (limitHeaders !== undefined) Object.assign(headers, limitHeaders);
              // The record is the cache's frozen one: the context shares it instead of copying it.
              const context = createTenantContext({
                tenant: admitted.record,
                requestId,
                ...(principal.user === undefined ? {} : { user: principal.user }),
              });
              return new Admission(
                {
                  requestId,
                  tenantId,
                  record: context.tenant,
                  entitlements: admitted.entitlements,
                  principal,
                  context,
                  headers,
                  source: resolution.source,
                  policy,
                  startedAt,
                },
                logger,
              );
            });
          });
        },
      );
    });
  }

  /** The admission of a request served without a tenant (`host-only`, or `optional` with none named). */
  function withoutTenant(
    requestId: string,
    principal: RequestPrincipal,
    headers: Record<string, string>,
    policy: RoutePolicy,
    startedAt: number,
  ): TenantAdmission {
    return new Admission(
      {
        requestId,
        tenantId: undefined,
        record: undefined,
        entitlements: undefined,
        principal,
        context: undefined,
        headers,
        source: undefined,
        policy,
        startedAt,
      },
      logger,
    );
  }

  return {
    admit(request, policy) {
      try {
        return Promise.resolve(admitWithId(request, policy, requestIdOf(request)));
      } catch (error) {
        return Promise.reject(error);
      }
    },
    admitOrRefuse(request, policy) {
      const requestId = requestIdOf(request);
      // Refusals carry the request id too, so a client can quote it.
      const refuse = (error: unknown): AdmitOutcome => ({
        admitted: false,
        response: errorResponse(error, { requestId }),
      });
      try {
        const admitted = admitWithId(request, policy, requestId);
        if (!(admitted instanceof Promise)) return { admitted: true, admission: admitted };
        return admitted.then((admission): AdmitOutcome => ({ admitted: true, admission }), refuse);
      } catch (error) {
        return refuse(error);
      }
    },
    checkBody,
    policyFor,
    errorResponse,
    directory,
    quotas: limits.quotas,
    metrics,
    logger,
    finish(admitted, outcome) {
      const startedAt = outcome.startedAt ?? admitted?.startedAt;
      const durationSeconds = startedAt === undefined ? 0 : (performance.now() - startedAt) / 1000;
      if (logRequests) {
        const level = outcome.status >= 500 ? 'error' : 'info';
        if (logger.isLevelEnabled(level)) {
          logger[level](
            {
              ...(admitted === undefined ? {} : logBindings(admitted)),
              status: outcome.status,
              route: outcome.route,
              durationMs: Math.round(durationSeconds * 1000),
            },
            'request completed',
          );
        }
      }
      metrics?.observe({
        plan: admitted?.entitlements?.plan,
        route: outcome.route,
        status: outcome.status,
        tenantId: admitted?.tenantId,
        durationSeconds,
      });
    },
    async consume(admitted, meterName, amount) {
      assertUsageAmount(meterName, amount);
      if (admitted.tenantId === undefined || admitted.entitlements === undefined) {
        throw new MtPaasError(
          'TENANT_CONTEXT_MISSING',
          'Usage can only be metered for a request with a tenant.',
        );
      }
      return limits.consume(admitted.tenantId, admitted.entitlements, meterName, amount);
    },
    async start() {
      await Promise.all([directory.start(), limits.whenReady()]);
    },
    async close() {
      await directory.close();
      await limits.close();
    },
  };
}
