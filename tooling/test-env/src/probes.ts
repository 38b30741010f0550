import { existsSync, readFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { connect, type Socket } from 'node:net';
import { homedir } from 'node:os';
import { join } from 'node:path';

/** Outcome of checking one candidate server. */
export type ProbeResult = { ok: true; detail: string; serverVersion?: number } | { ok: false; error: string };

export type ContainerRuntime = { found: true; description: string } | { found: false; reason: string };

export interface StartedContainer {
  url: string;
  detail: string;
  stop(): Promise<void>;
}

/** Default time a TCP connect may take before a port counts as closed. */
export const TCP_TIMEOUT_MS = 400;

type Endpoint = { host: string; port: number } | { path: string };

function openSocket(endpoint: Endpoint, timeoutMs: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = 'path' in endpoint ? connect(endpoint.path) : connect(endpoint.port, endpoint.host);
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no answer within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      resolve(socket);
    });
    socket.once('error', (error) => {
      clearTimeout(timer);
      socket.destroy();
      reject(error);
    });
  });
}

function describeEndpoint(endpoint: Endpoint): string {
  return 'path' in endpoint ? endpoint.path : `${endpoint.host}:${endpoint.port}`;
}

/** Resolves `{ ok: true }` when something accepts a TCP (or unix socket) connection, never hangs. */
export async function probeTcp(endpoint: Endpoint, timeoutMs = TCP_TIMEOUT_MS): Promise<ProbeResult> {
  try {
    const socket = await openSocket(endpoint, timeoutMs);
    socket.destroy();
    return { ok: true, detail: describeEndpoint(endpoint) };
  } catch (error) {
    return { ok: false, error: `${describeEndpoint(endpoint)}: ${errorText(error)}` };
  }
}

export function errorText(error: unknown): string {
  if (error instanceof AggregateError && error.errors.length > 0) return errorText(error.errors[0]);
  if (error instanceof Error) {
    const code = (error as NodeJS.ErrnoException).code;
    return code && !error.message.includes(code) ? `${code} ${error.message}` : error.message || String(code);
  }
  return String(error);
}

function endpointOfUrl(url: string, defaultPort: number): { host: string; port: number } {
  const parsed = new URL(url);
  const host = parsed.hostname.replace(/^\[|\]$/g, '') || '127.0.0.1';
  return { host, port: parsed.port ? Number(parsed.port) : defaultPort };
}

/** Masks the password of a connection URL for printing. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return '<unparseable url>';
  }
}

/**
 * Checks a Postgres admin URL: TCP first (fast fail), then a real login that reads the server
 * version and whether the role may create databases.
 */
export async function probePostgres(url: string, timeoutMs = TCP_TIMEOUT_MS): Promise<ProbeResult> {
  let endpoint: { host: string; port: number };
  try {
    endpoint = endpointOfUrl(url, 5432);
  } catch {
    return { ok: false, error: `not a valid URL: ${redactUrl(url)}` };
  }
  const tcp = await probeTcp(endpoint, timeoutMs);
  if (!tcp.ok) return tcp;
  const { default: pg } = await import('pg');
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3000 });
  client.on('error', () => {});
  try {
    await client.connect();
    const result = await client.query<{ version: string; num: string; can_create: boolean; super: boolean }>(
      `select current_setting('server_version') as version,
              current_setting('server_version_num') as num,
              (r.rolsuper or r.rolcreatedb) as can_create,
              r.rolsuper as super
         from pg_roles r where r.rolname = current_user`,
    );
    const row = result.rows[0];
    if (!row) return { ok: false, error: 'could not read the current role' };
    if (!row.can_create) {
      return {
        ok: false,
        error: `role ${client.user} may not CREATE DATABASE (grant CREATEDB and CREATEROLE)`,
      };
    }
    return {
      ok: true,
      detail: `PostgreSQL ${row.version}, ${row.super ? 'superuser' : 'CREATEDB role'} ${client.user}`,
      serverVersion: Number(row.num),
    };
  } catch (error) {
    return { ok: false, error: errorText(error) };
  } finally {
    await client.end().catch(() => {});
  }
}

