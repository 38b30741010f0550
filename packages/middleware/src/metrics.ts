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

/**
 * Request metrics with bounded label cardinality: `plan`, `route` (the route template, never the
 * raw path), `status_class` (`2xx`…), and `tenant` only for an allow-list (else `_other`).
 */
export function createPipelineMetrics(options: PipelineMetricsOptions = {}): PipelineMetrics {
  const registry = options.registry ?? new Registry();
  const prefix = options.prefix ?? 'mtpaas_';
  const allow = new Set(options.tenantLabelAllowList ?? []);
  const labelNames = ['plan', 'route', 'status_class', 'tenant'] as const;
  const requests = new Counter({
    name: `${prefix}http_requests_total`,
    help: 'HTTP requests handled by the tenant pipeline',
    labelNames,
    registers: [registry],
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
      const labels = {
        plan: sample.plan ?? 'none',
        route: sample.route ?? '_unmatched',
        status_class: `${Math.floor(sample.status / 100)}xx`,
        tenant:
          sample.tenantId === undefined ? 'none' : allow.has(sample.tenantId) ? sample.tenantId : '_other',
      };
      requests.inc(labels);
      duration.observe(labels, sample.durationSeconds);
    },
    refused(code) {
      refusals.inc({ code });
    },
    async render() {
      return { contentType: registry.contentType, body: await registry.metrics() };
    },
  };
}
