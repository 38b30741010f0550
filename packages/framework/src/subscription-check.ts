import type { Tenant, TenantDirectory } from '@mt-paas/context';

function withoutExpiry(tenant: Tenant): Tenant {
  if (tenant.expiresAt === undefined && tenant.graceUntil === undefined) return tenant;
  const { expiresAt: _expiresAt, graceUntil: _graceUntil, ...rest } = tenant;
  return rest;
}

/**
 * `marketplace.subscription_check: false`: the pipeline serves a tenant whatever its subscription's end
 * (`expiresAt` / `graceUntil`) says — the marketplace still suspends or blocks it explicitly. Status,
 * plan, features and limits are applied as always.
 */
export function withoutSubscriptionExpiry(directory: TenantDirectory): TenantDirectory {
  return {
    get: async (tenantId) => {
      const tenant = await directory.get(tenantId);
      return tenant === undefined ? undefined : withoutExpiry(tenant);
    },
    resolveDomain: (domain) => directory.resolveDomain(domain),
    list: async (options) => {
      const page = await directory.list(options);
      return { ...page, tenants: page.tenants.map(withoutExpiry) };
    },
  };
}