/** Sends a RESP `PING` over a raw socket (no client library needed); accepts `+PONG` and auth errors as "a Redis is here". */
export async function probeRedis(url: string, timeoutMs = TCP_TIMEOUT_MS): Promise<ProbeResult> {
  let endpoint: { host: string; port: number };
  let parsed: URL;
  try {
    parsed = new URL(url);
    endpoint = endpointOfUrl(url, 6379);
  } catch {
    return { ok: false, error: `not a valid URL: ${redactUrl(url)}` };
  }
  if (parsed.protocol === 'rediss:') {
    const tcp = await probeTcp(endpoint, timeoutMs);
    return tcp.ok ? { ok: true, detail: `TLS endpoint ${tcp.detail}` } : tcp;
  }
  let socket: Socket;
  try {
    socket = await openSocket(endpoint, timeoutMs);
  } catch (error) {
    return { ok: false, error: `${describeEndpoint(endpoint)}: ${errorText(error)}` };
  }
  const user = decodeURIComponent(parsed.username);
  const password = decodeURIComponent(parsed.password);
  const command = (parts: string[]) =>
    `*${parts.length}\r\n${parts.map((p) => `$${Buffer.byteLength(p)}\r\n${p}\r\n`).join('')}`;
  const payload =
    (password ? command(user ? ['AUTH', user, password] : ['AUTH', password]) : '') + command(['PING']);
  return new Promise<ProbeResult>((resolve) => {
    let buffer = '';
    const finish = (result: ProbeResult) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(result);
    };
    const timer = setTimeout(
      () =>
        finish({
          ok: false,
          error: `${describeEndpoint(endpoint)}: no PING reply within ${timeoutMs * 3} ms`,
        }),
      timeoutMs * 3,
    );
    socket.on('data', (chunk) => {
      buffer += chunk.toString('utf8');
      if (buffer.includes('+PONG')) finish({ ok: true, detail: `Redis at ${describeEndpoint(endpoint)}` });
      else if (buffer.startsWith('-')) {
        finish({ ok: false, error: `${describeEndpoint(endpoint)}: ${buffer.split('\r\n')[0]!.slice(1)}` });
      }
    });
    socket.on('error', (error) => finish({ ok: false, error: errorText(error) }));
    socket.write(payload);
  });
}

/** RabbitMQ: a TCP connect to the AMQP port is enough (no client library at setup time). */
export async function probeAmqp(url: string, timeoutMs = TCP_TIMEOUT_MS): Promise<ProbeResult> {
  let endpoint: { host: string; port: number };
  try {
    endpoint = endpointOfUrl(url, url.startsWith('amqps:') ? 5671 : 5672);
  } catch {
    return { ok: false, error: `not a valid URL: ${redactUrl(url)}` };
  }
  const tcp = await probeTcp(endpoint, timeoutMs);
  return tcp.ok ? { ok: true, detail: `AMQP port open at ${tcp.detail}` } : tcp;
}

/** Candidate container runtime sockets, in the order testcontainers would try them. */
export function containerSocketCandidates(env: NodeJS.ProcessEnv = process.env): string[] {
  const home = homedir();
  const candidates: string[] = [];
  const propertiesFile = join(home, '.testcontainers.properties');
  if (existsSync(propertiesFile)) {
    const line = readFileSync(propertiesFile, 'utf8')
      .split('\n')
      .find((l) => l.trim().startsWith('docker.host'));
    const value = line?.split('=').slice(1).join('=').trim();
    if (value) candidates.push(value);
  }
  if (env.DOCKER_HOST) candidates.push(env.DOCKER_HOST);
  const runtimeDir = env.XDG_RUNTIME_DIR;
  candidates.push(
    '/var/run/docker.sock',
    join(home, '.docker/run/docker.sock'),
    join(home, '.docker/desktop/docker.sock'),
    join(home, '.colima/default/docker.sock'),
    join(home, '.rd/docker.sock'),
    ...(runtimeDir ? [join(runtimeDir, 'docker.sock'), join(runtimeDir, 'podman/podman.sock')] : []),
    '/run/podman/podman.sock',
  );
  return [...new Set(candidates)];
}

