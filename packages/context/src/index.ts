export type {
  AuditEvent,
  AuditSeverity,
  AuditSink,
  TenantDirectory,
  TenantEvent,
  TenantEventBus,
  TenantListOptions,
  TenantPage,
  Unsubscribe,
  UsageRecord,
  UsageSink,
} from './contracts.js';
export type { ErrorCode, MtPaasErrorBody, MtPaasErrorOptions } from './errors.js';
export { ERROR_STATUS, isMtPaasError, MtPaasError } from './errors.js';
export type {
  ContextPropagator,
  ContextPropagatorOptions,
  HeaderSource,
  MemoryReplayCacheOptions,
  MessageEnvelope,
  ReplayCache,
} from './propagation.js';
export {
  CONTEXT_HEADERS,
  createContextPropagator,
  createMemoryReplayCache,
  createMessageEnvelope,
  runInMessageContext,
} from './propagation.js';
export type { TenantContext, TenantContextInput } from './tenant-context.js';

export {
  createTenantContext,
  currentTenant,
  requireTenant,
  runWithTenant,
  tryCurrentTenant,
} from './tenant-context.js';
export type { TenantId } from './tenant-id.js';
export {
  isTenantId,
  parseTenantId,
  RESERVED_TENANT_ID_PREFIXES,
  RESERVED_TENANT_IDS,
  TENANT_ID_MAX_LENGTH,
  TENANT_ID_PATTERN,
  tenantIdProblem,
} from './tenant-id.js';
export type {
  Entitlements,
  IsolationMode,
  QuotaEnforcement,
  QuotaLimit,
  QuotaPeriod,
  Tenant,
  TenantBlock,
  TenantPlacement,
  TenantStatus,
  TenantUser,
} from './types.js';
export { TENANT_STATUSES } from './types.js';
