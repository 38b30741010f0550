import type { TenantId } from './tenant-id.js';
import type { Tenant, TenantBlock, TenantStatus } from './types.js';

/** Options of {@link TenantDirectory.list}. */
export interface TenantListOptions {
  /** Only tenants in one of these states. */
  status?: readonly TenantStatus[];
  /** Page size. @default 100 */
  limit?: number;
  /** Opaque cursor from the previous page. */
  cursor?: string;
}

/** A page of tenants. */
export interface TenantPage {
  tenants: Tenant[];
  /** Present when there are more tenants. */
  nextCursor?: string;
}

/** Looks tenants up. Implemented by `@mt-paas/db` (Postgres catalog) and cached by `@mt-paas/middleware`. */
export interface TenantDirectory {
  /** The tenant, or `undefined` when no such tenant exists. */
  get(tenantId: TenantId): Promise<Tenant | undefined>;
  /** The tenant that owns a custom domain or subdomain host (lower-case, no port), if any. */
  resolveDomain(domain: string): Promise<TenantId | undefined>;
  /** Tenants, paged. */
  list(options?: TenantListOptions): Promise<TenantPage>;
}

/** A change to a tenant that every instance must hear about (cache invalidation, kill switch). */
export type TenantEvent =
  | { type: 'tenant.changed'; tenantId: TenantId; status?: TenantStatus; at: string; origin?: string }
  | { type: 'tenant.deleted'; tenantId: TenantId; at: string; origin?: string }
  | { type: 'tenant.blocked'; tenantId: TenantId; block: TenantBlock; at: string; origin?: string }
  | { type: 'tenant.unblocked'; tenantId: TenantId; at: string; origin?: string };

/** Stops a subscription. */
export type Unsubscribe = () => Promise<void>;

/**
 * Publishes and hears tenant changes across instances.
 * `@mt-paas/middleware` ships a Redis pub/sub implementation and an in-process one.
 */
export interface TenantEventBus {
  publish(event: TenantEvent): Promise<void>;
  /** `handler` runs for every event published by any instance, this one included. */
  subscribe(handler: (event: TenantEvent) => void | Promise<void>): Promise<Unsubscribe>;
  close(): Promise<void>;
}

/** Units consumed by a tenant on one meter. */
export interface UsageRecord {
  tenantId: TenantId;
  /** `api_requests`, `llm_tokens`, `storage_mb`, `users`, … */
  meter: string;
  quantity: number;
  /** When the usage happened (or the end of the flushed interval). */
  at: Date;
  /** Start of the quota period the usage counts against (ISO date-time), if periodic. */
  periodStart?: string;
  /** The same key recorded twice counts once. */
  idempotencyKey: string;
  /** Extra dimensions (model name, route …), low cardinality. */
  attributes?: Readonly<Record<string, string>>;
}

/** Receives metered usage (the catalog's usage ledger, the marketplace usage report …). */
export interface UsageSink {
  record(records: readonly UsageRecord[]): Promise<void>;
}

/** Severity of an audit event. */
export type AuditSeverity = 'low' | 'medium' | 'high' | 'critical';

/** A security-relevant event (seed 001 §5.3). */
export interface AuditEvent {
  /** `cross_tenant_access_attempt`, `tenant_blocked`, `auth_failed`, … */
  type: string;
  severity: AuditSeverity;
  tenantId?: TenantId;
  /** The other tenant involved, for cross-tenant attempts. */
  targetTenantId?: string;
  actor?: { userId?: string; ip?: string; service?: string };
  requestId?: string;
  details?: Readonly<Record<string, unknown>>;
  at: Date;
}

/** Receives audit events (the catalog's audit log, the marketplace alert API …). */
export interface AuditSink {
  record(event: AuditEvent): Promise<void>;
}