/** `GET /_ping` of the Docker Engine API (Podman answers it too): `OK` within `timeoutMs` means a runtime. */
export function pingDockerApi(endpoint: Endpoint, timeoutMs = 1000): Promise<ProbeResult> {
  return new Promise((resolve) => {
    const request = httpRequest(
      {
        ...('path' in endpoint ? { socketPath: endpoint.path } : endpoint),
        path: '/_ping',
        method: 'GET',
        timeout: timeoutMs,
      },
      (response) => {
        response.resume();
        resolve(
          response.statusCode === 200
            ? { ok: true, detail: describeEndpoint(endpoint) }
            : { ok: false, error: `${describeEndpoint(endpoint)}: /_ping answered ${response.statusCode}` },
        );
      },
    );
    request.on('timeout', () => request.destroy(new Error(`no /_ping answer within ${timeoutMs} ms`)));
    request.on('error', (error) =>
      resolve({ ok: false, error: `${describeEndpoint(endpoint)}: ${errorText(error)}` }),
    );
    request.end();
  });
}

/**
 * Finds a container runtime without loading testcontainers: a socket (file, or `tcp://` DOCKER_HOST) whose
 * Docker API answers `/_ping`. Missing socket files cost nothing; a silent one at most a second.
 */
export async function detectContainerRuntime(
  env: NodeJS.ProcessEnv = process.env,
): Promise<ContainerRuntime> {
  if (env.MT_PAAS_TEST_CONTAINERS === '0') {
    return { found: false, reason: 'testcontainers disabled by MT_PAAS_TEST_CONTAINERS=0' };
  }
  const checked: string[] = [];
  for (const candidate of containerSocketCandidates(env)) {
    let endpoint: Endpoint;
    if (/^(tcp|http|https):\/\//.test(candidate)) {
      const parsed = new URL(candidate.replace(/^tcp:/, 'http:'));
      endpoint = { host: parsed.hostname, port: Number(parsed.port || 2375) };
      if (candidate.startsWith('https:') || env.DOCKER_TLS_VERIFY) {
        // TLS endpoints need client certificates: an open port is the best cheap evidence.
        const result = await probeTcp(endpoint);
        if (result.ok) return { found: true, description: candidate };
        checked.push(`${candidate} (${result.error})`);
        continue;
      }
    } else {
      const path = candidate.replace(/^unix:\/\//, '');
      if (!path.startsWith('/') || !existsSync(path)) {
        checked.push(candidate);
        continue;
      }
      endpoint = { path };
    }
    const result = await pingDockerApi(endpoint);
    if (result.ok) return { found: true, description: candidate };
    checked.push(`${candidate} (${result.error})`);
  }
  return { found: false, reason: `no container runtime (checked ${checked.join(', ')})` };
}

const CONTAINER_START_TIMEOUT_MS = 120_000;

async function withTimeout<T>(promise: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`${what} did not start within ${CONTAINER_START_TIMEOUT_MS / 1000} s`)),
          CONTAINER_START_TIMEOUT_MS,
        );
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Starts `postgres:16-alpine` through testcontainers (imported only here, only when a runtime was found). */
export async function startPostgresContainer(): Promise<StartedContainer> {
  const { PostgreSqlContainer } = await import('@testcontainers/postgresql');
  const container = await withTimeout(
    new PostgreSqlContainer('postgres:16-alpine').withDatabase('postgres').start(),
    'the Postgres container',
  );
  return {
    url: container.getConnectionUri(),
    detail: `container ${container.getId().slice(0, 12)} (postgres:16-alpine)`,
    stop: async () => {
      await container.stop();
    },
  };
}

/** Starts `redis:7-alpine` through testcontainers (imported only here, only when a runtime was found). */
export async function startRedisContainer(): Promise<StartedContainer> {
  const { RedisContainer } = await import('@testcontainers/redis');
  const container = await withTimeout(new RedisContainer('redis:7-alpine').start(), 'the Redis container');
  return {
    url: container.getConnectionUrl(),
    detail: `container ${container.getId().slice(0, 12)} (redis:7-alpine)`,
    stop: async () => {
      await container.stop();
    },
  };
}
