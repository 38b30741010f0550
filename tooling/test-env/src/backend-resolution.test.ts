import { describe, expect, it, vi } from 'vitest';
import { type BackendProbes, DEFAULT_URLS, describeBackend, resolveBackends } from './backend-resolution.js';
import type { ProbeResult } from './probes.js';
import { TestEnvError } from './test-env-error.js';

const up = (detail = 'up'): ProbeResult => ({ ok: true, detail, serverVersion: 150000 });
const down = (error = 'ECONNREFUSED'): ProbeResult => ({ ok: false, error });

/** Probes where only the URLs in `reachable` answer; containers start only if `runtime` is true. */
function fakeProbes(reachable: string[], options: { runtime?: boolean; containerFails?: boolean } = {}) {
  const check = async (url: string) => (reachable.includes(url) ? up() : down());
  const stopped: string[] = [];
  const probes = {
    postgres: vi.fn(check),
    redis: vi.fn(check),
    amqp: vi.fn(check),
    containerRuntime: vi.fn(async () =>
      options.runtime
        ? { found: true as const, description: 'unix:///fake.sock' }
        : { found: false as const, reason: 'no runtime here' },
    ),
    startPostgresContainer: vi.fn(async () => {
      if (options.containerFails) throw new Error('image pull failed');
      reachable.push('postgres://test:test@127.0.0.1:40000/postgres');
      return {
        url: 'postgres://test:test@127.0.0.1:40000/postgres',
        detail: 'pg container',
        stop: async () => {
          stopped.push('postgres');
        },
      };
    }),
    startRedisContainer: vi.fn(async () => {
      reachable.push('redis://127.0.0.1:40001');
      return {
        url: 'redis://127.0.0.1:40001',
        detail: 'redis container',
        stop: async () => {
          stopped.push('redis');
        },
      };
    }),
  } satisfies BackendProbes;
  return { probes, stopped };
}

const allLocal = [DEFAULT_URLS.postgres, DEFAULT_URLS.redis, DEFAULT_URLS.amqp];

