import { parseConfig } from '@mt-paas/config';
import type { Tenant, TenantDirectory, TenantId } from '@mt-paas/context';
import { createTenantPipeline } from '@mt-paas/middleware';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { pipelineOptionsFromConfig } from './pipeline-options-from-config.js';

function directoryOf(tenants: Tenant[]): TenantDirectory {
  return {
    get: async (id) => tenants.find((tenant) => tenant.id === id),
    resolveDomain: async () => undefined,
    list: async () => ({ tenants, nextCursor: undefined }),
  };
}

function makeTenant(id: string, overrides: Partial<Tenant>): Tenant {
  const at = new Date('2026-01-01T00:00:00Z');
  return {
    id: id as TenantId,
    name: `Tenant ${id}`,
    status: 'active',
    plan: 'starter',
    entitlements: { plan: 'starter', features: {}, limits: { rpm: null, quotas: {} } },
    placement: { mode: 'row' },
    metadata: {},
    createdAt: at,
    updatedAt: at,
    ...overrides,
  };
}

const yaml = `
marketplace:
  grace_period_hours: 24
tenant_identification:
  methods:
    - type: header
      name: X-Tenant-ID
    - type: subdomain
      extract_pattern: "^([^.]+)"
      base_domain: keli.example.com
    - type: query_param
      name: tenant
auth:
  jwt:
    secret: a-very-long-test-secret-0123456789abcdef
    issuer: https://market.example.com
features:
  defaults:
    ai_chat: true
    quiz: false
security:
  rate_limit:
    enabled: true
    default_rpm: 30
`;

describe('pipelineOptionsFromConfig', () => {
  it('maps the typed mt-paas.yaml onto pipeline options', () => {
    const config = parseConfig(yaml, { env: {} });
    const options = pipelineOptionsFromConfig(config);
    expect(options.strategies).toEqual([
      { type: 'header', name: 'X-Tenant-ID' },
      { type: 'subdomain', pattern: '^([^.]+)', baseDomain: 'keli.example.com' },
      { type: 'query', name: 'tenant' },
    ]);
    expect(options.jwt).toMatchObject({
      secret: 'a-very-long-test-secret-0123456789abcdef',
      algorithms: ['HS256'],
      issuer: 'https://market.example.com',
      tenantClaim: 'tenant_id',
    });
    expect(options.gracePeriodMs).toBe(86_400_000);
    expect(options.rateLimit).toEqual({ enabled: true, defaultRpm: 30 });
    expect(Object.keys(options.entitlements?.planDefaults ?? {})).toEqual(
      expect.arrayContaining(['free', 'starter', 'professional', 'enterprise']),
    );
  });

  it('drives a working pipeline: subdomain resolution, feature defaults and plan defaults', async () => {
    const config = parseConfig(yaml, { env: {} });
    const directory = directoryOf([
      makeTenant('univ_8', {
        plan: 'professional',
        entitlements: { plan: 'professional', features: {}, limits: { rpm: null, quotas: {} } },
      }),
    ]);
    const pipeline = createTenantPipeline({
      ...pipelineOptionsFromConfig(config),
      directory,
      logger: pino({ level: 'silent' }),
      metrics: false,
    });
    const admission = await pipeline.admit({
      method: 'GET',
      path: '/x',
      headers: { host: 'univ_8.keli.example.com' },
    });
    expect(admission.tenantId).toBe('univ_8');
    expect(admission.entitlements?.features.ai_chat).toBe(true);
    expect(admission.entitlements?.plan).toBe('professional');
    await pipeline.close();
  });
});
