import type { TenantId, UsageRecord } from '@mt-paas/context';
import { describe, expect, it, vi } from 'vitest';
import { createMemoryQuotaStore, createQuotaMeter, type QuotaEvent, quotaPeriod } from './quota.js';

const tenant = 'univ_8' as TenantId;

describe('createQuotaMeter', () => {
  it('blocks at the limit without counting refused requests', async () => {
    const meter = createQuotaMeter({ store: createMemoryQuotaStore() });
    const quota = { limit: 3, period: 'daily', enforcement: 'block' } as const;
    const allowed: boolean[] = [];
    for (let index = 0; index < 5; index++)
      allowed.push((await meter.consume(tenant, 'api_requests', quota)).allowed);
    expect(allowed).toEqual([true, true, true, false, false]);
    expect(await meter.usage(tenant, 'api_requests', 'daily')).toBe(3);
  });

  it('emits 80 / 90 / 95 / 100 % once per period, even with concurrent requests', async () => {
    const events: QuotaEvent[] = [];
    const meter = createQuotaMeter({
      store: createMemoryQuotaStore(),
      onEvent: (event) => events.push(event),
    });
    const quota = { limit: 100, period: 'monthly', enforcement: 'alert' } as const;
    await Promise.all(Array.from({ length: 150 }, () => meter.consume(tenant, 'llm_tokens', quota)));
    expect(events.map((event) => [event.type, event.percent])).toEqual([
      ['quota.threshold', 80],
      ['quota.threshold', 90],
      ['quota.threshold', 95],
      ['quota.exceeded', 100],
    ]);
  });

  it('emits the soft limits again in the next period, not before', async () => {
    const events: QuotaEvent[] = [];
    let at = new Date('2026-03-31T10:00:00Z');
    const meter = createQuotaMeter({
      store: createMemoryQuotaStore({ now: () => at.getTime() }),
      onEvent: (event) => events.push(event),
      now: () => at,
    });
    const quota = { limit: 10, period: 'daily', enforcement: 'alert' } as const;
    for (let index = 0; index < 8; index++) await meter.consume(tenant, 'api_requests', quota);
    at = new Date('2026-03-31T23:00:00Z');
    for (let index = 0; index < 3; index++) await meter.consume(tenant, 'api_requests', quota);
    expect(events.map((event) => [event.periodStart, event.percent])).toEqual([
      ['2026-03-31T00:00:00.000Z', 80],
      ['2026-03-31T00:00:00.000Z', 90],
      ['2026-03-31T00:00:00.000Z', 95],
      ['2026-03-31T00:00:00.000Z', 100],
    ]);
    at = new Date('2026-04-01T00:30:00Z');
    for (let index = 0; index < 8; index++) await meter.consume(tenant, 'api_requests', quota);
    expect(events.slice(4).map((event) => [event.periodStart, event.percent])).toEqual([
      ['2026-04-01T00:00:00.000Z', 80],
    ]);
    expect(await meter.usage(tenant, 'api_requests', 'daily')).toBe(8);
  });

  it('record counts spent usage past a block limit, so the next consume is refused', async () => {
    const events: QuotaEvent[] = [];
    const records: UsageRecord[] = [];
    const meter = createQuotaMeter({
      store: createMemoryQuotaStore(),
      onEvent: (event) => events.push(event),
      usageSink: { record: async (batch) => void records.push(...batch) },
    });
    const quota = { limit: 150, period: 'monthly', enforcement: 'block' } as const;
    // ~46 tokens per answer: consume dropped the 4th answer's tokens (53 → 106 → 113 → 120 stuck)
    for (const spent of [53, 53, 46]) {
      expect((await meter.record(tenant, 'llm_tokens', quota, spent)).allowed).toBe(true);
    }
    expect(await meter.usage(tenant, 'llm_tokens', 'monthly')).toBe(152);
    expect((await meter.consume(tenant, 'llm_tokens', quota, 1)).allowed).toBe(false);
    expect(events.map((event) => [event.type, event.percent, event.used])).toEqual([
      ['quota.threshold', 80, 152],
      ['quota.threshold', 90, 152],
      ['quota.threshold', 95, 152],
      ['quota.exceeded', 100, 152],
    ]);
    await meter.record(tenant, 'llm_tokens', quota, 10);
    expect(events).toHaveLength(4);
    await meter.flush();
    expect(records.reduce((sum, record) => sum + record.quantity, 0)).toBe(162);
  });

  it('record is exact under concurrency: every amount counted, each threshold once', async () => {
    const events: QuotaEvent[] = [];
    const meter = createQuotaMeter({
      store: createMemoryQuotaStore(),
      onEvent: (event) => events.push(event),
    });
    const quota = { limit: 100, period: 'daily', enforcement: 'block' } as const;
    await Promise.all(Array.from({ length: 60 }, () => meter.record(tenant, 'spent', quota, 3)));
    expect(await meter.usage(tenant, 'spent', 'daily')).toBe(180);
    expect(events.map((event) => event.percent)).toEqual([80, 90, 95, 100]);
  });

  it('record refuses a negative or fractional amount like consume', async () => {
    const meter = createQuotaMeter({ store: createMemoryQuotaStore() });
    const quota = { limit: 10, period: 'daily', enforcement: 'block' } as const;
    await expect(meter.record(tenant, 'spent', quota, -5)).rejects.toMatchObject({ code: 'INTERNAL' });
    await expect(meter.record(tenant, 'spent', quota, 1.5)).rejects.toMatchObject({ code: 'INTERNAL' });
    expect(await meter.usage(tenant, 'spent', 'daily')).toBe(0);
  });

  it('admits past the limit with throttle (flagged), alert and overage', async () => {
    const meter = createQuotaMeter({ store: createMemoryQuotaStore() });
    for (const enforcement of ['throttle', 'alert', 'overage'] as const) {
      const quota = { limit: 1, period: 'hourly', enforcement } as const;
      await meter.consume(tenant, `m_${enforcement}`, quota);
      const second = await meter.consume(tenant, `m_${enforcement}`, quota);
      expect(second.allowed).toBe(true);
      expect(second.throttled).toBe(enforcement === 'throttle');
    }
  });

  it('flushes metered usage to the sink with idempotency keys, overage apart', async () => {
    const records: UsageRecord[] = [];
    const meter = createQuotaMeter({
      store: createMemoryQuotaStore(),
      usageSink: { record: async (batch) => void records.push(...batch) },
      flushIntervalMs: 3_600_000,
    });
    const quota = { limit: 5, period: 'daily', enforcement: 'overage' } as const;
    await meter.consume(tenant, 'llm_tokens', quota, 4);
    await meter.consume(tenant, 'llm_tokens', quota, 3);
    await meter.flush();
    expect(records.map((record) => [record.quantity, record.attributes?.overage ?? 'false'])).toEqual([
      [5, 'false'],
      [2, 'true'],
    ]);
    expect(new Set(records.map((record) => record.idempotencyKey)).size).toBe(2);
    await meter.flush();
    expect(records.length).toBe(2);
    await meter.close();
  });

  it('flushes to the sink by itself every flushIntervalMs (what a crash can lose)', async () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    try {
      const records: UsageRecord[] = [];
      const meter = createQuotaMeter({
        store: createMemoryQuotaStore(),
        usageSink: { record: async (batch) => void records.push(...batch) },
        flushIntervalMs: 10_000,
      });
      const quota = { limit: null, period: 'daily', enforcement: 'alert' } as const;
      await meter.consume(tenant, 'api_requests', quota, 3);
      await vi.advanceTimersByTimeAsync(9_999);
      expect(records).toEqual([]);
      await vi.advanceTimersByTimeAsync(1);
      expect(records.map((record) => [record.meter, record.quantity])).toEqual([['api_requests', 3]]);
      await meter.consume(tenant, 'api_requests', quota, 2);
      await vi.advanceTimersByTimeAsync(10_000);
      expect(records.map((record) => record.quantity)).toEqual([3, 2]);
      await meter.close();
    } finally {
      vi.useRealTimers();
    }
  });

  it('retries a failed flush with the same idempotency keys', async () => {
    const attempts: UsageRecord[][] = [];
    let fail = true;
    const meter = createQuotaMeter({
      store: createMemoryQuotaStore(),
      usageSink: {
        record: async (batch) => {
          attempts.push([...batch]);
          if (fail) throw new Error('ledger down');
        },
      },
      flushIntervalMs: 3_600_000,
    });
    await meter.consume(tenant, 'api_requests', { limit: null, period: 'never', enforcement: 'block' });
    await expect(meter.flush()).rejects.toThrow('ledger down');
    fail = false;
    await meter.flush();
    expect(attempts.length).toBe(2);
    expect(attempts[1]!.map((record) => record.idempotencyKey)).toEqual(
      attempts[0]!.map((record) => record.idempotencyKey),
    );
    await meter.close();
  });
});

describe('quotaPeriod', () => {
  it('computes UTC period boundaries', () => {
    const at = new Date('2026-03-31T23:59:59Z');
    expect(quotaPeriod('hourly', at).start.toISOString()).toBe('2026-03-31T23:00:00.000Z');
    expect(quotaPeriod('daily', at).end?.toISOString()).toBe('2026-04-01T00:00:00.000Z');
    expect(quotaPeriod('monthly', at).start.toISOString()).toBe('2026-03-01T00:00:00.000Z');
    expect(quotaPeriod('never', at)).toMatchObject({ end: undefined, key: 'all' });
    expect(quotaPeriod('daily', at).key).toBe('2026033100');
  });
});
