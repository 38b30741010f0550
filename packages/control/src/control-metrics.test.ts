import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createPipelineMetrics } from '@mt-paas/middleware';
import { describe, expect, it } from 'vitest';
import { createControlMetrics } from './control-metrics.js';

const PROMTOOL = ['/usr/bin/promtool', '/usr/local/bin/promtool'].find((path) => existsSync(path));
const required =
  process.env.MT_PAAS_REQUIRE_SERVICES === '1' || process.env.MT_PAAS_REQUIRE_SERVICES === 'true';
const promtoolSkip =
  PROMTOOL === undefined && !required
    ? 'promtool is not installed (apt-get install prometheus); set MT_PAAS_REQUIRE_SERVICES=1 to make this a failure'
    : undefined;

function promtoolCheck(body: string): { status: number | null; output: string } {
  if (PROMTOOL === undefined) {
    throw new Error(
      'promtool is required (MT_PAAS_REQUIRE_SERVICES=1) but not installed: apt-get install prometheus',
    );
  }
  const result = spawnSync(PROMTOOL, ['check', 'metrics'], { input: body, encoding: 'utf8' });
  return { status: result.status, output: `${result.stdout}${result.stderr}` };
}

function fullMetrics() {
  const pipeline = createPipelineMetrics({ tenantLabelAllowList: ['hallym'] });
  const metrics = createControlMetrics({
    registry: pipeline.registry,
    tenantLabelAllowList: ['hallym'],
    tenantCounts: async () => [
      { status: 'active', plan: 'starter', count: 3 },
      { status: 'blocked', plan: 'enterprise', count: 1 },
      { status: 'active', plan: 'vendor_custom_plan', count: 2 },
      { status: 'active', plan: 'another_custom', count: 4 },
    ],
    quotaUsage: async () => [
      { tenantId: 'hallym', meter: 'api_requests', used: 80, limit: 100 },
      { tenantId: 'korea', meter: 'api_requests', used: 10, limit: 100 },
      { tenantId: 'snu', meter: 'api_requests', used: 95, limit: 100 },
      { tenantId: 'snu', meter: 'llm_tokens', used: 5, limit: null },
      { tenantId: 'snu', meter: 'gpu_minutes', used: 1, limit: 2 },
    ],
    outboxStats: async () => ({ pending: 7, oldestPendingAgeSeconds: 90.5 }),
  });
  pipeline.observe({
    plan: 'starter',
    route: '/courses',
    status: 200,
    tenantId: 'hallym',
    durationSeconds: 0.1,
  });
  metrics.quotaEvent({ type: 'quota.exceeded', tenantId: 'snu', meter: 'api_requests' });
  metrics.quotaEvent({ type: 'quota.threshold', tenantId: 'snu', meter: 'api_requests' });
  metrics.killSwitchAction('block');
  metrics.killSwitchAction('expire');
  metrics.heartbeat(true);
  metrics.heartbeat(false);
  metrics.auditEvent('high', 'written');
  metrics.auditEvent('nonsense', 'suppressed');
  metrics.activityStatements('sent', 3);
  metrics.activityStatements('dropped_buffer_full', 1);
  return metrics;
}

