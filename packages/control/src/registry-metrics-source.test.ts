import { createPipelineMetrics } from '@mt-paas/middleware';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { createRegistryMetricsSource } from './registry-metrics-source.js';

describe('createRegistryMetricsSource (the middleware counters, not recomputed)', () => {
  const sample = (status: number, durationSeconds: number) => ({
    plan: 'free',
    route: '/courses',
    status,
    tenantId: 'univ_8',
    durationSeconds,
  });

  it('turns the pipeline counters into requests per minute, 5xx rate and mean latency per interval', async () => {
    const metrics = createPipelineMetrics();
    let clock = 1_000_000;
    const source = createRegistryMetricsSource({ registry: metrics.registry, now: () => clock });
    for (let index = 0; index < 90; index++) metrics.observe(sample(200, 0.2));
    for (let index = 0; index < 10; index++) metrics.observe(sample(503, 0.7));
    for (let index = 0; index < 20; index++) metrics.observe(sample(403, 0.001)); // refusals are not errors
    clock += 2 * 60_000;
    expect(await source()).toEqual({
      requestsPerMinute: 60,
      errorRate: round(10 / 120),
      avgResponseTimeMs: round(((90 * 0.2 + 10 * 0.7 + 20 * 0.001) / 120) * 1000, 1),
    });
    // The next interval only counts what happened since.
    for (let index = 0; index < 30; index++) metrics.observe(sample(200, 0.1));
    clock += 60_000;
    expect(await source()).toEqual({ requestsPerMinute: 30, errorRate: 0, avgResponseTimeMs: 100 });
    clock += 60_000;
    expect(await source()).toEqual({ requestsPerMinute: 0, errorRate: 0, avgResponseTimeMs: 0 });
  });

  it('reads a custom prefix and refuses a registry without pipeline metrics with CONFIG_INVALID', async () => {
    const metrics = createPipelineMetrics({ prefix: 'tutor_' });
    metrics.observe(sample(500, 1));
    const source = createRegistryMetricsSource({ registry: metrics.registry, prefix: 'tutor_' });
    expect((await source()).errorRate).toBe(1);
    const empty = createRegistryMetricsSource({ registry: new Registry() });
    await expect(empty()).rejects.toMatchObject({ code: 'CONFIG_INVALID' });
    const wrongPrefix = createRegistryMetricsSource({ registry: metrics.registry });
    await expect(wrongPrefix()).rejects.toMatchObject({ code: 'CONFIG_INVALID' });
  });
});

function round(value: number, digits = 4): number {
  const factor = 10 ** digits;
  return Math.round(value * factor) / factor;
}