describe('resolveBackends', () => {
  it('prefers the env URLs over the local defaults', async () => {
    const env = {
      MT_PAAS_TEST_DATABASE_URL: 'postgres://ci@db:5432/postgres',
      MT_PAAS_TEST_REDIS_URL: 'redis://cache:6379',
      MT_PAAS_TEST_AMQP_URL: 'amqp://mq:5672',
    };
    const { probes } = fakeProbes([...Object.values(env), ...allLocal]);
    const { backend } = await resolveBackends({ runId: 'r', env, probes });
    expect(backend.postgres).toMatchObject({
      available: true,
      source: 'env',
      url: env.MT_PAAS_TEST_DATABASE_URL,
    });
    expect(backend.redis).toMatchObject({ available: true, source: 'env', url: env.MT_PAAS_TEST_REDIS_URL });
    expect(backend.amqp).toMatchObject({ available: true, source: 'env', url: env.MT_PAAS_TEST_AMQP_URL });
    expect(probes.postgres).not.toHaveBeenCalledWith(DEFAULT_URLS.postgres);
    expect(probes.containerRuntime).not.toHaveBeenCalled();
  });

  it('fails loudly when an env URL is set but unreachable instead of silently using another server', async () => {
    const { probes } = fakeProbes(allLocal);
    const env = { MT_PAAS_TEST_REDIS_URL: 'redis://nowhere:6379' };
    await expect(resolveBackends({ runId: 'r', env, probes })).rejects.toThrow(
      /MT_PAAS_TEST_REDIS_URL is set/,
    );
  });

  it('uses the local default ports when no env URL is set', async () => {
    const { probes } = fakeProbes([...allLocal]);
    const { backend } = await resolveBackends({ runId: 'r', env: {}, probes });
    expect(backend.postgres).toMatchObject({
      available: true,
      source: 'local',
      url: DEFAULT_URLS.postgres,
      serverVersion: 150000,
    });
    expect(backend.redis).toMatchObject({ available: true, source: 'local' });
    expect(backend.amqp).toMatchObject({ available: true, source: 'local' });
  });

  it('starts containers only for the missing services when a runtime is found, and stops them', async () => {
    const { probes, stopped } = fakeProbes([DEFAULT_URLS.redis], { runtime: true });
    const resolved = await resolveBackends({ runId: 'r', env: {}, probes });
    expect(resolved.backend.postgres).toMatchObject({ available: true, source: 'testcontainers' });
    expect(resolved.backend.redis).toMatchObject({ available: true, source: 'local' });
    expect(probes.startRedisContainer).not.toHaveBeenCalled();
    // RabbitMQ never comes from a container.
    expect(resolved.backend.amqp).toMatchObject({ available: false, fallback: 'none' });
    await resolved.stop();
    expect(stopped).toEqual(['postgres']);
  });

  it('falls back to PGlite / memory with a reason when there is no server and no runtime', async () => {
    const { probes } = fakeProbes([]);
    const { backend } = await resolveBackends({ runId: 'r', env: {}, probes });
    expect(probes.startPostgresContainer).not.toHaveBeenCalled();
    expect(backend.postgres).toMatchObject({ available: false, fallback: 'pglite' });
    expect(backend.redis).toMatchObject({ available: false, fallback: 'memory' });
    const reason = backend.postgres.available ? '' : backend.postgres.reason;
    expect(reason).toContain('127.0.0.1:5432');
    expect(reason).toContain('no runtime here');
    expect(reason).toContain('MT_PAAS_TEST_DATABASE_URL');
  });

  it('keeps the container failure in the skip reason', async () => {
    const { probes } = fakeProbes([DEFAULT_URLS.redis], { runtime: true, containerFails: true });
    const { backend } = await resolveBackends({ runId: 'r', env: {}, probes });
    expect(backend.postgres.available ? '' : backend.postgres.reason).toContain('image pull failed');
  });

  it('turns a fallback into an error naming the missing server under MT_PAAS_REQUIRE_SERVICES=1', async () => {
    const { probes } = fakeProbes([DEFAULT_URLS.postgres, DEFAULT_URLS.amqp]);
    const attempt = resolveBackends({ runId: 'r', env: { MT_PAAS_REQUIRE_SERVICES: '1' }, probes });
    await expect(attempt).rejects.toBeInstanceOf(TestEnvError);
    await expect(attempt).rejects.toThrow(/MT_PAAS_REQUIRE_SERVICES=1 but redis is not available[\s\S]*6379/);
  });

  it('requires RabbitMQ too under MT_PAAS_REQUIRE_SERVICES=1', async () => {
    const { probes } = fakeProbes([DEFAULT_URLS.postgres, DEFAULT_URLS.redis]);
    await expect(
      resolveBackends({ runId: 'r', env: { MT_PAAS_REQUIRE_SERVICES: '1' }, probes }),
    ).rejects.toThrow(/amqp is not available/);
  });

  it('stops started containers when MT_PAAS_REQUIRE_SERVICES fails the run', async () => {
    const { probes, stopped } = fakeProbes([DEFAULT_URLS.redis], { runtime: true });
    await expect(
      resolveBackends({ runId: 'r', env: { MT_PAAS_REQUIRE_SERVICES: 'true' }, probes }),
    ).rejects.toThrow(/amqp/);
    expect(stopped).toEqual(['postgres']);
  });

  it('passes under MT_PAAS_REQUIRE_SERVICES=1 when every server is real', async () => {
    const { probes } = fakeProbes([...allLocal]);
    const { backend } = await resolveBackends({ runId: 'r', env: { MT_PAAS_REQUIRE_SERVICES: '1' }, probes });
    expect([backend.postgres.available, backend.redis.available, backend.amqp.available]).toEqual([
      true,
      true,
      true,
    ]);
  });
});

describe('describeBackend', () => {
  it('prints one line per service, with the password masked and the fallback made loud', async () => {
    const { probes } = fakeProbes([DEFAULT_URLS.postgres, DEFAULT_URLS.amqp]);
    const { backend } = await resolveBackends({ runId: 'r', env: {}, probes });
    const lines = describeBackend(backend);
    expect(lines).toHaveLength(3);
    expect(lines[0]).toMatch(/^\[test-env\] postgres: local server/);
    expect(lines[1]).toMatch(/^\[test-env\] redis: !!! NO SERVER .*SKIPPED/);
    expect(lines[2]).toContain('amqp://guest:***@127.0.0.1:5672');
    expect(lines[2]).not.toContain('guest:guest');
  });
});
