import type { Entitlements, Tenant, TenantDirectory, TenantId } from '@mt-paas/context';
import { isTenantId } from '@mt-paas/context';

/** Entitlements used by the fixtures: plenty of room unless a test narrows them. */
export function entitlements(overrides: Partial<Entitlements> & { rpm?: number | null } = {}): Entitlements {
  return {
    plan: overrides.plan ?? 'starter',
    features: overrides.features ?? { ai_chat: true },
    limits: {
      rpm: overrides.rpm === undefined ? 10_000 : overrides.rpm,
      quotas: overrides.limits?.quotas ?? {},
    },
  };
}

/** A tenant record for tests. */
export function makeTenant(id: string, overrides: Partial<Tenant> = {}): Tenant {
  const at = new Date('2026-01-01T00:00:00Z');
  return {
    id: id as TenantId,
    name: `Tenant ${id}`,
    status: 'active',
    plan: overrides.entitlements?.plan ?? 'starter',
    entitlements: entitlements(),
    placement: { mode: 'row' },
    metadata: {},
    createdAt: at,
    updatedAt: at,
    ...overrides,
  };
}

/** A directory that counts lookups and fails the test run if it ever sees an invalid id. */
export interface CountingDirectory extends TenantDirectory {
  calls: { get: string[]; resolveDomain: string[] };
  invalidLookups: unknown[];
}

/** Wraps a directory so tests can count lookups and prove no invalid id reaches it. */
export function countingDirectory(inner: TenantDirectory): CountingDirectory {
  const calls = { get: [] as string[], resolveDomain: [] as string[] };
  const invalidLookups: unknown[] = [];
  return {
    calls,
    invalidLookups,
    async get(tenantId) {
      calls.get.push(tenantId);
      if (!isTenantId(tenantId)) invalidLookups.push(tenantId);
      return inner.get(tenantId);
    },
    async resolveDomain(domain) {
      calls.resolveDomain.push(domain);
      return inner.resolveDomain(domain);
    },
    list(options) {
      return inner.list(options);
    },
  };
}

/** An in-memory directory whose tenants a test can change. */
export function memoryDirectory(initial: readonly Tenant[] = []): TenantDirectory & {
  put(tenant: Tenant): void;
  remove(tenantId: string): void;
  addDomain(domain: string, tenantId: string): void;
} {
  const tenants = new Map<string, Tenant>(initial.map((tenant) => [tenant.id, tenant]));
  const domains = new Map<string, TenantId>();
  return {
    async get(tenantId) {
      return tenants.get(tenantId);
    },
    async resolveDomain(domain) {
      return domains.get(domain);
    },
    async list() {
      return { tenants: [...tenants.values()] };
    },
    put(tenant) {
      tenants.set(tenant.id, tenant);
    },
    remove(tenantId) {
      tenants.delete(tenantId);
    },
    addDomain(domain, tenantId) {
      domains.set(domain, tenantId as TenantId);
    },
  };
}
