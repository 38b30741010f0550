import { TENANT_STATUSES, type TenantStatus } from '@mt-paas/context';
import { Counter, Gauge, Registry } from 'prom-client';

/** One quota meter of one tenant, for the usage ratio gauge. */
export interface QuotaUsageSample {
  tenantId: string;
  meter: string;
  used: number;
  /** `null` = unlimited (not reported). */
  limit: number | null;
}

/** Options of {@link createControlMetrics}. */
export interface ControlMetricsOptions {
  /** Register on this registry (pass the pipeline's, so one `/metrics` serves both). @default a fresh `Registry` */
  registry?: Registry;
  /** @default 'mtpaas_' */
  prefix?: string;
  /** Tenants that get their own `tenant` label; every other tenant is `_other`. @default [] */
  tenantLabelAllowList?: readonly string[];
  /** Plans that get their own `plan` label; others are `_other`. @default ['free', 'starter', 'professional', 'enterprise'] */
  planLabels?: readonly string[];
  /** Meters that get their own `meter` label; others are `_other`. @default ['api_requests', 'llm_tokens', 'storage_mb', 'users'] */
  meterLabels?: readonly string[];
  /** Tenant counts by status and plan (e.g. a `group by` on the catalog), read at each scrape. */
  tenantCounts?: () => Promise<ReadonlyArray<{ status: string; plan: string; count: number }>>;
  /** Quota usage of tenants, read at each scrape. */
  quotaUsage?: () => Promise<readonly QuotaUsageSample[]>;
  /** Outbox backlog (`@mt-paas/marketplace`'s `outbox.stats()`), read at each scrape. */
  outboxStats?: () => Promise<{ pending: number; oldestPendingAgeSeconds: number | null }>;
}

/** The control plane's operational metrics (seed 003 "Monitoring"), with bounded label cardinality. */
export interface ControlMetrics {
  registry: Registry;
  /** A quota event from the pipeline (`quota.onEvent`); only `quota.exceeded` is counted. */
  quotaEvent(event: { type: string; tenantId: string; meter: string }): void;
  killSwitchAction(action: 'block' | 'unblock' | 'expire'): void;
  heartbeat(ok: boolean): void;
  auditEvent(severity: string, outcome: 'written' | 'aggregated' | 'suppressed'): void;
  activityStatements(
    outcome: 'sent' | 'dropped_buffer_full' | 'dropped_rejected' | 'dropped_failed',
    count: number,
  ): void;
  /** The text exposition and its content type (for a `/metrics` route). */
  render(): Promise<{ contentType: string; body: string }>;
}

/**
 * Control-plane metrics: tenants by status and plan, quota usage ratio per meter (allow-listed tenants,
 * the rest as `_other` with the highest ratio among them), quota exceeded events, kill-switch actions,
 * outbox backlog and oldest pending age, heartbeat outcomes, audit events and xAPI statements.
 * Every label takes values from a closed set, so the series count is bounded.
 */
