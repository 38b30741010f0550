import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type DemoService, startDemoService } from './demo-service.js';
import { runWalkthrough, type WalkthroughStep } from './walkthrough.js';

describe('the demo walkthrough on embedded defaults', () => {
  let service: DemoService;
  let steps: WalkthroughStep[];

  beforeAll(async () => {
    service = await startDemoService();
    steps = await runWalkthrough(service.url);
  }, 120_000);

  afterAll(async () => {
    await service?.close();
  });

  const step = (title: string) => {
    const found = steps.find((candidate) => candidate.title.startsWith(title));
    if (found === undefined) throw new Error(`no step "${title}"`);
    return found;
  };

  it('answers every step with the status it expects', () => {
    expect(steps.map((s) => [s.title, s.status])).toEqual(steps.map((s) => [s.title, s.expect]));
  });

  it('keeps each tenant to its own notes', () => {
    expect((step('univ_8 sees only').response as unknown[]).length).toBe(2);
    expect(step('demo_7 sees only').response).toEqual([
      { title: 'Welcome', body: 'Demo College uses the free plan with twelve requests per minute.' },
    ]);
  });

  it("answers from the asking tenant's notes only", () => {
    const univ = step('univ_8 asks').response as { answer: string; sources: string[] };
    expect(univ.answer).toContain('Schema mode gives each tenant its own Postgres schema');
    const demo = step('demo_7 asks').response as { answer: string; sources: string[] };
    expect(demo.answer).not.toContain('Schema mode');
    expect(demo.sources).toEqual(['Welcome']);
  });

  it('refuses with machine-readable errors', () => {
    expect(step('the free plan has not').response).toMatchObject({ error: { code: 'FEATURE_NOT_IN_PLAN' } });
    expect(step('a suspended tenant').response).toMatchObject({ error: { code: 'TENANT_SUSPENDED' } });
    expect(step('an unknown tenant').response).toMatchObject({ error: { code: 'TENANT_NOT_FOUND' } });
    expect(step('no tenant at all').response).toMatchObject({ error: { code: 'TENANT_NOT_IDENTIFIED' } });
    expect(step('an id outside').response).toMatchObject({ error: { code: 'INVALID_TENANT_ID' } });
    expect(step('a body naming').response).toMatchObject({ error: { code: 'CROSS_TENANT_ACCESS' } });
  });

  it('rate-limits a burst from the free plan', () => {
    const burst = step('demo_7 sends 20');
    expect(burst.statuses?.[429]).toBeGreaterThan(0);
    expect(burst.response).toMatchObject({ error: { code: 'RATE_LIMITED' } });
  });
});
