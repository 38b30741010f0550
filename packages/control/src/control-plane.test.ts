import type { AuditEvent } from '@mt-paas/context';
import type { SqlDriver } from '@mt-paas/db';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { captureLogger } from './__fixtures__/capture-logger.js';
import { createControlPlane } from './control-plane.js';

/** A catalog without a database: every query answers no rows (enough for timers and wiring). */
function emptyCatalog() {
  const queries: string[] = [];
  const driver = {
    kind: 'pg',
    async query(text: string) {
      queries.push(text);
      return { rows: [] };
    },
    async exec() {},
    async transaction<T>(fn: (session: unknown) => Promise<T>) {
      return fn(driver);
    },
    async close() {},
  } as unknown as SqlDriver;
  const audit: AuditEvent[] = [];
  return {
    queries,
    audit,
    catalog: {
      driver,
      schema: 'mt_paas',
      audit: { record: async (event: AuditEvent) => void audit.push(event) },
    },
  };
}

describe('createControlPlane lifecycle', () => {
  beforeEach(() => {
    vi.useFakeTimers({ now: new Date('2026-01-03T12:00:00Z') });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('start() runs heartbeat, expiry sweep, audit windows and activity sender; stop() leaves no timer and flushes', async () => {
    const { catalog, queries, audit } = emptyCatalog();
    const beats: unknown[] = [];
    const posted: unknown[] = [];
    const control = createControlPlane({
      serviceId: 'keli_tutor',
      catalog,
      heartbeat: {
        sender: { heartbeat: async (body) => void beats.push(body) },
        intervalMs: 1_000,
        jitter: 0,
      },
      activityLog: {
        endpoint: 'https://lrs.example/xapi',
        serviceUrl: 'https://tutor.example',
        flushIntervalMs: 500,
        fetch: async (_url, init) => {
          posted.push(JSON.parse(String(init?.body)));
          return new Response('[]', { status: 200 });
        },
      },
      expiryCheckIntervalMs: 250,
      logger: captureLogger(),
    });
    control.start();
    control.start(); // idempotent
    control.logActivity({ verb: 'asked', object: 'ai_tutor', userId: 'u1', tenantId: 'hallym' });
    control.audit.authFailure({ tenantId: 'hallym', reason: 'invalid_token' });
    control.audit.authFailure({ tenantId: 'hallym', reason: 'invalid_token' });
    await vi.advanceTimersByTimeAsync(3_000);
    expect(beats.length).toBeGreaterThanOrEqual(3);
    expect(posted).toHaveLength(1);
    expect(queries.filter((text) => text.includes('block_until <= now()')).length).toBeGreaterThanOrEqual(10);
    expect(queries.some((text) => text.includes("status IN ('active', 'grace')"))).toBe(true);
    control.logActivity({ verb: 'completed', object: 'lesson_1', userId: 'u1' });
    await control.stop();
    const beatsAtStop = beats.length;
    expect(vi.getTimerCount()).toBe(0);
    expect(posted).toHaveLength(2); // the buffer was sent on stop
    expect(audit.map((event) => event.details?.count ?? 1)).toEqual([1, 1]); // the open window was written
    const { body } = await control.metrics.render();
    expect(body).toContain('mtpaas_heartbeats_total{result="ok"}');
    expect(body).toContain('mtpaas_activity_statements_total{outcome="sent"} 2');
    await vi.advanceTimersByTimeAsync(10_000);
    expect(beats.length).toBe(beatsAtStop);
  });
});
