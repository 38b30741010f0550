import { describe, expect, expectTypeOf, it } from 'vitest';
import type {
  AuditEvent,
  AuditSink,
  TenantDirectory,
  TenantEvent,
  TenantEventBus,
  TenantPage,
  Unsubscribe,
  UsageRecord,
  UsageSink,
} from './contracts.js';
import { parseTenantId, type TenantId } from './tenant-id.js';
import { TENANT_STATUSES, type Tenant, type TenantBlock, type TenantStatus } from './types.js';

// The shapes below are checked by `tsc --noEmit` (the package's typecheck covers its tests): a field
// the issue names that goes missing or changes type fails the typecheck, not only this run.

describe('tenant types', () => {
  it('lists every lifecycle status in order', () => {
    expect(TENANT_STATUSES).toEqual([
      'provisioning',
      'active',
      'grace',
      'suspended',
      'blocked',
      'deleted',
      'purged',
    ]);
    expectTypeOf<TenantStatus>().toEqualTypeOf<(typeof TENANT_STATUSES)[number]>();
    expectTypeOf<TenantStatus>().toEqualTypeOf<
      'provisioning' | 'active' | 'grace' | 'suspended' | 'blocked' | 'deleted' | 'purged'
    >();
  });

  it('carries plan, entitlements, placement, subscription, block, metadata and timestamps', () => {
    const tenant = {
      id: parseTenantId('univ_8'),
      name: 'Hallym University',
      status: 'grace',
      plan: 'professional',
      entitlements: {
        plan: 'professional',
        features: { quiz: true, rag: false },
        limits: {
          rpm: 1200,
          quotas: { llm_tokens: { limit: 10_000_000, period: 'monthly', enforcement: 'throttle' } },
        },
      },
      placement: { mode: 'schema', location: 't_univ_8' },
      expiresAt: new Date('2026-12-31T00:00:00Z'),
      graceUntil: new Date('2027-01-01T00:00:00Z'),
      block: { reason: 'payment', message: 'Contact billing.', until: new Date('2027-01-02T00:00:00Z') },
      metadata: { institution: 'Hallym' },
      createdAt: new Date('2026-01-01T00:00:00Z'),
      updatedAt: new Date('2026-11-22T00:00:00Z'),
    } satisfies Tenant;
    expect(TENANT_STATUSES).toContain(tenant.status);
    expectTypeOf<Tenant['entitlements']['limits']['rpm']>().toEqualTypeOf<number | null>();
    expectTypeOf<Tenant['placement']['mode']>().toEqualTypeOf<'row' | 'schema' | 'database' | 'docker'>();
  });
});

describe('contracts', () => {
  // Type-level only: the other packages implement these, and their own tests run the behaviour.
  it('have the members the other packages implement', () => {
    expectTypeOf<TenantDirectory['get']>().toEqualTypeOf<
      (tenantId: TenantId) => Promise<Tenant | undefined>
    >();
    expectTypeOf<TenantDirectory['resolveDomain']>().toEqualTypeOf<
      (domain: string) => Promise<TenantId | undefined>
    >();
    expectTypeOf<TenantDirectory['list']>().returns.toEqualTypeOf<Promise<TenantPage>>();
    expectTypeOf<TenantEventBus['publish']>().toEqualTypeOf<(event: TenantEvent) => Promise<void>>();
    expectTypeOf<TenantEventBus['subscribe']>().returns.toEqualTypeOf<Promise<Unsubscribe>>();
    expectTypeOf<TenantEvent['type']>().toEqualTypeOf<
      'tenant.changed' | 'tenant.deleted' | 'tenant.blocked' | 'tenant.unblocked'
    >();
    expectTypeOf<Extract<TenantEvent, { type: 'tenant.blocked' }>['block']>().toEqualTypeOf<TenantBlock>();
    expectTypeOf<UsageSink['record']>().toEqualTypeOf<(records: readonly UsageRecord[]) => Promise<void>>();
    expectTypeOf<AuditSink['record']>().toEqualTypeOf<(event: AuditEvent) => Promise<void>>();
  });
});
