import {
  type ContainerRuntime,
  detectContainerRuntime,
  type ProbeResult,
  probeAmqp,
  probePostgres,
  probeRedis,
  redactUrl,
  type StartedContainer,
  startPostgresContainer,
  startRedisContainer,
} from './probes.js';
import { TestEnvError } from './test-env-error.js';
import type { ServiceBackend, ServiceName, TestBackend } from './types.js';

/** The local defaults tried after the env variables. */
export const DEFAULT_URLS = {
  postgres: 'postgres://postgres@127.0.0.1:5432/postgres',
  redis: 'redis://127.0.0.1:6379',
  amqp: 'amqp://guest:guest@127.0.0.1:5672',
} as const satisfies Record<ServiceName, string>;

export const ENV_VARS = {
  postgres: 'MT_PAAS_TEST_DATABASE_URL',
  redis: 'MT_PAAS_TEST_REDIS_URL',
  amqp: 'MT_PAAS_TEST_AMQP_URL',
} as const satisfies Record<ServiceName, string>;

/** How to get each server, appended to skip reasons and to the MT_PAAS_REQUIRE_SERVICES error. */
export const HOW_TO_START: Record<ServiceName, string> = {
  postgres:
    'start Postgres on 127.0.0.1:5432 with a trusted user postgres ' +
    '(`docker run -d -p 5432:5432 -e POSTGRES_HOST_AUTH_METHOD=trust postgres:16-alpine`), ' +
    'or set MT_PAAS_TEST_DATABASE_URL to a role with CREATEDB and CREATEROLE',
  redis:
    'start Redis on 127.0.0.1:6379 (`docker run -d -p 6379:6379 redis:7-alpine`), or set MT_PAAS_TEST_REDIS_URL',
  amqp:
    'start RabbitMQ on 127.0.0.1:5672 with guest/guest (`docker run -d -p 5672:5672 rabbitmq:3-alpine`), ' +
    'or set MT_PAAS_TEST_AMQP_URL',
};

/** Everything the decision depends on, injectable so the order can be unit-tested without servers. */
export interface BackendProbes {
  postgres(url: string): Promise<ProbeResult>;
  redis(url: string): Promise<ProbeResult>;
  amqp(url: string): Promise<ProbeResult>;
  containerRuntime(): Promise<ContainerRuntime>;
  startPostgresContainer(): Promise<StartedContainer>;
  startRedisContainer(): Promise<StartedContainer>;
}

export const defaultProbes: BackendProbes = {
  postgres: (url) => probePostgres(url),
  redis: (url) => probeRedis(url),
  amqp: (url) => probeAmqp(url),
  containerRuntime: () => detectContainerRuntime(),
  startPostgresContainer,
  startRedisContainer,
};

export interface ResolveBackendsOptions {
  runId: string;
  /** @default process.env */
  env?: Record<string, string | undefined>;
  /** @default the real probes */
  probes?: BackendProbes;
}

export interface ResolvedBackends {
  backend: TestBackend;
  /** Stops whatever containers were started (the last global teardown calls it). */
  stop(): Promise<void>;
}

export function servicesRequired(env: Record<string, string | undefined>): boolean {
  const value = env.MT_PAAS_REQUIRE_SERVICES?.toLowerCase();
  return value === '1' || value === 'true' || value === 'yes';
}

type Step =
  | { kind: 'found'; service: ServiceBackend & { serverVersion?: number } }
  | { kind: 'missing'; tried: string[] };

/**
 * Picks one backend per service, in this order:
 * 1. the env URL (`MT_PAAS_TEST_DATABASE_URL` / `_REDIS_URL` / `_AMQP_URL`) — if set and unreachable, that is an error;
 * 2. the local default port;
 * 3. testcontainers (Postgres and Redis only), when a container runtime answers;
 * 4. the fallback (PGlite / in-memory / none): tests that need the server are skipped with the reason.
 * With `MT_PAAS_REQUIRE_SERVICES=1` any fallback throws a {@link TestEnvError} naming the missing servers.
 */
