import type { Tenant, TenantId } from '@mt-paas/context';
import { createMemoryQuotaStore, createQuotaMeter } from '@mt-paas/middleware';
import { describe, expect, it } from 'vitest';
import { createControlMetrics } from './control-metrics.js';
import { createQuotaUsageSource } from './quota-usage-source.js';

function tenant(id: string, quotas: Tenant['entitlements']['limits']['quotas']): Tenant {
  const at = new Date('2026-01-01T00:00:00Z');
  return {
    id: id as TenantId,
    name: id,
    status: 'active',
    plan: 'starter',
    entitlements: { plan: 'starter', features: {}, limits: { rpm: null, quotas } },
    placement: { mode: 'row' },
    metadata: {},
    createdAt: at,
    updatedAt: at,
  };
}

describe('createQuotaUsageSource (the pipeline quota meter → the usage ratio gauge)', () => {
  it('reports the allow-listed tenants from the shared counters, skipping unlimited quotas and unknown tenants', async () => {
    const quotas = createQuotaMeter({ store: createMemoryQuotaStore() });
    const tenants = new Map<string, Tenant>([
      [
        'hallym',
        tenant('hallym', {
          api_requests: { limit: 100, period: 'daily', enforcement: 'block' },
          llm_tokens: { limit: null, period: 'monthly', enforcement: 'block' },
        }),
      ],
      ['korea', tenant('korea', { api_requests: { limit: 10, period: 'daily', enforcement: 'block' } })],
    ]);
    const hallym = tenants.get('hallym')!;
    for (let index = 0; index < 42; index++) {
      await quotas.consume(hallym.id, 'api_requests', hallym.entitlements.limits.quotas.api_requests!);
    }
    const source = createQuotaUsageSource({
      quotas,
      directory: { get: async (id) => tenants.get(id) },
      tenantIds: ['hallym', 'missing'],
    });
    expect(await source()).toEqual([{ tenantId: 'hallym', meter: 'api_requests', used: 42, limit: 100 }]);
    const metrics = createControlMetrics({ tenantLabelAllowList: ['hallym'], quotaUsage: source });
    expect((await metrics.render()).body).toContain(
      'mtpaas_tenant_quota_usage_ratio{tenant="hallym",meter="api_requests"} 0.42',
    );
    await quotas.close();
  });
});
