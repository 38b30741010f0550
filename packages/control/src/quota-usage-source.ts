import type { QuotaPeriod, TenantDirectory, TenantId } from '@mt-paas/context';
import type { QuotaUsageSample } from './control-metrics.js';

/** Options of {@link createQuotaUsageSource}. */
export interface QuotaUsageSourceOptions {
  /** The pipeline's quota meter (`pipeline.quotas` of `@mt-paas/middleware`), or anything with its `usage()`. */
  quotas: { usage(tenantId: TenantId, meter: string, period: QuotaPeriod): Promise<number> };
  /** Where each tenant's quotas come from (`catalog.directory`, or the pipeline's cached directory). */
  directory: Pick<TenantDirectory, 'get'>;
  /** The tenants reported one by one: the metrics' `tenantLabelAllowList`. */
  tenantIds: readonly string[];
}

/**
 * The `quotaUsage` of {@link createControlMetrics} for the allow-listed tenants: each quota of their
 * entitlements (unlimited ones skipped) with its usage in the running period, read from the shared quota
 * counters. One counter read per tenant and meter per scrape, so keep the list short.
 */
export function createQuotaUsageSource(options: QuotaUsageSourceOptions): () => Promise<QuotaUsageSample[]> {
  return async () => {
    const samples: QuotaUsageSample[] = [];
    for (const id of options.tenantIds) {
      const tenantId = id as TenantId;
      const tenant = await options.directory.get(tenantId);
      if (tenant === undefined) continue;
      for (const [meter, quota] of Object.entries(tenant.entitlements.limits.quotas)) {
        if (quota.limit === null) continue;
        const used = await options.quotas.usage(tenantId, meter, quota.period);
        samples.push({ tenantId, meter, used, limit: quota.limit });
      }
    }
    return samples;
  };
}