export async function resolveBackends(options: ResolveBackendsOptions): Promise<ResolvedBackends> {
  const env = options.env ?? process.env;
  const probes = options.probes ?? defaultProbes;
  const stops: Array<() => Promise<void>> = [];
  const stop = async () => {
    await Promise.allSettled(stops.splice(0).map((fn) => fn()));
  };

  const direct = async (service: ServiceName): Promise<Step> => {
    const envUrl = env[ENV_VARS[service]]?.trim();
    if (envUrl) {
      const result = await probes[service](envUrl);
      if (result.ok) {
        return {
          kind: 'found',
          service: {
            available: true,
            source: 'env',
            url: envUrl,
            detail: result.detail,
            serverVersion: result.serverVersion,
          },
        };
      }
      throw new TestEnvError(
        'TEST_SERVICE_UNREACHABLE',
        `${ENV_VARS[service]} is set to ${redactUrl(envUrl)} but that ${service} server cannot be used: ${result.error}. ` +
          `Fix or unset ${ENV_VARS[service]} (unset, the local default and then fallbacks are tried).`,
      );
    }
    const url = DEFAULT_URLS[service];
    const result = await probes[service](url);
    if (result.ok) {
      return {
        kind: 'found',
        service: {
          available: true,
          source: 'local',
          url,
          detail: result.detail,
          serverVersion: result.serverVersion,
        },
      };
    }
    return { kind: 'missing', tried: [`${redactUrl(url)} (${result.error})`] };
  };

  const [postgresStep, redisStep, amqpStep] = await Promise.all([
    direct('postgres'),
    direct('redis'),
    direct('amqp'),
  ]);

  const needContainers: Array<'postgres' | 'redis'> = [];
  if (postgresStep.kind === 'missing') needContainers.push('postgres');
  if (redisStep.kind === 'missing') needContainers.push('redis');

  let runtime: ContainerRuntime | undefined;
  if (needContainers.length > 0) runtime = await probes.containerRuntime();

  const viaContainer = async (service: 'postgres' | 'redis', step: Step): Promise<Step> => {
    if (step.kind === 'found' || !runtime) return step;
    if (!runtime.found)
      return { kind: 'missing', tried: [...step.tried, `testcontainers (${runtime.reason})`] };
    try {
      const started =
        service === 'postgres' ? await probes.startPostgresContainer() : await probes.startRedisContainer();
      stops.push(started.stop);
      const check = await probes[service](started.url);
      if (!check.ok) throw new Error(check.error);
      return {
        kind: 'found',
        service: {
          available: true,
          source: 'testcontainers',
          url: started.url,
          detail: `${check.detail}; ${started.detail} via ${runtime.description}`,
          serverVersion: check.serverVersion,
        },
      };
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      return {
        kind: 'missing',
        tried: [...step.tried, `testcontainers via ${runtime.description} (${message})`],
      };
    }
  };

  let postgres: Step;
  let redis: Step;
  try {
    [postgres, redis] = await Promise.all([
      viaContainer('postgres', postgresStep),
      viaContainer('redis', redisStep),
    ]);
  } catch (error) {
    await stop();
    throw error;
  }

  const fallback = (service: ServiceName, step: Step): ServiceBackend & { serverVersion?: number } => {
    if (step.kind === 'found') return step.service;
    return {
      available: false,
      fallback: service === 'postgres' ? 'pglite' : service === 'redis' ? 'memory' : 'none',
      reason: `no ${service} server: tried ${step.tried.join('; ')}. To run these tests, ${HOW_TO_START[service]}.`,
    };
  };

  const backend: TestBackend = {
    runId: options.runId,
    postgres: fallback('postgres', postgres),
    redis: fallback('redis', redis),
    amqp: fallback('amqp', amqpStep),
  };

  if (servicesRequired(env)) {
    const missing = (['postgres', 'redis', 'amqp'] as const).filter((service) => !backend[service].available);
    if (missing.length > 0) {
      await stop();
      throw new TestEnvError(
        'TEST_SERVICES_REQUIRED',
        `MT_PAAS_REQUIRE_SERVICES=1 but ${missing.join(', ')} ${missing.length === 1 ? 'is' : 'are'} not available:\n` +
          missing
            .map((service) => {
              const entry = backend[service];
              return `  - ${service}: ${entry.available ? '' : entry.reason}`;
            })
            .join('\n') +
          '\nStart the missing servers (see tooling/test-env/README.md) or unset MT_PAAS_REQUIRE_SERVICES to skip those tests.',
      );
    }
  }

  return { backend, stop };
}

/** One line per service, e.g. `[test-env] postgres: local server postgres://postgres@127.0.0.1:5432/postgres (PostgreSQL 15.20 …)`. */
export function describeBackend(backend: TestBackend): string[] {
  return (['postgres', 'redis', 'amqp'] as const).map((service) => {
    const entry = backend[service];
    if (entry.available) {
      const source = {
        env: `server from ${ENV_VARS[service]}`,
        local: 'local server',
        testcontainers: 'testcontainers',
      }[entry.source];
      return `[test-env] ${service}: ${source} ${redactUrl(entry.url)} (${entry.detail})`;
    }
    const stand = { pglite: 'PGlite / in-memory only', memory: 'in-memory stores only', none: 'nothing' }[
      entry.fallback
    ];
    return `[test-env] ${service}: !!! NO SERVER — ${stand}; tests that need a real ${service} are SKIPPED. ${entry.reason}`;
  });
}
