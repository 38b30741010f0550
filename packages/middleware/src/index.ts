export type { ApiKeyAuthOptions, ApiKeyEntry, ApiKeyVerifier } from './api-key-auth.js';
export { createApiKeyVerifier } from './api-key-auth.js';
export { answerClientErrorsAsJson, handleClientError } from './client-errors.js';
export type { EntitlementsLayer, EntitlementsResolverOptions } from './entitlements.js';
export {
  assertFeature,
  assertPlan,
  createEntitlementsResolver,
  DEFAULT_PLAN_ORDER,
  hasFeature,
  mergeEntitlements,
  planAtLeast,
  planRank,
} from './entitlements.js';
export { createInProcessEventBus } from './event-bus.js';
export { assertRoles, normalizeFrameworkError } from './guards.js';
export type {
  AdmittedRequest,
  AuthRequirement,
  ErrorResponse,
  HeaderMap,
  PipelineRequest,
  RequestPrincipal,
  RoutePolicy,
  TenantRequirement,
} from './http-types.js';
export { parseCookieHeader, parseQuery } from './http-types.js';
export type { JwtAuthOptions, JwtVerifier, VerifiedToken } from './jwt-auth.js';
export { bearerToken, createJwtVerifier } from './jwt-auth.js';
export type { PipelineMetrics, PipelineMetricsOptions } from './metrics.js';
export { createPipelineMetrics } from './metrics.js';
export type {
  AdmitOutcome,
  DirectoryCacheOptions,
  FailMode,
  MaybePromise,
  PipelineAdmission,
  QuotaOptions,
  RateLimitOptions,
  RouteRule,
  TenantAdmission,
  TenantPipeline,
  TenantPipelineOptions,
} from './pipeline.js';
export { createTenantPipeline } from './pipeline.js';
export type {
  QuotaCharge,
  QuotaCounterResult,
  QuotaDecision,
  QuotaEvent,
  QuotaMeter,
  QuotaMeterOptions,
  QuotaStore,
} from './quota.js';
export {
  createMemoryQuotaStore,
  createQuotaMeter,
  createRedisQuotaStore,
  QUOTA_LUA,
  quotaExceededError,
  quotaPeriod,
} from './quota.js';
export type {
  MemoryRateLimitStoreOptions,
  RateLimitDecision,
  RateLimitStore,
  RedisRateLimitStoreOptions,
} from './rate-limiter.js';
export {
  createMemoryRateLimitStore,
  createRedisRateLimitStore,
  GCRA_LUA,
  rateLimitHeaders,
} from './rate-limiter.js';
export type { RedisClientOptions } from './redis-client.js';
export { createRedisClient } from './redis-client.js';
export type { RedisEventBusOptions } from './redis-event-bus.js';
export { createRedisEventBus, parseTenantEvent } from './redis-event-bus.js';
export { hashTagOf, REDIS_KEY_PREFIX, safeKeyPart, tenantKey } from './redis-keys.js';
export type { StatusDecision, StatusGateOptions } from './status-gate.js';
export { checkTenantStatus } from './status-gate.js';
export type { CachedDirectory, CachedDirectoryOptions } from './tenant-cache.js';
export { createCachedDirectory } from './tenant-cache.js';
export type { ResolutionStrategy, TenantCandidate } from './tenant-resolver.js';
export { collectCandidates, normalizeHost } from './tenant-resolver.js';