describe('createControlMetrics', () => {
  it('exposes the seed 003 metrics with bounded labels (allow-listed tenants, _other for the rest)', async () => {
    const { body } = await fullMetrics().render();
    expect(body).toContain('mtpaas_tenants{status="active",plan="starter"} 3');
    expect(body).toContain('mtpaas_tenants{status="active",plan="_other"} 6');
    expect(body).toContain('mtpaas_tenants{status="blocked",plan="enterprise"} 1');
    expect(body).toContain('mtpaas_tenant_quota_usage_ratio{tenant="hallym",meter="api_requests"} 0.8');
    // _other carries the highest ratio among the tenants that are not listed.
    expect(body).toContain('mtpaas_tenant_quota_usage_ratio{tenant="_other",meter="api_requests"} 0.95');
    expect(body).toContain('mtpaas_tenant_quota_usage_ratio{tenant="_other",meter="_other"} 0.5');
    expect(body).not.toMatch(/tenant="(korea|snu)"/);
    expect(body).toContain('mtpaas_quota_exceeded_events_total{tenant="_other",meter="api_requests"} 1');
    expect(body).toContain('mtpaas_kill_switch_actions_total{action="block"} 1');
    expect(body).toContain('mtpaas_outbox_pending_messages 7');
    expect(body).toContain('mtpaas_outbox_oldest_pending_age_seconds 90.5');
    expect(body).toContain('mtpaas_heartbeat_failures_total 1');
    expect(body).toContain('mtpaas_audit_events_total{severity="_other",outcome="suppressed"} 1');
    expect(body).toContain('mtpaas_activity_statements_total{outcome="dropped_buffer_full"} 1');
    // The pipeline's own metrics are served from the same registry.
    expect(body).toContain('mtpaas_http_requests_total{');
  });

  it('keeps the series count bounded however many tenants, plans and meters exist', async () => {
    const metrics = createControlMetrics({
      tenantLabelAllowList: ['t_0'],
      tenantCounts: async () =>
        Array.from({ length: 1000 }, (_, index) => ({
          status: `status_${index % 20}`,
          plan: `plan_${index}`,
          count: 1,
        })),
      quotaUsage: async () =>
        Array.from({ length: 5000 }, (_, index) => ({
          tenantId: `t_${index}`,
          meter: `meter_${index % 50}`,
          used: index,
          limit: 10_000,
        })),
    });
    for (let index = 0; index < 5000; index++) {
      metrics.quotaEvent({ type: 'quota.exceeded', tenantId: `t_${index}`, meter: `meter_${index}` });
    }
    const { body } = await metrics.render();
    const series = (name: string) => body.split('\n').filter((line) => line.startsWith(`${name}{`)).length;
    expect(series('mtpaas_tenants')).toBe(1); // status _other × plan _other
    expect(series('mtpaas_tenant_quota_usage_ratio')).toBeLessThanOrEqual(2);
    expect(series('mtpaas_quota_exceeded_events_total')).toBeLessThanOrEqual(2);
  });

  it('a failing source (catalog down) does not fail the scrape: its gauges keep their last values and the failure is counted', async () => {
    let down = false;
    let outboxReads = 0;
    const metrics = createControlMetrics({
      tenantCounts: async () => {
        if (down) throw new Error('catalog down');
        return [{ status: 'active', plan: 'free', count: 5 }];
      },
      outboxStats: async () => {
        outboxReads += 1;
        if (down) throw new Error('catalog down');
        return { pending: 3, oldestPendingAgeSeconds: 12 };
      },
    });
    expect((await metrics.render()).body).toContain('mtpaas_tenants{status="active",plan="free"} 5');
    expect(outboxReads).toBe(1); // one query for both outbox gauges
    down = true;
    await metrics.render();
    const { body } = await metrics.render(); // the error count of a scrape shows from the next one
    expect(body).toContain('mtpaas_tenants{status="active",plan="free"} 5');
    expect(body).toContain('mtpaas_outbox_pending_messages 3');
    expect(body).toContain('mtpaas_metrics_source_errors_total{source="tenants"} 1\n');
    expect(body).toContain('mtpaas_metrics_source_errors_total{source="outbox"} 1\n'); // one query for both gauges
  });

  it.skipIf(promtoolSkip !== undefined)(
    `passes promtool check metrics (control and pipeline metrics on one registry)${promtoolSkip === undefined ? '' : ` — skipped: ${promtoolSkip}`}`,
    async () => {
      const { body } = await fullMetrics().render();
      const result = promtoolCheck(body);
      expect(result.output).toBe('');
      expect(result.status).toBe(0);
      // And promtool really checks: a counter without _total is reported.
      const broken = promtoolCheck('# HELP bad_counter x\n# TYPE bad_counter counter\nbad_counter 1\n');
      expect(broken.output).toMatch(/counter metrics should have "_total" suffix/);
    },
  );
});
