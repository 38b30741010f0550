import { type Entitlements, MtPaasError, type QuotaLimit, type Tenant } from '@mt-paas/context';

/** The default plan order, lowest first. */
export const DEFAULT_PLAN_ORDER: readonly string[] = ['free', 'starter', 'professional', 'enterprise'];

/** A partial entitlements layer (a plan's defaults, a subscription, a tenant override). */
export interface EntitlementsLayer {
  plan?: string;
  features?: Readonly<Record<string, boolean>>;
  limits?: {
    rpm?: number | null;
    quotas?: Readonly<Record<string, QuotaLimit>>;
  };
}

/**
 * Merges entitlement layers left to right: later layers win per feature, per quota meter and for
 * `rpm` (an explicit `null` means unlimited and also wins).
 *
 * @example
 * mergeEntitlements(planDefaults.professional, subscription, tenantOverrides)
 */
export function mergeEntitlements(...layers: readonly (EntitlementsLayer | undefined)[]): Entitlements {
  let plan = 'free';
  const features: Record<string, boolean> = {};
  let rpm: number | null = null;
  const quotas: Record<string, QuotaLimit> = {};
  for (const layer of layers) {
    if (layer === undefined) continue;
    if (layer.plan !== undefined) plan = layer.plan;
    if (layer.features !== undefined) Object.assign(features, layer.features);
    if (layer.limits !== undefined) {
      if (layer.limits.rpm !== undefined) rpm = layer.limits.rpm;
      if (layer.limits.quotas !== undefined) {
        for (const [meter, quota] of Object.entries(layer.limits.quotas))
          quotas[meter] = Object.freeze({ ...quota });
      }
    }
  }
  return Object.freeze({
    plan,
    features: Object.freeze(features),
    limits: Object.freeze({ rpm, quotas: Object.freeze(quotas) }),
  });
}

/** Options of {@link createEntitlementsResolver}. */
export interface EntitlementsResolverOptions {
  /** Defaults per plan name (the config's `plans` section). */
  planDefaults?: Readonly<Record<string, EntitlementsLayer>>;
  /** Feature defaults for every plan (the seed's `features.defaults`). */
  featureDefaults?: Readonly<Record<string, boolean>>;
  /** Requests per minute of the base layer, before plan and tenant. @default null (unlimited) */
  defaultRpm?: number | null;
  /** Tenant-specific overrides applied last (e.g. from the tenant's metadata). */
  overrides?: (tenant: Tenant) => EntitlementsLayer | undefined;
}

/**
 * Builds `tenant → effective entitlements` = base rpm ⊕ feature defaults ⊕ plan defaults ⊕ the tenant's
 * subscription (`tenant.entitlements`) ⊕ overrides.
 */
export function createEntitlementsResolver(
  options: EntitlementsResolverOptions = {},
): (tenant: Tenant) => Entitlements {
  return (tenant) =>
    mergeEntitlements(
      { limits: { rpm: options.defaultRpm ?? null } },
      options.featureDefaults === undefined ? undefined : { features: options.featureDefaults },
      options.planDefaults?.[tenant.plan],
      { plan: tenant.plan },
      tenant.entitlements,
      options.overrides?.(tenant),
    );
}

/** True when the feature is on. */
export function hasFeature(entitlements: Entitlements | undefined, feature: string): boolean {
  return entitlements?.features[feature] === true;
}

/**
 * Throws `FEATURE_NOT_IN_PLAN` unless the feature is on.
 */
export function assertFeature(entitlements: Entitlements | undefined, feature: string): void {
  if (!hasFeature(entitlements, feature)) {
    throw new MtPaasError(
      'FEATURE_NOT_IN_PLAN',
      `The feature "${feature}" is not part of the ${entitlements === undefined ? 'current' : `"${entitlements.plan}"`} plan; upgrade the subscription in the marketplace to use it.`,
      { details: { feature, plan: entitlements?.plan } },
    );
  }
}

/** Position of a plan in the order; unknown plans rank below every known one. */
export function planRank(plan: string, order: readonly string[] = DEFAULT_PLAN_ORDER): number {
  return order.indexOf(plan.toLowerCase());
}

/** True when `plan` is at least `minimum` in `order`. */
export function planAtLeast(
  plan: string,
  minimum: string,
  order: readonly string[] = DEFAULT_PLAN_ORDER,
): boolean {
  const needed = planRank(minimum, order);
  if (needed === -1) {
    throw new MtPaasError(
      'CONFIG_INVALID',
      `Unknown plan "${minimum}" in a plan requirement; known plans are ${order.join(' < ')}.`,
    );
  }
  return planRank(plan, order) >= needed;
}

/** Throws `FEATURE_NOT_IN_PLAN` unless the tenant's plan is at least `minimum`. */
export function assertPlan(
  entitlements: Entitlements | undefined,
  minimum: string,
  order: readonly string[] = DEFAULT_PLAN_ORDER,
): void {
  const plan = entitlements?.plan ?? 'none';
  if (!planAtLeast(plan, minimum, order)) {
    throw new MtPaasError(
      'FEATURE_NOT_IN_PLAN',
      `This needs the "${minimum}" plan or higher; the tenant is on "${plan}". Upgrade the subscription in the marketplace.`,
      { details: { requiredPlan: minimum, plan } },
    );
  }
}