export function createControlMetrics(options: ControlMetricsOptions = {}): ControlMetrics {
  const registry = options.registry ?? new Registry();
  const prefix = options.prefix ?? 'mtpaas_';
  const allow = new Set(options.tenantLabelAllowList ?? []);
  const plans = new Set(options.planLabels ?? ['free', 'starter', 'professional', 'enterprise']);
  const meters = new Set(options.meterLabels ?? ['api_requests', 'llm_tokens', 'storage_mb', 'users']);
  const statuses = new Set<string>(TENANT_STATUSES);
  const tenantLabel = (tenantId: string) => (allow.has(tenantId) ? tenantId : '_other');
  const planLabel = (plan: string) => (plans.has(plan) ? plan : '_other');
  const meterLabel = (meter: string) => (meters.has(meter) ? meter : '_other');
  const statusLabel = (status: string) => (statuses.has(status) ? (status as TenantStatus) : '_other');

  const sourceErrors = new Counter({
    name: `${prefix}metrics_source_errors_total`,
    help: 'Scrapes where a metrics source (catalog, quota store, outbox) failed; its gauges kept their last values',
    labelNames: ['source'] as const,
    registers: [registry],
  });
  /** A source that fails must not fail the whole scrape (the pipeline's metrics are served beside these). */
  async function settle<T>(source: string, read: () => Promise<T>): Promise<T | undefined> {
    try {
      return await read();
    } catch {
      sourceErrors.inc({ source });
      return undefined;
    }
  }

  const tenantCounts = options.tenantCounts;
  new Gauge({
    name: `${prefix}tenants`,
    help: 'Tenants in the catalog by status and plan',
    labelNames: ['status', 'plan'] as const,
    registers: [registry],
    async collect() {
      if (tenantCounts === undefined) return;
      const rows = await settle('tenants', tenantCounts);
      if (rows === undefined) return; // keep the last values
      this.reset();
      for (const row of rows) {
        this.inc({ status: statusLabel(row.status), plan: planLabel(row.plan) }, row.count);
      }
    },
  });

  const quotaUsage = options.quotaUsage;
  new Gauge({
    name: `${prefix}tenant_quota_usage_ratio`,
    help: 'Quota used over the limit per tenant and meter (tenant _other: the highest ratio among the tenants not listed)',
    labelNames: ['tenant', 'meter'] as const,
    registers: [registry],
    async collect() {
      if (quotaUsage === undefined) return;
      const samples = await settle('quota usage', quotaUsage);
      if (samples === undefined) return;
      this.reset();
      const ratios = new Map<string, { tenant: string; meter: string; ratio: number }>();
      for (const sample of samples) {
        if (sample.limit === null || !(sample.limit > 0)) continue;
        const labels = { tenant: tenantLabel(sample.tenantId), meter: meterLabel(sample.meter) };
        const key = `${labels.tenant}\u0000${labels.meter}`;
        const ratio = sample.used / sample.limit;
        const previous = ratios.get(key);
        if (previous === undefined || ratio > previous.ratio) ratios.set(key, { ...labels, ratio });
      }
      for (const { tenant, meter, ratio } of ratios.values()) this.set({ tenant, meter }, ratio);
    },
  });

  const quotaExceeded = new Counter({
    name: `${prefix}quota_exceeded_events_total`,
    help: 'Quota exceeded events (once per tenant, meter and period)',
    labelNames: ['tenant', 'meter'] as const,
    registers: [registry],
  });
  const killSwitch = new Counter({
    name: `${prefix}kill_switch_actions_total`,
    help: 'Kill-switch actions taken by this instance',
    labelNames: ['action'] as const,
    registers: [registry],
  });

  const outboxStats = options.outboxStats;
  let outboxSnapshot:
    | Promise<{ pending: number; oldestPendingAgeSeconds: number | null } | undefined>
    | undefined;
  /**
   * One outbox query per scrape for both gauges: prom-client starts every metric's `collect()` in one
   * synchronous pass, so a snapshot dropped on the next microtask is shared by exactly that scrape.
   */
  const readOutbox = () => {
    if (outboxSnapshot === undefined) {
      outboxSnapshot = outboxStats === undefined ? Promise.resolve(undefined) : settle('outbox', outboxStats);
      queueMicrotask(() => {
        outboxSnapshot = undefined;
      });
    }
    return outboxSnapshot;
  };
  new Gauge({
    name: `${prefix}outbox_pending_messages`,
    help: 'Messages for the market not yet delivered',
    registers: [registry],
    async collect() {
      if (outboxStats === undefined) return;
      const stats = await readOutbox();
      if (stats !== undefined) this.set(stats.pending);
    },
  });
  new Gauge({
    name: `${prefix}outbox_oldest_pending_age_seconds`,
    help: 'Age of the oldest message for the market not yet delivered (0 when none)',
    registers: [registry],
    async collect() {
      if (outboxStats === undefined) return;
      const stats = await readOutbox();
      if (stats !== undefined) this.set(Math.max(0, stats.oldestPendingAgeSeconds ?? 0));
    },
  });

  const heartbeats = new Counter({
    name: `${prefix}heartbeats_total`,
    help: 'Heartbeats sent to the market by outcome',
    labelNames: ['result'] as const,
    registers: [registry],
  });
  const heartbeatFailures = new Counter({
    name: `${prefix}heartbeat_failures_total`,
    help: 'Heartbeats the market did not accept (timeouts, errors, market down)',
    registers: [registry],
  });
  const audit = new Counter({
    name: `${prefix}audit_events_total`,
    help: 'Security events handed to the audit logger by severity and outcome',
    labelNames: ['severity', 'outcome'] as const,
    registers: [registry],
  });
  const activity = new Counter({
    name: `${prefix}activity_statements_total`,
    help: 'xAPI statements by outcome (sent to the LRS, or dropped and why)',
    labelNames: ['outcome'] as const,
    registers: [registry],
  });
  const severities = new Set(['low', 'medium', 'high', 'critical']);

  return {
    registry,
    quotaEvent(event) {
      if (event.type !== 'quota.exceeded') return;
      quotaExceeded.inc({ tenant: tenantLabel(event.tenantId), meter: meterLabel(event.meter) });
    },
    killSwitchAction(action) {
      killSwitch.inc({ action });
    },
    heartbeat(ok) {
      heartbeats.inc({ result: ok ? 'ok' : 'failed' });
      if (!ok) heartbeatFailures.inc();
    },
    auditEvent(severity, outcome) {
      audit.inc({ severity: severities.has(severity) ? severity : '_other', outcome });
    },
    activityStatements(outcome, count) {
      if (count > 0) activity.inc({ outcome }, count);
    },
    async render() {
      return { contentType: registry.contentType, body: await registry.metrics() };
    },
  };
}
