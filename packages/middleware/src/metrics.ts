import { MtPaasError } from '@mt-paas/context';
import { Counter, Registry } from 'prom-client';

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

const STATUS_CLASSES = ['0xx', '1xx', '2xx', '3xx', '4xx', '5xx', '6xx', '7xx', '8xx', '9xx'];

type LabelName = 'plan' | 'route' | 'status_class' | 'tenant';

/** One exported value, as prom-client's registry reads it. */
interface HistogramValue {
  labels: Record<string, string | number>;
  sharedLabels?: Readonly<Record<string, string>>;
  value: number;
  metricName: string;
  /** prom-client's field: `null` on buckets (no exemplars here), absent on `_sum` / `_count`. */
  exemplar?: null;
}

/** What prom-client's registry reads from a metric (`name`, `help`, `type`, `values`, `aggregator`). */
interface HistogramData {
  name: string;
  help: string;
  type: 'histogram';
  values: HistogramValue[];
  aggregator: 'sum';
}

/**
 * One label set of the request metrics: the requests counted since the counter was last read, and the
 * duration histogram's own figures (per-bucket counts, not cumulative; sum; count).
 */
interface Series {
  labels: Readonly<Record<LabelName, string>>;
  uncounted: number;
  buckets: Float64Array;
  sum: number;
  count: number;
}

/**
 * The request-duration histogram, registered on the prom-client registry as a metric of its own: its series
 * are the pipeline's, found through three map lookups by the label values, where prom-client's `Histogram`
 * validates the label object and hashes it into a string on every `observe` (about 9,000 instructions per
 * request under callgrind, docs/performance.md). prom-client still renders it (`registry.metrics()`), in the
 * same shape its `Histogram` has: `_bucket{le}` cumulative, `_sum`, `_count`, per label set.
 */
class SeriesHistogram {
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  constructor(
    readonly name: string,
    readonly help: string,
    readonly upperBounds: readonly number[],
    private readonly series: readonly Series[],
  ) {}

  observe(entry: Series, seconds: number): void {
    const bounds = this.upperBounds;
    let index = 0;
    while (index < bounds.length && seconds > (bounds[index] as number)) index += 1;
    if (index < bounds.length) entry.buckets[index] = (entry.buckets[index] ?? 0) + 1;
    entry.sum += seconds;
    entry.count += 1;
  }

  /** What prom-client's registry renders: each value's own labels (`le`) apart from the series' labels. */
  getForPromString(): HistogramData {
    const values: HistogramValue[] = [];
    const bucketName = `${this.name}_bucket`;
    for (const entry of this.series) {
      if (entry.count === 0) continue;
      let cumulative = 0;
      for (let index = 0; index < this.upperBounds.length; index += 1) {
        cumulative += entry.buckets[index] ?? 0;
        values.push({
          labels: { le: this.upperBounds[index] as number },
          sharedLabels: entry.labels,
          value: cumulative,
          metricName: bucketName,
          exemplar: null,
        });
      }
      const shared = { sharedLabels: entry.labels };
      values.push(
        { labels: { le: '+Inf' }, ...shared, value: entry.count, metricName: bucketName, exemplar: null },
        { labels: {}, ...shared, value: entry.sum, metricName: `${this.name}_sum` },
        { labels: {}, ...shared, value: entry.count, metricName: `${this.name}_count` },
      );
    }
    return { name: this.name, help: this.help, type: 'histogram', values, aggregator: 'sum' };
  }

  /** The same values with the series' labels merged into each (prom-client's `Histogram.get()` shape). */
  async get(): Promise<HistogramData> {
    const data = this.getForPromString();
    return {
      ...data,
      values: data.values.map(({ sharedLabels, ...value }) => ({
        ...value,
        labels: { ...value.labels, ...sharedLabels },
      })),
    };
  }

  reset(): void {
    for (const entry of this.series) {
      entry.buckets.fill(0);
      entry.sum = 0;
      entry.count = 0;
    }
  }
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
  // Found by route → plan → tenant label → status class, without building a key per request.
  const series: Series[] = [];
  const byRoute = new Map<string, Map<string, Map<string, (Series | undefined)[]>>>();
  const requests: Counter<(typeof labelNames)[number]> = new Counter({
    name: `${prefix}http_requests_total`,
    help: 'HTTP requests handled by the tenant pipeline',
    labelNames,
    registers: [registry],
    collect() {
      for (const entry of series) {
        if (entry.uncounted === 0) continue;
        requests.inc(entry.labels, entry.uncounted);
        entry.uncounted = 0;
      }
    },
  });
  const duration = new SeriesHistogram(
    `${prefix}http_request_duration_seconds`,
    'HTTP request duration through the tenant pipeline',
    [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    series,
  );
  // prom-client's registry takes any object with its metric methods (`get`, `reset`, `getForPromString`).
  registry.registerMetric(duration as unknown as Parameters<Registry['registerMetric']>[0]);

  function seriesOf(plan: string, route: string, hundreds: number, tenant: string): Series {
    let byPlan = byRoute.get(route);
    if (byPlan === undefined) {
      byPlan = new Map();
      byRoute.set(route, byPlan);
    }
    let byTenant = byPlan.get(plan);
    if (byTenant === undefined) {
      byTenant = new Map();
      byPlan.set(plan, byTenant);
    }
    let byStatus = byTenant.get(tenant);
    if (byStatus === undefined) {
      byStatus = [];
      byTenant.set(tenant, byStatus);
    }
    let entry = byStatus[hundreds];
    if (entry === undefined) {
      entry = {
        labels: Object.freeze({ plan, route, status_class: STATUS_CLASSES[hundreds] as string, tenant }),
        uncounted: 0,
        buckets: new Float64Array(duration.upperBounds.length),
        sum: 0,
        count: 0,
      };
      byStatus[hundreds] = entry;
      series.push(entry);
    }
    return entry;
  }
  const refusals = new Counter({
    name: `${prefix}refusals_total`,
    help: 'Requests refused by the tenant pipeline, by error code',
    labelNames: ['code'] as const,
    registers: [registry],
  });
  return {
    registry,
    observe(sample) {
      const hundreds = Math.min(9, Math.max(0, Math.floor(sample.status / 100))) || 0;
      const tenant =
        sample.tenantId === undefined ? 'none' : allow.has(sample.tenantId) ? sample.tenantId : '_other';
      const entry = seriesOf(sample.plan ?? 'none', sample.route ?? '_unmatched', hundreds, tenant);
      entry.uncounted += 1;
      const seconds = sample.durationSeconds;
      duration.observe(entry, Number.isFinite(seconds) && seconds > 0 ? seconds : 0);
    },
    refused(code) {
      refusals.inc({ code });
    },
    async render() {
      return { contentType: registry.contentType, body: await registry.metrics() };
    },
  };
}
