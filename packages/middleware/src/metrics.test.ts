import { pino } from 'pino';
import { register as globalRegistry, Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { makeTenant, memoryDirectory } from './__fixtures__/tenants.js';
import { createPipelineMetrics } from './metrics.js';
import { createTenantPipeline } from './pipeline.js';

describe('createPipelineMetrics', () => {
  it('registers on the given registry, never on the global default', async () => {
    const registry = new Registry();
    const before = (await globalRegistry.getMetricsAsJSON()).length;
    const metrics = createPipelineMetrics({ registry, tenantLabelAllowList: ['univ_8'] });
    metrics.observe({
      plan: 'starter',
      route: '/courses/:id',
      status: 201,
      tenantId: 'univ_8',
      durationSeconds: 0.01,
    });
    metrics.observe({
      plan: 'starter',
      route: '/courses/:id',
      status: 404,
      tenantId: 'random_1',
      durationSeconds: 0.01,
    });
    metrics.refused('TENANT_NOT_FOUND');
    const text = await registry.metrics();
    expect(text).toContain(
      'mtpaas_http_requests_total{plan="starter",route="/courses/:id",status_class="2xx",tenant="univ_8"} 1',
    );
    expect(text).toContain(
      'mtpaas_http_requests_total{plan="starter",route="/courses/:id",status_class="4xx",tenant="_other"} 1',
    );
    expect(text).toContain('mtpaas_refusals_total{code="TENANT_NOT_FOUND"} 1');
    expect((await globalRegistry.getMetricsAsJSON()).length).toBe(before);
  });

  it('counts every request once, however often and whenever the metrics are read', async () => {
    const registry = new Registry();
    const metrics = createPipelineMetrics({ registry });
    const sample = { plan: 'pro', route: '/x', status: 200, tenantId: 'univ_8', durationSeconds: 0.002 };
    const total = async () =>
      (await registry.getSingleMetric('mtpaas_http_requests_total')?.get())?.values.find(
        (value) => value.labels.status_class === '2xx',
      )?.value;
    expect(await total()).toBeUndefined();
    for (let index = 0; index < 3; index += 1) metrics.observe(sample);
    expect(await total()).toBe(3);
    expect(await total()).toBe(3);
    metrics.observe(sample);
    await registry.metrics();
    expect(await registry.metrics()).toContain(
      'mtpaas_http_requests_total{plan="pro",route="/x",status_class="2xx",tenant="_other"} 4',
    );
    expect(await total()).toBe(4);
    // The histogram counts the same requests.
    expect(await registry.metrics()).toContain(
      'mtpaas_http_request_duration_seconds_count{plan="pro",route="/x",status_class="2xx",tenant="_other"} 4',
    );
    metrics.observe({ ...sample, status: 503 });
    expect(await registry.metrics()).toContain(
      'mtpaas_http_requests_total{plan="pro",route="/x",status_class="5xx",tenant="_other"} 1',
    );
  });

  it("renders the duration histogram exactly as prom-client's own Histogram does, in both exposition formats", async () => {
    for (const contentType of [Registry.PROMETHEUS_CONTENT_TYPE, Registry.OPENMETRICS_CONTENT_TYPE]) {
      const ours = new Registry<typeof contentType>();
      ours.setContentType(contentType);
      const theirs = new Registry<typeof contentType>();
      theirs.setContentType(contentType);
      const metrics = createPipelineMetrics({ registry: ours as Registry, tenantLabelAllowList: ['univ_8'] });
      const reference = new Histogram({
        name: 'mtpaas_http_request_duration_seconds',
        help: 'HTTP request duration through the tenant pipeline',
        labelNames: ['plan', 'route', 'status_class', 'tenant'],
        buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
        registers: [theirs],
      });
      // Every bucket edge, values between them, past the last one, and several series in a fixed pseudo-random order.
      const durations = [0, 0.001, 0.005, 0.0050001, 0.01, 0.3, 1, 2.5, 9.99, 10, 10.5, 120];
      let seed = 7;
      for (let index = 0; index < 300; index += 1) {
        seed = (seed * 48271) % 2147483647;
        const sample = {
          plan: ['pro', 'starter', undefined][seed % 3],
          route: ['/a', '/b/:id', undefined][(seed >> 3) % 3],
          status: [200, 201, 302, 404, 503][(seed >> 5) % 5] as number,
          tenantId: ['univ_8', 'univ_9', undefined][(seed >> 7) % 3],
          durationSeconds: durations[(seed >> 9) % durations.length] as number,
        };
        metrics.observe(sample);
        const hundreds = Math.floor(sample.status / 100);
        reference.observe(
          {
            plan: sample.plan ?? 'none',
            route: sample.route ?? '_unmatched',
            status_class: `${hundreds}xx`,
            tenant:
              sample.tenantId === undefined ? 'none' : sample.tenantId === 'univ_8' ? 'univ_8' : '_other',
          },
          sample.durationSeconds,
        );
      }
      const durationLines = (text: string) =>
        text.split('\n').filter((line) => line.includes('http_request_duration_seconds'));
      const mine = durationLines(await ours.metrics());
      expect(mine.length).toBeGreaterThan(14 * 10);
      expect(mine).toEqual(durationLines(await theirs.metrics()));
      // The JSON shape too (labels merged, `le` a number), and a reset empties it as prom-client's does.
      const name = 'mtpaas_http_request_duration_seconds';
      expect(await ours.getSingleMetric(name)?.get()).toEqual(await theirs.getSingleMetric(name)?.get());
      ours.resetMetrics();
      theirs.resetMetrics();
      expect(durationLines(await ours.metrics())).toEqual(durationLines(await theirs.metrics()));
      expect(durationLines(await ours.metrics())).toHaveLength(2);
    }
  });

  it('keeps a status outside 1xx–5xx and a duration that is no number within the metrics', async () => {
    const registry = new Registry();
    const metrics = createPipelineMetrics({ registry });
    const sample = { plan: 'pro', route: '/x', tenantId: undefined };
    metrics.observe({ ...sample, status: 0, durationSeconds: Number.NaN });
    metrics.observe({ ...sample, status: 999, durationSeconds: -1 });
    metrics.observe({ ...sample, status: 1200, durationSeconds: Number.POSITIVE_INFINITY });
    const text = await registry.metrics();
    expect(text).toContain(
      'mtpaas_http_requests_total{plan="pro",route="/x",status_class="0xx",tenant="none"} 1',
    );
    expect(text).toContain(
      'mtpaas_http_requests_total{plan="pro",route="/x",status_class="9xx",tenant="none"} 2',
    );
    expect(text).toContain(
      'mtpaas_http_request_duration_seconds_bucket{le="0.005",plan="pro",route="/x",status_class="9xx",tenant="none"} 2',
    );
    expect(text).toContain(
      'mtpaas_http_request_duration_seconds_sum{plan="pro",route="/x",status_class="9xx",tenant="none"} 0',
    );
  });

  it('lets two pipelines in one process keep separate registries', async () => {
    const directory = memoryDirectory([makeTenant('univ_8')]);
    const options = { directory, logger: pino({ level: 'silent' }) };
    const first = createTenantPipeline(options);
    const second = createTenantPipeline(options);
    first.finish(undefined, { status: 200, route: '/a' });
    expect((await first.metrics!.render()).body).toContain('route="/a"');
    expect((await second.metrics!.render()).body).not.toContain('route="/a"');
  });
});
