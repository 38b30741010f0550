import { MtPaasError } from '@mt-paas/context';
import { Counter, Histogram, Registry } from 'prom-client';

/** Options of {@link createPipelineMetrics}. */
export interface PipelineMetricsOptions {
  /** Registry to register on. @default a fresh `Registry` (never the global default) */
  registry?: Registry;
  /** Tenants that get their own `tenant` label value; every other tenant is `_other`. @default [] */
  tenantLabelAllowList?: readonly string[];
  /** Metric name prefix. @default 'mtpaas_' */
  prefix?: string;
}

/** The request metrics the pipeline records. */
export interface PipelineMetrics {
  registry: Registry;
  /** Records one finished request. */
  observe(sample: {
    plan: string | undefined;
    route: string | undefined;
    status: number;
    tenantId: string | undefined;
    durationSeconds: number;
  }): void;
  /** Records one refusal by error code. */
  refused(code: string): void;
  /** The text exposition and its content type (for a `/metrics` route). */
  render(): Promise<{ contentType: string; body: string }>;
}

/** What a `/metrics` handler answers (404) when the pipeline was built with `metrics: false`. */
export function metricsDisabledError(): MtPaasError {
  return new MtPaasError(
    'INVALID_REQUEST',
    'Metrics are disabled for this service (the pipeline was built with metrics: false); remove that option to serve them.',
    { httpStatus: 404 },
  );
}

const STATUS_CLASSES = ['0xx', '1xx', '2xx', '3xx', '4xx', '5xx'];

/** One label set of the request metrics, and the requests counted since the counter was last read. */
interface Series {
  labels: Readonly<Record<'plan' | 'route' | 'status_class' | 'tenant', string>>;
  uncounted: number;
}

/**
 * Request metrics with bounded label cardinality: `plan`, `route` (the route template, never the
 * raw path), `status_class` (`2xx`…), and `tenant` only for an allow-list (else `_other`).
 */
export function createPipelineMetrics(options: PipelineMetricsOptions = {}): PipelineMetrics {
  const registry = options.registry ?? new Registry();
  const prefix = options.prefix ?? 'mtpaas_';
  const allow = new Set(options.tenantLabelAllowList ?? []);
  const labelNames = ['plan', 'route', 'status_class', 'tenant'] as const;
  // One entry per series of the metrics (so bounded the same way: plans, route templates, status classes,
  // allow-listed tenants): its label object is built once, and requests are counted here and added to
  // the counter when it is read (prom-client calls `collect` on every read: `/metrics`, `get()`).
  const series = new Map<string, Series>();
  const requests: Counter<(typeof labelNames)[number]> = new Counter({
    name: `${prefix}http_requests_total`,
    help: 'HTTP requests handled by the tenant pipeline',
    labelNames,
    registers: [registry],
    collect() {
      for (const entry of series.values()) {
        if (entry.uncounted === 0) continue;
        requests.inc(entry.labels, entry.uncounted);
        entry.uncounted = 0;
      }
    },
  });
  const duration = new Histogram({
    name: `${prefix}http_request_duration_seconds`,
    help: 'HTTP request duration through the tenant pipeline',
    labelNames,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  const refusals = new Counter({
    name: `${prefix}refusals_total`,
    help: 'Requests refused by the tenant pipeline, by error code',
    labelNames: ['code'] as const,
    registers: [registry],
  });
  return {
    registry,
    observe(sample) {
      const plan = sample.plan ?? 'none';
      const route = sample.route ?? '_unmatched';
      const hundreds = Math.floor(sample.status / 100);
      const statusClass = STATUS_CLASSES[hundreds] ?? `${hundreds}xx`;
      const tenant =
        sample.tenantId === undefined ? 'none' : allow.has(sample.tenantId) ? sample.tenantId : '_other';
      const key = `${plan}\u0000${route}\u0000${statusClass}\u0000${tenant}`;
      let entry = series.get(key);
      if (entry === undefined) {
        entry = { labels: Object.freeze({ plan, route, status_class: statusClass, tenant }), uncounted: 0 };
        series.set(key, entry);
      }
      entry.uncounted += 1;
      duration.observe(entry.labels, sample.durationSeconds);
    },
    refused(code) {
      refusals.inc({ code });
    },
    async render() {
      return { contentType: registry.contentType, body: await registry.metrics() };
    },
  };
}
