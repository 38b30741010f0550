import type { TenantId } from './tenant-id.js';

/** Lifecycle states of a tenant. Only `active` and `grace` are admitted to the service. */
export type TenantStatus =
  | 'provisioning'
  | 'active'
  | 'grace'
  | 'suspended'
  | 'blocked'
  | 'deleted'
  | 'purged';

/** Every tenant status, in lifecycle order. */
export const TENANT_STATUSES: readonly TenantStatus[] = [
  'provisioning',
  'active',
  'grace',
  'suspended',
  'blocked',
  'deleted',
  'purged',
];

/** Where a tenant's data lives. */
export type IsolationMode = 'row' | 'schema' | 'database' | 'docker';

/** Reset period of a quota meter. */
export type QuotaPeriod = 'hourly' | 'daily' | 'monthly' | 'never';

/** What happens when a quota is used up. */
export type QuotaEnforcement = 'block' | 'throttle' | 'alert' | 'overage';

/** A quota on one meter (`api_requests`, `llm_tokens`, `storage_mb`, `users`, …). */
export interface QuotaLimit {
  /** Units allowed per period; `null` means unlimited. */
  limit: number | null;
  period: QuotaPeriod;
  enforcement: QuotaEnforcement;
}

/** What a tenant may do: the plan's defaults merged with the subscription and tenant overrides. */
export interface Entitlements {
  /** Plan name, lower-case (`free`, `starter`, `professional`, `enterprise`, or a vendor's own). */
  plan: string;
  /** Feature flags (`quiz: true`). A feature missing here is off. */
  features: Readonly<Record<string, boolean>>;
  limits: {
    /** Requests per minute for the whole tenant; `null` means unlimited. */
    rpm: number | null;
    /** Quotas per meter. */
    quotas: Readonly<Record<string, QuotaLimit>>;
  };
}

/** Where a tenant's storage is placed. */
export interface TenantPlacement {
  mode: IsolationMode;
  /**
   * Mode-specific location: the schema name (`schema`), the database URL or name (`database`),
   * the container/compose project (`docker`). Omitted in `row` mode and when the default
   * naming applies.
   */
  location?: string;
}

/** Why and until when a tenant is blocked (the marketplace's kill switch). */
export interface TenantBlock {
  reason: string;
  /** Shown to the tenant's users in the refusal. */
  message?: string;
  /** When the block takes effect (a grace period before the block). */
  blockAt?: Date;
  /** When the block lifts by itself; open-ended when omitted. */
  until?: Date;
}

/** A tenant as every mt-paas package sees it. */
export interface Tenant {
  id: TenantId;
  name: string;
  status: TenantStatus;
  plan: string;
  entitlements: Entitlements;
  placement: TenantPlacement;
  /** When the subscription ends; no expiry when omitted. */
  expiresAt?: Date;
  /** Until when an expired subscription is still served (with a warning). */
  graceUntil?: Date;
  block?: TenantBlock;
  /** Custom domains and subdomains mapped to this tenant. */
  domains?: readonly string[];
  /** Free-form vendor data (institution, admin contact, marketplace application id …). */
  metadata: Readonly<Record<string, unknown>>;
  createdAt: Date;
  updatedAt: Date;
}

/** The user a request acts for, when authenticated. */
export interface TenantUser {
  id: string;
  roles: readonly string[];
  email?: string;
  name?: string;
}
