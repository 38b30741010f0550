import { type CallOptions, createMarketplaceClient, type Heartbeat } from '@mt-paas/marketplace';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { captureLogger } from './__fixtures__/capture-logger.js';
import { heartbeatBodySchema, type MarketStandIn, startMarketStandIn } from './__fixtures__/market-server.js';
import { createHeartbeatService } from './heartbeat.js';
import type { HeartbeatSender } from './market.js';

function recordingSender(behaviour: (body: Heartbeat) => Promise<void>) {
  const calls: Array<{ body: Heartbeat; options: CallOptions | undefined; at: number }> = [];
  const sender: HeartbeatSender = {
    heartbeat(body, options) {
      calls.push({ body, options, at: Date.now() });
      return behaviour(body);
    },
  };
  return { sender, calls };
}

function client(apiUrl: string, apiKey?: string) {
  return createMarketplaceClient({
    apiUrl,
    serviceId: 'keli_tutor',
    timeoutMs: 2_000,
    ...(apiKey === undefined ? {} : { apiKey }),
  });
}

describe('heartbeat with fake timers', () => {
  beforeEach(() => {
    vi.useFakeTimers({ now: new Date('2026-01-03T12:00:00Z') });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('beats every interval within ±jitter, the first one within the first 2 × jitter of an interval', async () => {
    const { sender, calls } = recordingSender(async () => {});
    let seed = 0;
    // A fixed sequence spanning 0 … 1 so both ends of the jitter are exercised.
    const sequence = [0.5, 0, 1, 0.25, 0.999, 0.75, 0.1, 0.9];
    const heartbeat = createHeartbeatService({
      serviceId: 'keli_tutor',
      sender,
      intervalMs: 60_000,
      jitter: 0.1,
      random: () => sequence[seed++ % sequence.length] ?? 0.5,
      logger: captureLogger(),
    });
    const startedAt = Date.now();
    heartbeat.start();
    await vi.advanceTimersByTimeAsync(10 * 60_000);
    await heartbeat.stop();
    expect(calls.length).toBeGreaterThanOrEqual(9);
    expect(calls[0]!.at - startedAt).toBeLessThanOrEqual(12_000);
    const gaps = calls.slice(1).map((call, index) => call.at - calls[index]!.at);
    for (const gap of gaps) {
      expect(gap).toBeGreaterThanOrEqual(54_000);
      expect(gap).toBeLessThanOrEqual(66_000);
    }
    // Jitter really varies the gaps (instances started together drift apart).
    expect(new Set(gaps).size).toBeGreaterThan(3);
  });

  it('spreads 100 instances started at the same moment over the first interval', async () => {
    const firstBeats: number[] = [];
    const services = Array.from({ length: 100 }, () =>
      createHeartbeatService({
        serviceId: 'svc',
        sender: {
          async heartbeat() {
            firstBeats.push(Date.now());
          },
        },
        intervalMs: 60_000,
        jitter: 0.5,
        logger: captureLogger(),
      }),
    );
    for (const service of services) service.start();
    await vi.advanceTimersByTimeAsync(60_000);
    await Promise.all(services.map((service) => service.stop()));
    // With Math.random, 100 first beats falling into fewer than 20 distinct seconds would mean no jitter.
    expect(new Set(firstBeats.map((at) => Math.floor(at / 1000))).size).toBeGreaterThan(20);
  });

  it('never overlaps beats: a slow market delays the next beat instead of stacking requests', async () => {
    let concurrent = 0;
    let maxConcurrent = 0;
    const { sender, calls } = recordingSender(async () => {
      concurrent++;
      maxConcurrent = Math.max(maxConcurrent, concurrent);
      await new Promise((resolve) => setTimeout(resolve, 4_000));
      concurrent--;
    });
    const heartbeat = createHeartbeatService({
      serviceId: 'svc',
      sender,
      intervalMs: 1_000,
      jitter: 0,
      timeoutMs: 30_000,
      logger: captureLogger(),
    });
    heartbeat.start();
    // Manual beats while one is in flight join it.
    await vi.advanceTimersByTimeAsync(10);
    const joined = [heartbeat.beat(), heartbeat.beat()];
    await vi.advanceTimersByTimeAsync(20_000);
    await Promise.all(joined);
    await heartbeat.stop();
    expect(maxConcurrent).toBe(1);
    expect(calls.length).toBeGreaterThan(2);
    expect(calls.length).toBeLessThanOrEqual(5); // 20 s / (4 s + 1 s)
  });

  it('abandons a beat the market does not answer within the timeout, though the client takes no signal', async () => {
    const logger = captureLogger();
    const { sender } = recordingSender(() => new Promise(() => {})); // never settles
    const heartbeat = createHeartbeatService({
      serviceId: 'svc',
      sender,
      intervalMs: 10_000,
      timeoutMs: 2_000,
      logger,
    });
    const result = heartbeat.beat();
    await vi.advanceTimersByTimeAsync(2_000);
    await expect(result).resolves.toBe(false);
    expect(heartbeat.consecutiveFailures).toBe(1);
    expect(logger.at('warn')[0]?.object.err).toMatch(/did not answer the heartbeat within 2000 ms/);
  });

  it('backs off exponentially while the market is down, logs once per outage and once on recovery', async () => {
    const logger = captureLogger();
    let down = true;
    const outcomes: boolean[] = [];
    const { sender, calls } = recordingSender(async () => {
      if (down) throw new Error('connect ECONNREFUSED 127.0.0.1:9');
    });
    const heartbeat = createHeartbeatService({
      serviceId: 'svc',
      sender,
      intervalMs: 1_000,
      jitter: 0,
      maxBackoffMs: 16_000,
      logger,
      onBeat: ({ ok }) => outcomes.push(ok),
    });
    heartbeat.start();
    await vi.advanceTimersByTimeAsync(80_000);
    const gaps = calls.slice(1).map((call, index) => call.at - calls[index]!.at);
    // 2 s, 4 s, 8 s, 16 s, then capped at 16 s.
    expect(gaps.slice(0, 6)).toEqual([2_000, 4_000, 8_000, 16_000, 16_000, 16_000]);
    expect(logger.at('warn')).toHaveLength(1);
    expect(logger.at('warn')[0]?.message).toMatch(/failed; retrying with backoff/);

    down = false;
    await vi.advanceTimersByTimeAsync(16_000);
    expect(logger.at('info').filter((line) => /recovered/.test(line.message))).toHaveLength(1);
    expect(heartbeat.consecutiveFailures).toBe(0);
    const after = calls.length;
    await vi.advanceTimersByTimeAsync(3_000);
    expect(calls.length - after).toBe(3); // back to the normal interval
    await heartbeat.stop();
    expect(outcomes.filter((ok) => !ok).length).toBeGreaterThanOrEqual(6);
    expect(outcomes.at(-1)).toBe(true);

    // A second outage is logged again, once.
    down = true;
    heartbeat.start();
    await vi.advanceTimersByTimeAsync(30_000);
    await heartbeat.stop();
    expect(logger.at('warn')).toHaveLength(2);
  });

  it('stop() leaves no timer behind, also with a beat in flight that never settles', async () => {
    const { sender, calls } = recordingSender(() => new Promise(() => {}));
    const logger = captureLogger();
    const heartbeat = createHeartbeatService({ serviceId: 'svc', sender, intervalMs: 1_000, logger });
    heartbeat.start();
    heartbeat.start(); // idempotent
    await vi.advanceTimersByTimeAsync(300);
    expect(calls).toHaveLength(1);
    await heartbeat.stop(); // resolves: the hanging beat is abandoned
    expect(vi.getTimerCount()).toBe(0);
    // Being stopped is not a market outage.
    expect(logger.at('warn')).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(calls).toHaveLength(1);
  });

  it('reports degraded with zero metrics when the metrics source fails, instead of skipping the beat', async () => {
    const { sender, calls } = recordingSender(async () => {});
    const heartbeat = createHeartbeatService({
      serviceId: 'keli_tutor',
      sender,
      metrics: () => {
        throw new Error('registry gone');
      },
      activeTenants: async () => ['hallym', 'korea'],
      logger: captureLogger(),
    });
    await expect(heartbeat.beat()).resolves.toBe(true);
    expect(calls[0]?.body).toEqual({
      status: 'degraded',
      activeTenants: ['hallym', 'korea'],
      metrics: { requestsPerMinute: 0, errorRate: 0, avgResponseTimeMs: 0 },
      timestamp: new Date('2026-01-03T12:00:00.000Z'),
    });
    // A missed beat is not replayed: the client's own retries are off.
    expect(calls[0]?.options).toEqual({ retries: 0 });
  });

  it('refuses an interval below 100 ms and a jitter outside 0 … 0.5 with CONFIG_INVALID', () => {
    const sender: HeartbeatSender = { heartbeat: async () => {} };
    for (const intervalMs of [0, 50, Number.NaN, -1]) {
      expect(() => createHeartbeatService({ serviceId: 's', sender, intervalMs })).toThrow(
        expect.objectContaining({ code: 'CONFIG_INVALID' }),
      );
    }
    for (const jitter of [-0.1, 0.6, Number.NaN]) {
      expect(() => createHeartbeatService({ serviceId: 's', sender, jitter })).toThrow(
        expect.objectContaining({ code: 'CONFIG_INVALID' }),
      );
    }
  });
});

describe('heartbeat against a local market (real HTTP, real short interval)', () => {
  let market: MarketStandIn;
  beforeEach(async () => {
    market = await startMarketStandIn();
  });
  afterEach(async () => {
    await market.close();
  });

  it('posts the seed body to /services/{service_id}/heartbeat with the API key, repeatedly', async () => {
    let requests = 0;
    const heartbeat = createHeartbeatService({
      serviceId: 'keli_tutor',
      sender: client(market.url, 'mk_test_key'),
      intervalMs: 150,
      jitter: 0.2,
      metrics: () => ({ requestsPerMinute: ++requests, errorRate: 0.01, avgResponseTimeMs: 250 }),
      activeTenants: () => ['hallym', 'korea', 'snu'],
      logger: captureLogger(),
    });
    heartbeat.start();
    await vi.waitFor(() => expect(market.beats.length).toBeGreaterThanOrEqual(3), { timeout: 5_000 });
    await heartbeat.stop();
    const count = market.beats.length;
    expect(market.invalid).toEqual([]);
    const beat = market.beats[0]!;
    expect(beat.path).toBe('/api/v1/services/keli_tutor/heartbeat');
    expect(beat.headers.authorization).toBe('Bearer mk_test_key');
    expect(beat.headers['content-type']).toMatch(/^application\/json/);
    expect(heartbeatBodySchema.parse(beat.body)).toMatchObject({
      service_id: 'keli_tutor',
      status: 'healthy',
      active_tenants: ['hallym', 'korea', 'snu'],
      metrics: { requests_per_minute: 1, error_rate: 0.01, avg_response_time_ms: 250 },
    });
    // Stopped means stopped.
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect(market.beats.length).toBe(count);
  });

  it('survives the market answering 503, hanging, and going away; recovers when it is back', async () => {
    const logger = captureLogger();
    const heartbeat = createHeartbeatService({
      serviceId: 'keli_tutor',
      sender: client(market.url),
      intervalMs: 100,
      jitter: 0,
      timeoutMs: 200,
      maxBackoffMs: 200,
      logger,
    });
    market.mode = 'error';
    await expect(heartbeat.beat()).resolves.toBe(false);
    market.mode = 'hang';
    await expect(heartbeat.beat()).resolves.toBe(false);
    expect(logger.at('warn')).toHaveLength(1);
    expect(logger.at('warn')[0]?.object.err).toMatch(/answered 503/);

    const gone = market.url;
    await market.close();
    const absent = createHeartbeatService({
      serviceId: 'keli_tutor',
      sender: client(gone),
      intervalMs: 100,
      timeoutMs: 200,
      logger,
    });
    await expect(absent.beat()).resolves.toBe(false);

    market = await startMarketStandIn();
    const back = createHeartbeatService({
      serviceId: 'keli_tutor',
      sender: client(market.url),
      intervalMs: 100,
      jitter: 0,
      timeoutMs: 500,
      logger,
    });
    await expect(back.beat()).resolves.toBe(true);
    expect(market.beats).toHaveLength(1);
    await Promise.all([heartbeat.stop(), absent.stop(), back.stop()]);
  });

  it('refuses a marketplace client created for another service with CONFIG_INVALID', () => {
    for (const serviceId of ['other', 'keli_tutor ', 'KELI_TUTOR']) {
      expect(() =>
        createHeartbeatService({
          serviceId,
          sender: client(market.url),
          logger: captureLogger(),
        }),
      ).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID' }));
    }
  });
});
