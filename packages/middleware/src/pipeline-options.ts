import type { AuditSink, TenantDirectory, TenantEventBus, UsageSink } from '@mt-paas/context';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { ApiKeyAuthOptions } from './api-key-auth.js';
import type { EntitlementsResolverOptions } from './entitlements.js';
import type { AdmittedRequest, AuthRequirement } from './http-types.js';
import type { JwtAuthOptions } from './jwt-auth.js';
import type { PipelineMetricsOptions } from './metrics.js';
import type { QuotaEvent, QuotaStore } from './quota.js';
import type { RateLimitStore } from './rate-limiter.js';
import type { RouteRule } from './route-rules.js';
import type { ResolutionStrategy } from './tenant-resolver.js';

/** The directory cache in front of `directory` (`TenantPipelineOptions.cache`). */
export interface DirectoryCacheOptions {
  /** Most tenants kept. @default 10_000 */
  max?: number;
  /** How long a found tenant is kept. @default 60_000 (ms) */
  ttlMs?: number;
  /** How long "no such tenant" is kept. @default 5_000 (ms) */
  negativeTtlMs?: number;
}

/** When a limit store fails: `open` admits, `closed` refuses with 503. */
export type FailMode = 'open' | 'closed';

/** Rate limiting per tenant from the plan's `rpm` (`TenantPipelineOptions.rateLimit`). */
export interface RateLimitOptions {
  /** @default true */
  enabled?: boolean;
  /** A store; or give `redis`. @default an in-process store */
  store?: RateLimitStore;
  /**
   * An ioredis client (use `createRedisClient` for fail-fast settings). When `quota.redis` is the same
   * client, the rate limit and the request's quota are decided in one round trip (one script).
   */
  redis?: Redis;
  /**
   * Requests per minute of the base entitlements layer (seed `default_rpm`); a plan default or the
   * tenant's own `limits.rpm` overrides it (`null` there = unlimited). @default 60
   */
  defaultRpm?: number | null;
  /** Limit per tenant + user instead of per tenant. @default false */
  perUser?: boolean;
  /** @default 'open' */
  failMode?: FailMode;
}

/** Quota metering (`TenantPipelineOptions.quota`). */
export interface QuotaOptions {
  /** @default true */
  enabled?: boolean;
  /** A store; or give `redis`. @default an in-process store */
  store?: QuotaStore;
  /** An ioredis client (see {@link RateLimitOptions.redis}). */
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
  failMode?: FailMode;
}

/** Options of `createTenantPipeline`. */
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
  cache?: DirectoryCacheOptions;
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
  rateLimit?: RateLimitOptions;
  /** Quota metering. */
  quota?: QuotaOptions;
  /** Route policies by path (Fastify also reads `config.mtPaas` of each route). */
  routes?: readonly RouteRule[];
  /** Body fields checked by the body guard. @default ['tenantId', 'tenant_id'] */
  bodyGuardFields?: readonly string[];
  /**
   * pino logger. `admission.logger` is a child of it carrying `tenantId`, `requestId` and `userId`, made
   * the first time a handler reads it. @default pino({ level: 'info' })
   */
  logger?: Logger;
  /** prom-client metrics; `false` disables. @default a fresh registry */
  metrics?: PipelineMetricsOptions | false;
  /** Log one line per finished request (status, route template, duration, tenant, request id). @default true */
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

/**
 * What the pipeline admitted for one request: `req.tenant` (Fastify, Express) and `c.get('tenant')` (Hono).
 * Read `tenantId`, `record` (the tenant row), `entitlements` and `principal`; all of it is read-only.
 */
export interface TenantAdmission extends AdmittedRequest {
  /** A pino child logger with `tenantId`, `requestId` and `userId`; made on first read. */
  readonly logger: Logger;
  /** `performance.now()` when the pipeline started on the request. */
  readonly startedAt: number;
}

/**
 * @deprecated Renamed {@link TenantAdmission}; its `tenant` field is now `record`
 * (`req.tenant.tenant` → `req.tenant.record`).
 */
export type PipelineAdmission = TenantAdmission;
