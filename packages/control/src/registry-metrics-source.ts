import { MtPaasError } from '@mt-paas/context';
import type { Registry } from 'prom-client';
import type { HeartbeatMetrics } from './market.js';

/** Options of {@link createRegistryMetricsSource}. */
export interface RegistryMetricsSourceOptions {
  /** The registry the middleware's pipeline records into (`pipeline.metrics.registry`). */
  registry: Registry;
  /** The pipeline's metric name prefix. @default 'mtpaas_' */
  prefix?: string;
  /** @default () => Date.now() */
  now?: () => number;
}

const ZERO: Totals = { requests: 0, errors: 0, durationSum: 0, durationCount: 0 };

interface Totals {
  requests: number;
  errors: number;
  durationSum: number;
  durationCount: number;
}

/**
 * Heartbeat metrics read from the middleware's own prom-client counters (`<prefix>http_requests_total`
 * and `<prefix>http_request_duration_seconds`), never recomputed: each call returns the rate over the
 * time since the previous call (the first call: everything recorded, over the time since the source
 * was created — create it when the pipeline is created). `errorRate` (the seed's `error_rate`) is the
 * share of `5xx` answers; refusals (4xx) are the tenants' errors, not the service's.
 *
 * @throws MtPaasError `CONFIG_INVALID` when the registry holds no pipeline metrics (metrics: false, or
 *   another prefix).
 */
export function createRegistryMetricsSource(
  options: RegistryMetricsSourceOptions,
): () => Promise<HeartbeatMetrics> {
  const prefix = options.prefix ?? 'mtpaas_';
  const now = options.now ?? (() => Date.now());
  const requestsName = `${prefix}http_requests_total`;
  const durationName = `${prefix}http_request_duration_seconds`;

  async function read(): Promise<Totals> {
    const requests = options.registry.getSingleMetric(requestsName);
    const duration = options.registry.getSingleMetric(durationName);
    if (requests === undefined || duration === undefined) {
      throw new MtPaasError(
        'CONFIG_INVALID',
        `The registry has no ${requestsName} / ${durationName}; pass the pipeline's registry (pipeline.metrics.registry) and its prefix, or a metrics function.`,
      );
    }
    const totals: Totals = { requests: 0, errors: 0, durationSum: 0, durationCount: 0 };
    for (const sample of (await requests.get()).values) {
      totals.requests += sample.value;
      if (sample.labels.status_class === '5xx') totals.errors += sample.value;
    }
    for (const sample of (await duration.get()).values) {
      const name = (sample as { metricName?: string }).metricName;
      if (name === `${durationName}_sum`) totals.durationSum += sample.value;
      if (name === `${durationName}_count`) totals.durationCount += sample.value;
    }
    return totals;
  }

  // Counters start at zero with the process: the first interval runs from the source's creation
  // (create it with the pipeline) and counts everything recorded so far.
  let previous: { at: number; totals: Totals } = { at: now(), totals: ZERO };

  return async () => {
    const totals = await read();
    const before = previous.totals;
    const at = now();
    const minutes = Math.max((at - previous.at) / 60_000, 1 / 60_000);
    previous = { at, totals };
    // Counters only grow; a registry reset (process restart) shows as a drop: count from zero then.
    const reset = totals.requests < before.requests || totals.durationCount < before.durationCount;
    const from = reset ? { requests: 0, errors: 0, durationSum: 0, durationCount: 0 } : before;
    const requests = totals.requests - from.requests;
    const errors = totals.errors - from.errors;
    const count = totals.durationCount - from.durationCount;
    const sum = totals.durationSum - from.durationSum;
    return {
      requestsPerMinute: round(requests / minutes, 2),
      errorRate: requests === 0 ? 0 : round(errors / requests, 4),
      avgResponseTimeMs: count === 0 ? 0 : round((sum / count) * 1000, 1),
    };
  };
}

function round(value: number, digits: number): number {
  const factor = 10 ** digits;
  return Math.round(value * factor) / factor;
}
