import { type Entitlements, isMtPaasError, MtPaasError, type Tenant, type TenantId } from '@mt-paas/context';
import { assertFeature, assertPlan } from './entitlements.js';
import { assertRoles } from './guards.js';
import type { RequestPrincipal, RoutePolicy } from './http-types.js';
import { clientSafe } from './server-faults.js';
import { checkTenantStatus } from './status-gate.js';
import type { CachedDirectory } from './tenant-cache.js';

/** What the admission stage decided for a tenant request. */
export interface TenantAdmitted {
  /** The frozen, shared catalog record. */
  record: Tenant;
  /** Effective entitlements (frozen; computed once per cached record). */
  entitlements: Entitlements;
  /** `x-tenant-warning` (grace period, block scheduled), printable ASCII. */
  warning: string | undefined;
}

/** The admission stage: lookup, status gate, roles, features, plan. */
export interface AdmissionStage {
  /** Answers without waiting when the tenant is cached; a promise when it must be looked up. */
  admit(
    tenantId: TenantId,
    principal: RequestPrincipal,
    policy: RoutePolicy,
  ): TenantAdmitted | Promise<TenantAdmitted>;
}

/**
 * Builds the admission stage. The record comes from the cached directory, which freezes it once when it is
 * cached; the effective entitlements are computed once per cached record (so `entitlements.overrides` must
 * depend on the tenant only) instead of once per request.
 */
export function createAdmissionStage(stage: {
  directory: CachedDirectory;
  resolveEntitlements: (tenant: Tenant) => Entitlements;
  planOrder: readonly string[];
  gracePeriodMs: number | undefined;
  now: () => Date;
}): AdmissionStage {
  const entitlementsOf = new WeakMap<Tenant, Entitlements>();
  const statusOptions = {
    now: stage.now,
    ...(stage.gracePeriodMs === undefined ? {} : { gracePeriodMs: stage.gracePeriodMs }),
  };
  function gate(
    tenantId: TenantId,
    record: Tenant | undefined,
    principal: RequestPrincipal,
    policy: RoutePolicy,
  ): TenantAdmitted {
    if (record === undefined) {
      throw new MtPaasError('TENANT_NOT_FOUND', `Tenant "${tenantId}" does not exist; check the tenant id.`, {
        details: { tenantId },
      });
    }
    let warning: string | undefined;
    try {
      warning = checkTenantStatus(record, statusOptions).warning;
    } catch (error) {
      // Its 503 ("still being set up") is written for the client.
      if (isMtPaasError(error)) clientSafe(error);
      throw error;
    }
    assertRoles(principal, policy.roles);
    let entitlements = entitlementsOf.get(record);
    if (entitlements === undefined) {
      entitlements = stage.resolveEntitlements(record);
      entitlementsOf.set(record, entitlements);
    }
    if (policy.features !== undefined)
      for (const feature of policy.features) assertFeature(entitlements, feature);
    if (policy.plan !== undefined) assertPlan(entitlements, policy.plan, stage.planOrder);
    return {
      record,
      entitlements,
      warning: warning === undefined ? undefined : warning.replace(/[^\x20-\x7e]/g, '?'),
    };
  }

  return {
    admit(tenantId, principal, policy) {
      const cached = stage.directory.peek(tenantId);
      if (cached !== undefined) return gate(tenantId, cached, principal, policy);
      return stage.directory.get(tenantId).then((record) => gate(tenantId, record, principal, policy));
    },
  };
}
