import { MtPaasError, type Tenant } from '@mt-paas/context';

/** What the status gate decided for an admitted tenant. */
export interface StatusDecision {
  /** Set when the tenant is served with a warning (grace period, block scheduled). */
  warning?: string;
}

/** Options of {@link checkTenantStatus}. */
export interface StatusGateOptions {
  /**
   * Grace period after `expiresAt` when the tenant has no explicit `graceUntil` (seed: `grace_period_hours: 24`).
   * @default 0
   */
  gracePeriodMs?: number;
  /** @default () => new Date() */
  now?: () => Date;
}

const ADMITTED: StatusDecision = Object.freeze({});

/**
 * The status gate: `active` passes; `grace` and an expired subscription inside its grace period pass
 * with a warning; `suspended`, `blocked`, `deleted`, `purged`, `provisioning` and an expired
 * subscription are refused with their codes.
 *
 * @throws MtPaasError `TENANT_SUSPENDED`, `TENANT_BLOCKED`, `TENANT_DELETED`, `TENANT_NOT_FOUND`,
 *   `SUBSCRIPTION_EXPIRED`, `SERVICE_UNAVAILABLE` (still provisioning).
 */
export function checkTenantStatus(tenant: Tenant, options: StatusGateOptions = {}): StatusDecision {
  // The common case, decided without reading the clock (checked on every request).
  if (tenant.status === 'active' && tenant.expiresAt === undefined) return ADMITTED;
  const now = (options.now ?? (() => new Date()))().getTime();
  const details = { tenantId: tenant.id, status: tenant.status };
  switch (tenant.status) {
    case 'active':
    case 'grace':
      break;
    case 'provisioning':
      throw new MtPaasError(
        'SERVICE_UNAVAILABLE',
        `Tenant "${tenant.id}" is still being set up; retry in a minute.`,
        { details, retryAfterSeconds: 30 },
      );
    case 'suspended':
      throw new MtPaasError(
        'TENANT_SUSPENDED',
        `Tenant "${tenant.id}" is suspended; ask its administrator to renew or reactivate the subscription in the marketplace.`,
        { details },
      );
    case 'blocked': {
      const block = tenant.block;
      if (block?.until !== undefined && block.until.getTime() <= now) break;
      if (block?.blockAt !== undefined && block.blockAt.getTime() > now) {
        return {
          warning: `Access for this tenant will be blocked at ${block.blockAt.toISOString()}${block.message === undefined ? '' : `: ${block.message}`}`,
        };
      }
      throw new MtPaasError(
        'TENANT_BLOCKED',
        block?.message ??
          `Tenant "${tenant.id}" is blocked by the marketplace; contact the marketplace operator to restore access.`,
        { details: { ...details, reason: block?.reason, until: block?.until?.toISOString() } },
      );
    }
    case 'deleted':
      throw new MtPaasError(
        'TENANT_DELETED',
        `Tenant "${tenant.id}" was deleted; subscribe again in the marketplace to restore access.`,
        { details },
      );
    case 'purged':
      throw new MtPaasError(
        'TENANT_NOT_FOUND',
        `Tenant "${tenant.id}" does not exist; check the tenant id.`,
        {
          details: { tenantId: tenant.id },
        },
      );
  }

  if (tenant.expiresAt !== undefined && tenant.expiresAt.getTime() <= now) {
    const graceUntil =
      tenant.graceUntil?.getTime() ?? tenant.expiresAt.getTime() + (options.gracePeriodMs ?? 0);
    if (graceUntil > now) {
      return {
        warning: `The subscription expired at ${tenant.expiresAt.toISOString()}; service continues until ${new Date(graceUntil).toISOString()}. Renew it in the marketplace.`,
      };
    }
    throw new MtPaasError(
      'SUBSCRIPTION_EXPIRED',
      `The subscription of tenant "${tenant.id}" expired at ${tenant.expiresAt.toISOString()}; renew it in the marketplace.`,
      { details: { tenantId: tenant.id, expiredAt: tenant.expiresAt.toISOString() } },
    );
  }
  if (tenant.status === 'grace') {
    return {
      warning: `The subscription is in its grace period${tenant.graceUntil === undefined ? '' : ` until ${tenant.graceUntil.toISOString()}`}; renew it in the marketplace.`,
    };
  }
  return {};
}
