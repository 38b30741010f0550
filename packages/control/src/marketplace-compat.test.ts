import type { AuditEvent, TenantId, TenantStatus } from '@mt-paas/context';
import type { SqlSession } from '@mt-paas/db';
import { describe, expect, expectTypeOf, it } from 'vitest';
import { captureLogger } from './__fixtures__/capture-logger.js';
import { auditAlertBody } from './audit-logger.js';
import { createHeartbeatService } from './heartbeat.js';
import type { BlockInput, KillSwitch } from './kill-switch.js';
import type { MarketOutbox, MarketplaceHeartbeatClient } from './market.js';

/*
 * The public shapes of @mt-paas/marketplace (branch `market`, packages/marketplace/src/client.ts and
 * outbox.ts at 619020d), copied: control cannot depend on that package yet, and the framework must be
 * able to pass its objects to control as they are. When the marketplace package lands, replace these
 * copies with `import type { MarketplaceClient, Outbox } from '@mt-paas/marketplace'` (a devDependency).
 */
interface Heartbeat {
  status: 'healthy' | 'degraded' | 'unhealthy';
  activeTenants: readonly string[];
  metrics?: { requestsPerMinute?: number; errorRate?: number; avgResponseTimeMs?: number };
  timestamp?: Date;
}
interface CallOptions {
  idempotencyKey?: string;
  retries?: number;
}
interface AuditAlert {
  service_id: string;
  alert_type: string;
  severity: 'low' | 'medium' | 'high' | 'critical';
  details: {
    source_tenant: string | null;
    target_tenant: string | null;
    endpoint: string | null;
    ip_address: string | null;
  };
  timestamp: string;
}
interface MarketplaceClientHeartbeat {
  readonly serviceId: string;
  heartbeat(heartbeat: Heartbeat, options?: CallOptions): Promise<void>;
}
interface TenantStatusJson {
  tenantId: string;
  status: TenantStatus;
  reason?: string;
  at: string;
}
type OutboxMessage =
  | { id: string; type: 'usage.report'; tenantId: string; payload: Record<string, unknown> }
  | { id: string; type: 'audit.alert'; tenantId?: string | undefined; payload: AuditAlert }
  | { id: string; type: 'tenant.status'; tenantId: string; payload: TenantStatusJson };
/** `TenantBlocked` / `TenantUnblocked`: the data its receiver hands to `onBlocked` / `onUnblocked`. */
interface TenantBlocked {
  tenantId: TenantId;
  reason: string;
  blockAt: Date | undefined;
  gracePeriodHours: number;
  message: string | undefined;
}
interface TenantUnblocked {
  tenantId: TenantId;
  reason: string | undefined;
  message: string | undefined;
}
interface Outbox {
  enqueue(messages: readonly OutboxMessage[], options?: { executor?: SqlSession }): Promise<number>;
  stats(): Promise<{ pending: number; parked: number; oldestPendingAgeSeconds: number | null }>;
}

describe('the marketplace package plugs into control as is', () => {
  it('its outbox is a MarketOutbox and its client a heartbeat sender (type level)', () => {
    expectTypeOf<Outbox>().toExtend<MarketOutbox>();
    expectTypeOf<MarketplaceClientHeartbeat>().toExtend<MarketplaceHeartbeatClient>();
    expectTypeOf<ReturnType<typeof auditAlertBody>>().toExtend<AuditAlert>();
    expectTypeOf<AuditAlert>().toExtend<ReturnType<typeof auditAlertBody>>();
    // onBlocked: (data) => control.block(data.tenantId, data); onUnblocked: (data) => control.unblock(data.tenantId, data)
    expectTypeOf<TenantBlocked>().toExtend<BlockInput>();
    expectTypeOf<TenantUnblocked>().toExtend<NonNullable<Parameters<KillSwitch['unblock']>[1]>>();
  });

  it("control's alert body is the marketplace's auditAlert(): the seed's four detail keys, nulls when absent", () => {
    const event: AuditEvent = {
      type: 'cross_tenant_access_attempt',
      severity: 'high',
      tenantId: 'hallym' as TenantId,
      targetTenantId: 'korea',
      actor: { ip: '123.45.67.89', userId: 'u1' },
      details: { path: '/api/courses/123', reason: 'sources disagree' },
      at: new Date('2026-01-03T12:00:00Z'),
    };
    expect(auditAlertBody('keli_tutor', event)).toEqual({
      service_id: 'keli_tutor',
      alert_type: 'cross_tenant_access_attempt',
      severity: 'high',
      details: {
        source_tenant: 'hallym',
        target_tenant: 'korea',
        endpoint: '/api/courses/123',
        ip_address: '123.45.67.89',
      },
      timestamp: '2026-01-03T12:00:00.000Z',
    });
    expect(auditAlertBody('svc', { type: 'x', severity: 'critical', at: event.at }).details).toEqual({
      source_tenant: null,
      target_tenant: null,
      endpoint: null,
      ip_address: null,
    });
  });

  it('beats through a MarketplaceClient: camelCase heartbeat, retries: 0, bounded by the timeout though it takes no signal', async () => {
    const calls: Array<{ heartbeat: Heartbeat; options: CallOptions | undefined }> = [];
    let hang = false;
    const client: MarketplaceClientHeartbeat = {
      serviceId: 'keli_tutor',
      async heartbeat(heartbeat, options) {
        calls.push({ heartbeat, options });
        if (hang) await new Promise(() => {});
      },
    };
    const service = createHeartbeatService({
      serviceId: 'keli_tutor',
      sender: client,
      timeoutMs: 50,
      metrics: () => ({ requests_per_minute: 150, error_rate: 0.01, avg_response_time_ms: 250 }),
      activeTenants: () => ['hallym', 'korea', 'snu'],
      now: () => new Date('2026-01-03T12:00:00Z'),
      logger: captureLogger(),
    });
    await expect(service.beat()).resolves.toBe(true);
    expect(calls[0]).toEqual({
      heartbeat: {
        status: 'healthy',
        activeTenants: ['hallym', 'korea', 'snu'],
        metrics: { requestsPerMinute: 150, errorRate: 0.01, avgResponseTimeMs: 250 },
        timestamp: new Date('2026-01-03T12:00:00Z'),
      },
      options: { retries: 0 },
    });
    hang = true;
    await expect(service.beat()).resolves.toBe(false);
    expect(service.consecutiveFailures).toBe(1);
    await service.stop();
  });
});
