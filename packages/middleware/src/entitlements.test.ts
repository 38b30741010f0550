import { describe, expect, it } from 'vitest';
import { entitlements, makeTenant } from './__fixtures__/tenants.js';
import {
  assertFeature,
  assertPlan,
  createEntitlementsResolver,
  hasFeature,
  mergeEntitlements,
  planAtLeast,
} from './entitlements.js';

describe('entitlements', () => {
  it('merges plan defaults ⊕ subscription ⊕ overrides, later layers winning', () => {
    const merged = mergeEntitlements(
      {
        plan: 'starter',
        features: { ai_chat: true, quiz: false },
        limits: { rpm: 60, quotas: { api_requests: { limit: 1000, period: 'daily', enforcement: 'block' } } },
      },
      { features: { quiz: true }, limits: { rpm: 120 } },
      { features: { ai_chat: false }, limits: { rpm: null } },
    );
    expect(merged).toEqual({
      plan: 'starter',
      features: { ai_chat: false, quiz: true },
      limits: { rpm: null, quotas: { api_requests: { limit: 1000, period: 'daily', enforcement: 'block' } } },
    });
  });

  it('resolves a tenant from feature defaults, plan defaults, its subscription and overrides', () => {
    const resolve = createEntitlementsResolver({
      defaultRpm: 60,
      featureDefaults: { ai_chat: true, rag: false },
      planDefaults: { professional: { features: { rag: true }, limits: { rpm: 600 } } },
      overrides: (tenant) => (tenant.metadata.beta === true ? { features: { discussion: true } } : undefined),
    });
    const tenant = makeTenant('univ_8', {
      plan: 'professional',
      entitlements: { plan: 'professional', features: { quiz: true }, limits: { rpm: 900, quotas: {} } },
      metadata: { beta: true },
    });
    const result = resolve(tenant);
    expect(result.features).toEqual({ ai_chat: true, rag: true, quiz: true, discussion: true });
    expect(result.limits.rpm).toBe(900);
    expect(result.plan).toBe('professional');
  });

  it('gates features and plans in order free < starter < professional < enterprise', () => {
    const starter = entitlements({ plan: 'starter', features: { quiz: true } });
    expect(hasFeature(starter, 'quiz')).toBe(true);
    expect(hasFeature(starter, 'rag')).toBe(false);
    expect(() => assertFeature(starter, 'rag')).toThrow(
      expect.objectContaining({ code: 'FEATURE_NOT_IN_PLAN' }),
    );
    expect(planAtLeast('enterprise', 'professional')).toBe(true);
    expect(planAtLeast('starter', 'professional')).toBe(false);
    expect(planAtLeast('custom_plan', 'free')).toBe(false);
    expect(() => assertPlan(starter, 'professional')).toThrow(
      expect.objectContaining({ code: 'FEATURE_NOT_IN_PLAN' }),
    );
    expect(() => assertPlan(starter, 'starter')).not.toThrow();
    expect(planAtLeast('gold', 'silver', ['bronze', 'silver', 'gold'])).toBe(true);
    expect(() => planAtLeast('gold', 'platinum')).toThrow(
      expect.objectContaining({ code: 'CONFIG_INVALID' }),
    );
  });
});
