import type { AuditEvent, TenantId } from '@mt-paas/context';
import type { OutboxMessage } from '@mt-paas/marketplace';
import { describe, expect, it } from 'vitest';
import { captureLogger } from './__fixtures__/capture-logger.js';
import { createAuditLogger } from './audit-logger.js';
import type { MarketOutbox } from './market.js';

function memorySinks() {
  const rows: AuditEvent[] = [];
  const messages: OutboxMessage[] = [];
  const sink = {
    async record(event: AuditEvent) {
      rows.push(event);
    },
  };
  const outbox: MarketOutbox = {
    async enqueue(batch) {
      messages.push(...batch);
      return batch.length;
    },
  };
  return { rows, messages, sink, outbox };
}

const crossTenant = (at: Date, ip = '123.45.67.89'): AuditEvent => ({
  type: 'cross_tenant_access_attempt',
  severity: 'high',
  tenantId: 'hallym' as TenantId,
  targetTenantId: 'korea',
  actor: { userId: 'u1', ip },
  requestId: 'req-1',
  details: { reason: 'sources disagree', path: '/api/courses/123', method: 'GET' },
  at,
});

describe('createAuditLogger', () => {
  it('writes lifecycle / admin events as one row each, and forwards high and critical ones as seed 001 §5.3 alerts', async () => {
    const { rows, messages, sink, outbox } = memorySinks();
    const audit = createAuditLogger({ sink, outbox, serviceId: 'keli_tutor' });
    const at = new Date('2026-01-03T12:00:00Z');
    await audit.record({ type: 'tenant_onboarded', severity: 'low', tenantId: 'snu' as TenantId, at });
    await audit.record({ type: 'admin_role_granted', severity: 'medium', actor: { userId: 'admin' }, at });
    await audit.record({
      type: 'data_export_bulk',
      severity: 'critical',
      tenantId: 'snu' as TenantId,
      actor: { userId: 'u9', ip: '10.0.0.9' },
      details: { endpoint: '/export' },
      at,
    });
    expect(rows.map((row) => row.type)).toEqual([
      'tenant_onboarded',
      'admin_role_granted',
      'data_export_bulk',
    ]);
    expect(messages).toEqual([
      {
        id: expect.stringMatching(/^audit:[0-9a-f-]{36}$/),
        type: 'audit.alert',
        tenantId: 'snu',
        payload: {
          service_id: 'keli_tutor',
          alert_type: 'data_export_bulk',
          severity: 'critical',
          details: { source_tenant: 'snu', target_tenant: null, endpoint: '/export', ip_address: '10.0.0.9' },
          timestamp: '2026-01-03T12:00:00.000Z',
        },
      },
    ]);
  });

  it('forwards a cross-tenant attempt with the seed body (source_tenant, target_tenant, endpoint, ip_address)', async () => {
    const { messages, sink, outbox } = memorySinks();
    const audit = createAuditLogger({ sink, outbox, serviceId: 'keli_tutor' });
    await audit.record(crossTenant(new Date('2026-01-03T12:00:00Z')));
    await audit.flush();
    expect(messages[0]?.payload).toEqual({
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
  });

  it('writes at most two rows per (tenant, reason) and window under a flood of 10 000 authentication failures', async () => {
    const { rows, sink } = memorySinks();
    let clock = Date.parse('2026-01-03T12:00:00Z');
    const audit = createAuditLogger({
      sink,
      serviceId: 'svc',
      windowMs: 60_000,
      samplesPerWindow: 3,
      now: () => new Date(clock),
    });
    for (let index = 0; index < 10_000; index++) {
      audit.authFailure({
        tenantId: index % 2 === 0 ? 'hallym' : 'korea',
        reason: 'invalid_token',
        ip: `10.0.${index % 250}.1`,
        requestId: `r${index}`,
      });
    }
    audit.authFailure({ tenantId: 'hallym', reason: 'expired_token' });
    await audit.flush();
    // Per tenant: the first failure at once, then one summary with the count of the others.
    const hallym = rows.filter((row) => row.tenantId === 'hallym' && row.details?.reason === 'invalid_token');
    expect(hallym).toHaveLength(2);
    expect(hallym[0]?.details).toEqual({ reason: 'invalid_token' });
    expect(hallym[1]?.details).toMatchObject({ reason: 'invalid_token', aggregated: true, count: 4_999 });
    expect(hallym[1]?.details?.samples).toHaveLength(3);
    expect(rows.filter((row) => row.tenantId === 'korea')).toHaveLength(2);
    expect(rows.filter((row) => row.details?.reason === 'expired_token')).toHaveLength(1);
    expect(rows).toHaveLength(5);
    // Counted events add up: nothing lost, nothing doubled.
    const total = rows.reduce((sum, row) => sum + ((row.details?.count as number | undefined) ?? 1), 0);
    expect(total).toBe(10_001);

    // A new window starts after windowMs.
    clock += 61_000;
    audit.authFailure({ tenantId: 'hallym', reason: 'invalid_token' });
    await audit.flush();
    expect(rows).toHaveLength(6);
  });

  it('bounds the number of counted keys: beyond maxKeys events count under one overflow key', async () => {
    const { rows, sink } = memorySinks();
    const audit = createAuditLogger({ sink, serviceId: 'svc', maxKeys: 10 });
    for (let index = 0; index < 500; index++) audit.authFailure({ reason: `reason_${index}` });
    await audit.flush();
    expect(rows.length).toBeLessThanOrEqual(12);
    const total = rows.reduce((sum, row) => sum + ((row.details?.count as number | undefined) ?? 1), 0);
    expect(total).toBe(500);
    expect(rows.some((row) => row.details?.overflow === true)).toBe(true);
  });

  it('security.cross_tenant_audit: false writes and forwards no cross-tenant event, and audits the rest', async () => {
    for (const enabled of [true, false]) {
      const { rows, messages, sink, outbox } = memorySinks();
      const outcomes: string[] = [];
      const audit = createAuditLogger({
        sink,
        outbox,
        serviceId: 'svc',
        crossTenantAudit: enabled,
        onEvent: (_event, outcome) => outcomes.push(outcome),
      });
      for (let index = 0; index < 5; index++) await audit.record(crossTenant(new Date()));
      audit.authFailure({ tenantId: 'hallym', reason: 'invalid_token' });
      await audit.record({ type: 'tenant_blocked', severity: 'high', at: new Date() });
      await audit.flush();
      const crossRows = rows.filter((row) => row.type === 'cross_tenant_access_attempt');
      const crossAlerts = messages.filter(
        (message) =>
          message.type === 'audit.alert' && message.payload.alert_type === 'cross_tenant_access_attempt',
      );
      if (enabled) {
        expect(crossRows.length).toBe(2); // first + summary of 4
        expect(crossAlerts.length).toBe(2);
        expect(audit.suppressed).toBe(0);
      } else {
        expect(crossRows).toEqual([]);
        expect(crossAlerts).toEqual([]);
        expect(audit.suppressed).toBe(5);
        expect(outcomes.filter((outcome) => outcome === 'suppressed')).toHaveLength(5);
      }
      expect(rows.filter((row) => row.type === 'auth_failed')).toHaveLength(1);
      expect(rows.filter((row) => row.type === 'tenant_blocked')).toHaveLength(1);
    }
  });

  it('a failing sink: a direct write throws to its caller; counted events are logged, never thrown into a request', async () => {
    const logger = captureLogger();
    const audit = createAuditLogger({
      sink: {
        async record() {
          throw new Error('catalog down');
        },
      },
      serviceId: 'svc',
      logger,
    });
    await expect(
      audit.record({ type: 'tenant_offboarded', severity: 'medium', at: new Date() }),
    ).rejects.toThrow('catalog down');
    expect(() => audit.authFailure({ reason: 'invalid_token' })).not.toThrow();
    await audit.flush();
    expect(logger.at('error').map((line) => line.message)).toEqual(['Audit event not recorded']);
  });

  it('stop() writes the open windows and leaves no timer', async () => {
    const { rows, sink } = memorySinks();
    const audit = createAuditLogger({ sink, serviceId: 'svc', windowMs: 3_600_000 });
    audit.start();
    for (let index = 0; index < 3; index++) audit.authFailure({ reason: 'bad_api_key' });
    await audit.stop();
    expect(rows.map((row) => row.details?.count ?? 1)).toEqual([1, 2]);
  });
});
