import { pino } from 'pino';
import { register as globalRegistry, Registry } from 'prom-client';
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
