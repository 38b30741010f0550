// The HTTP request path, layer by layer, on Fastify, Express and Hono (pnpm bench http --help).
//
// Every server runs in its own child process; the metric that matters is the SERVER's CPU time per
// request (process.cpuUsage() deltas sent over IPC), because the load generator (autocannon, in this
// process) shares the machine's cores. Rounds are interleaved (every cell once per round, the order
// rotated each round) and the median kept. Ratios are to the bare framework of the same run.
import { execFileSync, fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createCatalog, ensureAppRole } from '@mt-paas/db';
import autocannon from 'autocannon';
import { Redis } from 'ioredis';
import { SignJWT } from 'jose';
import {
  deleteRedisKeys,
  dropDatabase,
  dropRole,
  flags,
  fmt,
  freshDatabase,
  machineInfo,
  median,
  positive,
  redisUrl,
  repoRoot,
  resultsDir,
  scanKeys,
  spread,
  table,
  timestamp,
  updateDocSection,
  withUser,
  writeResult,
} from './lib/common.mjs';

const USAGE = `pnpm bench http [options]

  --duration <s>          seconds per cell and round (default 5)
  --connections <n>       autocannon connections (default 32)
  --rounds <n>            interleaved rounds; the median is kept (default 3)
  --tenants <n>           tenants the load cycles through (default 100)
  --catalog-tenants <n>   tenants in the Postgres catalog (default 10000)
  --frameworks <list>     comma-separated subset of fastify,express,hono
  --layers <list>         comma-separated subset of bare,resolve,jwt,ratelimit,quota,db,resolvedb,naive,defaults
  --label <text>          names the run in docs/performance.md (default "latest")
  --no-profile            skip the node --cpu-prof runs of the Fastify server (--profile: run them in --quick too)
  --profile-layers <list> the Fastify layers profiled (default resolve,jwt; any of the --layers names, bare too)
  --rate <req/s>          drive every cell at this overall rate (autocannon overallRate) instead of as fast as
                          it goes: CPU per request depends on throughput, so cells compare fairly only at one
                          rate; a cell reaching under 95 % of it is reported as a failure
  --keep-profiles <dir>   copy each .cpuprofile there (fastify-<layer>.cpuprofile; open in Chrome DevTools)
  --no-memory             skip the memory checks (cache bytes per tenant, a full server with 1000 cached)
  --no-docs               do not update docs/performance.md
  --quick                 smoke test: 1 s cells, 2 rounds, 16 connections, 1000 catalog tenants, no profile,
                          results to a temp folder, docs untouched; exits non-zero on any failure

Env: MT_PAAS_BENCH_DATABASE_URL (superuser; default postgres://postgres@127.0.0.1:5432/postgres),
     MT_PAAS_BENCH_REDIS_URL (default redis://127.0.0.1:6379).
Creates and drops its own database and role (mtp_bench_http_<run id>, mtp_bench_http_app_<run id>);
Redis keys under a per-run prefix, deleted at the end.`;

const FRAMEWORKS = ['fastify', 'express', 'hono'];
/** Fastify layers profiled with node --cpu-prof (the pipeline alone, then with the JWT, its largest step). */
const PROFILED_LAYERS = ['resolve', 'jwt'];
const PROFILE_NOTE =
  '`node --cpu-prof` of the Fastify server under the same load as the cells, one run per layer. Self time; ' +
  '"% busy" counts everything, "% JS" leaves out native frames (system calls — the socket writes are `writev` — ' +
  'and V8 builtins), GC and (program).';
const LAYERS = ['bare', 'resolve', 'jwt', 'ratelimit', 'quota', 'db', 'resolvedb', 'naive', 'defaults'];
const LAYER_TITLES = {
  bare: 'bare framework',
  resolve: '+ mt-paas: header → cached directory → status/plan → ALS (limits, quota, request log off)',
  jwt: '+ HS256 JWT on every request',
  ratelimit: '+ Redis GCRA rate limit',
  quota: '+ Redis quota',
  db: '+ tenant-scoped DB read (row mode, RLS)',
  resolvedb: 'resolve + the DB read only (no JWT, no limits: compare with the seed-style row)',
  naive: 'seed-style: directory SQL query + session `SET search_path` + the same read, per request',
  defaults: 'header only, defaults (in-process limit + quota, request log on, metrics)',
};

const options = flags(
  process.argv.slice(2),
  {
    duration: { type: 'string' },
    connections: { type: 'string' },
    rounds: { type: 'string' },
    tenants: { type: 'string' },
    'catalog-tenants': { type: 'string' },
    frameworks: { type: 'string' },
    layers: { type: 'string' },
    label: { type: 'string', default: 'latest' },
    profile: { type: 'boolean', default: false },
    'no-profile': { type: 'boolean', default: false },
    'no-docs': { type: 'boolean', default: false },
    'profile-layers': { type: 'string' },
    'no-memory': { type: 'boolean', default: false },
    'keep-profiles': { type: 'string' },
    rate: { type: 'string' },
    quick: { type: 'boolean', default: false },
  },
  USAGE,
);
const quick = options.quick;
const duration = positive('duration', options.duration ?? (quick ? 1 : 5));
const connections = positive('connections', options.connections ?? (quick ? 16 : 32), { integer: true });
const rounds = positive('rounds', options.rounds ?? (quick ? 2 : 3), { integer: true });
const loadTenants = positive('tenants', options.tenants ?? 100, { integer: true });
const catalogTenants = positive('catalog-tenants', options['catalog-tenants'] ?? (quick ? 1000 : 10_000), {
  integer: true,
});
const list = (value, all, name) => {
  if (value === undefined) return all;
  const chosen = value.split(',').map((entry) => entry.trim());
  for (const entry of chosen) {
    if (!all.includes(entry)) {
      console.error(`--${name}: unknown "${entry}" (one of ${all.join(', ')})`);
      process.exit(2);
    }
  }
  return all.filter((entry) => chosen.includes(entry));
};
const frameworks = list(options.frameworks, FRAMEWORKS, 'frameworks');
const layers = list(options.layers, LAYERS, 'layers');
if (!layers.includes('bare')) layers.unshift('bare'); // every ratio needs it
if (catalogTenants < Math.max(loadTenants, quick ? 0 : 1000)) {
  console.error(
    '--catalog-tenants must be at least --tenants (and 1000 outside --quick, for the memory check)',
  );
  process.exit(2);
}
const profile = options.profile || (!quick && !options['no-profile']);
const rate = options.rate === undefined ? undefined : positive('rate', options.rate, { integer: true });
const profiledLayers =
  options['profile-layers'] === undefined
    ? PROFILED_LAYERS
    : list(options['profile-layers'], LAYERS, 'profile-layers');
const outDir = quick ? mkdtempSync(join(os.tmpdir(), 'mt-paas-bench-')) : resultsDir;

// Names of this run only: two runs at once (two worktrees on one machine) must not drop each other's database.
const runId = randomBytes(4).toString('hex');
const databaseName = `mtp_bench_http_${runId}`;
const appRole = `mtp_bench_http_app_${runId}`;
const appPassword = randomBytes(16).toString('hex');
const runPrefix = `mtpbench${runId}`;
const jwtSecret = randomBytes(32).toString('hex');
const serverScript = fileURLToPath(new URL('./http/server.mjs', import.meta.url));
const memoryScript = fileURLToPath(new URL('./http/memory.mjs', import.meta.url));
const tenantId = (index) => `bench_${String(index).padStart(5, '0')}`;
const ITEMS_PER_TENANT = 10;

const failures = [];
const fail = (message) => {
  failures.push(message);
  console.error(`FAIL ${message}`);
};

// ---------------------------------------------------------------- setup

async function setup() {
  const catalogUrl = await freshDatabase(databaseName);
  const catalog = await createCatalog({ connectionString: catalogUrl });
  await catalog.migrate();
  await ensureAppRole(catalog.driver, { role: appRole, password: appPassword });
  const { tenants, entitlements } = catalog.tables;
  const limits = {
    // Far above what the bench sends: every request is admitted, but every decision is still made.
    rpm: 1_000_000_000,
    quotas: { api_requests: { limit: 1_000_000_000_000, period: 'monthly', enforcement: 'block' } },
  };
  for (let first = 0; first < catalogTenants; first += 1000) {
    const ids = Array.from({ length: Math.min(1000, catalogTenants - first) }, (_, offset) =>
      tenantId(first + offset),
    );
    await catalog.driver.db
      .insert(tenants)
      .values(
        ids.map((id) => ({ id, name: `Bench University ${id}`, status: 'active', plan: 'professional' })),
      );
    await catalog.driver.db
      .insert(entitlements)
      .values(ids.map((id) => ({ tenantId: id, plan: 'professional', features: { quiz: true }, limits })));
  }
  // The row-mode table (the DDL tenantTable() + drizzle-kit produce, FORCE as migrateTenants() does),
  // and the seed's schema-per-tenant copy of it for the naive baseline.
  const schemas = Array.from({ length: loadTenants }, (_, index) => {
    const id = tenantId(index);
    return `CREATE SCHEMA ${id};
      CREATE TABLE ${id}.items (id integer PRIMARY KEY, name text NOT NULL);
      INSERT INTO ${id}.items SELECT i, 'item ' || i FROM generate_series(1, ${ITEMS_PER_TENANT}) i;`;
  }).join('\n');
  await catalog.driver.exec(`
    CREATE TABLE public.items (
      tenant_id text DEFAULT nullif(current_setting('app.tenant_id', true), '') NOT NULL,
      id integer NOT NULL, name text NOT NULL,
      CONSTRAINT items_pkey PRIMARY KEY (tenant_id, id));
    ALTER TABLE public.items ENABLE ROW LEVEL SECURITY;
    ALTER TABLE public.items FORCE ROW LEVEL SECURITY;
    CREATE POLICY items_tenant_isolation ON public.items AS PERMISSIVE FOR ALL TO public
      USING (tenant_id = nullif(current_setting('app.tenant_id', true), ''))
      WITH CHECK (tenant_id = nullif(current_setting('app.tenant_id', true), ''));
    GRANT SELECT, INSERT, UPDATE, DELETE ON public.items TO ${appRole};
    INSERT INTO public.items (tenant_id, id, name)
      SELECT 'bench_' || lpad(t::text, 5, '0'), i, 'item ' || i
      FROM generate_series(0, ${loadTenants - 1}) t, generate_series(1, ${ITEMS_PER_TENANT}) i;
    ${schemas}
    ANALYZE;`);
  await catalog.close();
  return { catalogUrl, appUrl: withUser(catalogUrl, appRole, appPassword) };
}

// ---------------------------------------------------------------- child servers

function waitFor(child, type, timeoutMs = 30_000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`no "${type}" from the server within ${timeoutMs} ms`));
    }, timeoutMs);
    const onMessage = (message) => {
      if (message.type === 'error') {
        cleanup();
        reject(new Error(message.message));
      } else if (message.type === type) {
        cleanup();
        resolve(message);
      }
    };
    const onExit = (code) => {
      cleanup();
      reject(new Error(`the server exited (code ${code}) before "${type}"`));
    };
    const cleanup = () => {
      clearTimeout(timer);
      child.off('message', onMessage);
      child.off('exit', onExit);
    };
    child.on('message', onMessage);
    child.on('exit', onExit);
  });
}

async function ask(child, type, reply) {
  const answer = waitFor(child, reply);
  child.send({ type });
  return answer;
}

async function startServer(framework, layer, env, execArgv = []) {
  const config = {
    framework,
    layer,
    catalogUrl: env.catalogUrl,
    appUrl: env.appUrl,
    redisUrl,
    keyPrefix: `${runPrefix}-${framework}-${layer}`,
    jwtSecret,
  };
  const child = fork(serverScript, [JSON.stringify(config)], {
    execArgv: ['--expose-gc', ...execArgv],
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
  const { port } = await waitFor(child, 'ready');
  return { framework, layer, child, port, keyPrefix: config.keyPrefix, url: `http://127.0.0.1:${port}` };
}

async function stopServer(server) {
  try {
    await ask(server.child, 'close', 'closed');
  } catch (error) {
    fail(`${server.framework}/${server.layer}: close: ${error.message}`);
    server.child.kill();
  }
  if (server.child.exitCode === null) await new Promise((resolve) => server.child.once('exit', resolve));
}

// ---------------------------------------------------------------- requests

const tokens = new Map();
async function tokenFor(id) {
  if (!tokens.has(id)) {
    tokens.set(
      id,
      await new SignJWT({ tenant_id: id, roles: ['learner'] })
        .setProtectedHeader({ alg: 'HS256' })
        .setSubject(`user_${id}`)
        .setIssuedAt()
        .setExpirationTime('2h')
        .sign(new TextEncoder().encode(jwtSecret)),
    );
  }
  return tokens.get(id);
}
const withToken = (layer) => ['jwt', 'ratelimit', 'quota', 'db'].includes(layer);

async function requestFor(layer, index) {
  const id = tenantId(index % loadTenants);
  const headers = { 'x-tenant-id': id };
  if (withToken(layer)) headers.authorization = `Bearer ${await tokenFor(id)}`;
  return { method: 'GET', path: `/items/${(index % ITEMS_PER_TENANT) + 1}`, headers };
}

/**
 * Checks that a cell really does what its name says before it is measured: the right answer for a
 * tenant, a refusal without a tenant (or without a token), the rate limit headers, the Redis keys.
 */
async function probe(server, redis) {
  const name = `${server.framework}/${server.layer}`;
  const { layer } = server;
  const request = await requestFor(layer, 2);
  const tenant = request.headers['x-tenant-id'];
  const response = await fetch(`${server.url}${request.path}`, { headers: request.headers });
  const body = await response.json().catch(() => undefined);
  if (response.status !== 200)
    return fail(`${name}: probe answered ${response.status} ${JSON.stringify(body)}`);
  if (body?.tenant !== tenant)
    return fail(`${name}: probe answered tenant ${JSON.stringify(body?.tenant)}, not ${tenant}`);
  if (['db', 'resolvedb', 'naive'].includes(layer) && body.item?.name !== 'item 3') {
    return fail(`${name}: the DB read answered ${JSON.stringify(body.item)}, not item 3`);
  }
  if (layer === 'bare') return;
  const anonymous = await fetch(`${server.url}${request.path}`);
  const refusals = withToken(layer) ? [400, 401] : [400];
  if (!refusals.includes(anonymous.status)) {
    fail(`${name}: a request without a tenant answered ${anonymous.status}, not ${refusals.join(' or ')}`);
  }
  if (withToken(layer)) {
    const unsigned = await fetch(`${server.url}${request.path}`, { headers: { 'x-tenant-id': tenant } });
    if (unsigned.status !== 401)
      fail(`${name}: a request without a token answered ${unsigned.status}, not 401`);
  }
  const limited = ['ratelimit', 'quota', 'db', 'defaults'].includes(layer);
  if (limited !== response.headers.has('ratelimit-limit')) {
    fail(`${name}: RateLimit-Limit header ${limited ? 'missing' : 'present'}`);
  }
  if (limited && layer !== 'defaults' && response.headers.get('ratelimit-limit') !== '1000000000') {
    fail(`${name}: RateLimit-Limit is ${response.headers.get('ratelimit-limit')}, not the tenant's rpm`);
  }
  if (['ratelimit', 'quota', 'db'].includes(layer)) {
    // The GCRA key of a tenant this far under its limit lives ~1 ms; the connection's last command shows
    // the decision was made in Redis. The quota counter stays, so it is looked for directly.
    await fetch(`${server.url}${request.path}`, { headers: request.headers }).then((r) => r.arrayBuffer());
    const clients = String(await redis.client('LIST')).split('\n');
    const own = clients.find((line) => line.includes(` name=${server.keyPrefix} `));
    if (own === undefined || !/ cmd=evalsha /.test(own)) {
      fail(
        `${name}: the server's Redis connection did not run the limiter script (${own ?? 'no connection'})`,
      );
    }
    const quotaKeys = await scanKeys(redis, `${server.keyPrefix}:{${tenant}}:q:*`);
    if ((layer !== 'ratelimit') !== quotaKeys.length > 0) {
      fail(`${name}: quota counter ${layer === 'ratelimit' ? 'present' : 'missing'} in Redis`);
    }
  }
}

async function load(server, seconds) {
  const requests = [];
  for (let index = 0; index < loadTenants; index += 1) requests.push(await requestFor(server.layer, index));
  const result = await autocannon({
    url: server.url,
    connections,
    duration: seconds,
    pipelining: 1,
    ...(rate === undefined ? {} : { overallRate: rate }),
    timeout: 10,
    requests,
  });
  const completed = result['2xx'] + result.non2xx;
  return {
    completed,
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
    reqPerSec: completed / result.duration,
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
  };
}

async function measure(server) {
  await ask(server.child, 'start', 'started').then((message) => {
    server.memory ??= { first: message.memory };
  });
  const loadCpu = process.cpuUsage();
  const result = await load(server, duration);
  const loadUsed = process.cpuUsage(loadCpu);
  const stopped = await ask(server.child, 'stop', 'stopped');
  server.memory.last = stopped.memory;
  const name = `${server.framework}/${server.layer}`;
  if (result.non2xx > 0 || result.errors > 0 || result.timeouts > 0) {
    fail(
      `${name}: ${result.non2xx} non-2xx, ${result.errors} errors, ${result.timeouts} timeouts under load`,
    );
  }
  if (result.completed === 0) fail(`${name}: no request completed`);
  if (rate !== undefined && result.reqPerSec < rate * 0.95) {
    fail(`${name}: ${Math.round(result.reqPerSec)} req/s, under the fixed rate of ${rate}: lower --rate`);
  }
  return {
    ...result,
    serverCpuMicrosPerRequest: stopped.cpuMicros / Math.max(1, result.completed),
    ...(stopped.mainThreadCpuMicros === undefined
      ? {}
      : {
          mainThreadCpuMicrosPerRequest: stopped.mainThreadCpuMicros / Math.max(1, result.completed),
          otherThreadsCpuMicrosPerRequest: stopped.otherThreadsCpuMicros / Math.max(1, result.completed),
        }),
    loadGeneratorCpuMicrosPerRequest: (loadUsed.user + loadUsed.system) / Math.max(1, result.completed),
  };
}

// ---------------------------------------------------------------- memory

async function memoryChecks(env) {
  const all = Math.min(catalogTenants, 10_000);
  const steps = quick ? [100, Math.min(1000, all)] : [1000, all];
  const output = execFileSync(
    process.execPath,
    ['--expose-gc', memoryScript, JSON.stringify({ catalogUrl: env.catalogUrl, steps })],
    { encoding: 'utf8', maxBuffer: 2 ** 24 },
  );
  const cache = JSON.parse(output.trim().split('\n').at(-1));
  if (cache.size !== steps.at(-1)) fail(`memory: the cache holds ${cache.size} tenants, not ${steps.at(-1)}`);

  // A full mt-paas Fastify server (JWT, Redis rate limit and quota) with every catalog tenant available
  // and `cached` of them looked up once each.
  const cached = Math.min(1000, catalogTenants);
  const server = await startServer('fastify', 'quota', env);
  try {
    const idle = await ask(server.child, 'stats', 'stats');
    let next = 0;
    const worker = async () => {
      while (next < cached) {
        const id = tenantId(next++);
        const response = await fetch(`${server.url}/items/1`, {
          headers: { 'x-tenant-id': id, authorization: `Bearer ${await tokenFor(id)}` },
        });
        if (response.status !== 200) fail(`memory: ${id} answered ${response.status}`);
        await response.arrayBuffer();
      }
    };
    await Promise.all(Array.from({ length: 8 }, worker));
    const filled = await ask(server.child, 'stats', 'stats');
    if (filled.cache.size !== cached)
      fail(`memory: the server caches ${filled.cache.size} tenants, not ${cached}`);
    return {
      cache,
      server: { catalogTenants, cached: filled.cache.size, idle: idle.memory, filled: filled.memory },
    };
  } finally {
    await stopServer(server);
  }
}

// ---------------------------------------------------------------- profile

/**
 * Self time per function of a .cpuprofile (V8's sampling profile) within [from, to] (µs, the profile's
 * monotonic clock): start-up and shutdown are left out. Idle apart; "JS" excludes native frames
 * (system calls such as the socket writes, V8 builtins), GC and (program).
 */
function selfTimes(profilePath, from, to) {
  const data = JSON.parse(readFileSync(profilePath, 'utf8'));
  const nodes = new Map(data.nodes.map((node) => [node.id, node]));
  const self = new Map();
  let at = data.startTime;
  let kept = 0;
  for (let index = 0; index < data.samples.length; index += 1) {
    at += data.timeDeltas[index];
    if (at < from || at > to) continue;
    kept += 1;
    const delta = data.timeDeltas[index + 1] ?? 0; // the time until the next sample belongs to this one
    self.set(data.samples[index], (self.get(data.samples[index]) ?? 0) + delta);
  }
  if (kept === 0) throw new Error('no profile sample inside the measured window (clock mismatch?)');
  const byFunction = new Map();
  const byPackage = new Map();
  let busy = 0;
  let idle = 0;
  let js = 0;
  const native = new Set(); // keys of frames without a script: system calls, V8 builtins, GC, (program)
  for (const [id, micros] of self) {
    const { functionName, url, lineNumber } = nodes.get(id).callFrame;
    if (functionName === '(idle)') {
      idle += micros;
      continue;
    }
    busy += micros;
    if (url !== '') js += micros;
    const where = url === '' ? '' : shortUrl(url);
    const key = `${functionName || '(anonymous)'} ${where}${url === '' ? '' : `:${lineNumber + 1}`}`;
    byFunction.set(key, (byFunction.get(key) ?? 0) + micros);
    const pkg = packageOf(url, functionName);
    if (url === '') native.add(key).add(pkg);
    byPackage.set(pkg, (byPackage.get(pkg) ?? 0) + micros);
  }
  const top = (map, count) =>
    [...map]
      .sort((a, b) => b[1] - a[1])
      .slice(0, count)
      .map(([name, micros]) => ({
        name: name.trim(),
        ms: micros / 1000,
        percent: (micros / busy) * 100,
        // native frames, GC and (program) are not JavaScript: no share of JS time
        jsPercent: native.has(name) ? undefined : (micros / js) * 100,
      }));
  return {
    samples: kept,
    busyMs: busy / 1000,
    idleMs: idle / 1000,
    jsMs: js / 1000,
    functions: top(byFunction, 30),
    packages: top(byPackage, 15),
  };
}

function shortUrl(url) {
  const path = url.replace(/^file:\/\//, '');
  const modules = path.lastIndexOf('/node_modules/');
  if (modules !== -1)
    return path.slice(modules + '/node_modules/'.length).replace(/^\.pnpm\/[^/]+\/node_modules\//, '');
  return path.startsWith(repoRoot) ? path.slice(repoRoot.length + 1) : path;
}

function packageOf(url, functionName) {
  if (url === '') return functionName.startsWith('(') ? functionName : '(native: system calls, V8 builtins)';
  if (url.startsWith('node:')) return 'node: (core)';
  const short = shortUrl(url);
  if (short.startsWith('packages/')) return `@mt-paas/${short.split('/')[1]}`;
  if (short.startsWith('bench/')) return 'bench (server + handler)';
  const parts = short.split('/');
  return parts[0].startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0];
}

async function profileRun(env, layer) {
  const dir = mkdtempSync(join(os.tmpdir(), 'mt-paas-cpuprof-'));
  const server = await startServer('fastify', layer, env, ['--cpu-prof', '--cpu-prof-dir', dir]);
  let window;
  try {
    await load(server, Math.min(2, duration)); // warm-up: JIT, cache
    const started = await ask(server.child, 'start', 'started');
    await load(server, Math.max(duration, 5));
    const stopped = await ask(server.child, 'stop', 'stopped');
    window = [started.atMicros, stopped.atMicros];
  } finally {
    await stopServer(server);
  }
  const file = readdirSync(dir).find((name) => name.endsWith('.cpuprofile'));
  if (file === undefined) {
    fail('profile: node --cpu-prof wrote no profile');
    return undefined;
  }
  const summary = selfTimes(join(dir, file), ...window);
  if (options['keep-profiles'] !== undefined) {
    mkdirSync(options['keep-profiles'], { recursive: true });
    copyFileSync(join(dir, file), join(options['keep-profiles'], `fastify-${layer}.cpuprofile`));
  }
  rmSync(dir, { recursive: true, force: true });
  return { framework: 'fastify', layer, ...summary };
}

// ---------------------------------------------------------------- report

function summarize(servers, samples) {
  const cells = [];
  for (const server of servers) {
    const own = samples.get(server);
    const bare = samples.get(
      servers.find((other) => other.framework === server.framework && other.layer === 'bare'),
    );
    const perRound = (key) => own.map((sample) => sample[key]);
    const ratio = (key, invert) =>
      median(
        own.map((sample, round) =>
          invert ? bare[round][key] / sample[key] : sample[key] / bare[round][key],
        ),
      );
    cells.push({
      framework: server.framework,
      layer: server.layer,
      reqPerSec: median(perRound('reqPerSec')),
      reqPerSecSpreadPct: spread(perRound('reqPerSec')),
      p50Ms: median(perRound('p50Ms')),
      p99Ms: median(perRound('p99Ms')),
      serverCpuMicrosPerRequest: median(perRound('serverCpuMicrosPerRequest')),
      serverCpuSpreadPct: spread(perRound('serverCpuMicrosPerRequest')),
      loadGeneratorCpuMicrosPerRequest: median(perRound('loadGeneratorCpuMicrosPerRequest')),
      ...(own[0].mainThreadCpuMicrosPerRequest === undefined
        ? {}
        : {
            mainThreadCpuMicrosPerRequest: median(perRound('mainThreadCpuMicrosPerRequest')),
            otherThreadsCpuMicrosPerRequest: median(perRound('otherThreadsCpuMicrosPerRequest')),
          }),
      reqPerSecVsBare: ratio('reqPerSec', false),
      cpuVsBare: ratio('serverCpuMicrosPerRequest', false),
      throughputEquivalentVsBare: ratio('serverCpuMicrosPerRequest', true),
      memory: server.memory,
      rounds: own,
    });
  }
  return cells;
}

const mb = (bytes) => (bytes / 2 ** 20).toFixed(1);

function markdown(report) {
  const lines = [];
  const m = report.machine;
  lines.push(
    `Run ${report.startedAt} (${report.label}): ${m.cpus} × ${m.cpuModel}, ${m.totalMemoryMb} MB, Node ${m.node}, ${m.platform}; ` +
      `load average ${m.loadAverage.join(' / ')} before, ${report.loadAverageAfter.join(' / ')} after. ` +
      `autocannon, ${report.config.connections} connections${report.config.rate === undefined ? '' : ` at a fixed ${report.config.rate} req/s`}, ${report.config.duration} s per cell, ` +
      `${report.config.rounds} interleaved rounds (median; spread = (max − min) / median), ` +
      `${report.config.loadTenants} tenants in turn out of ${report.config.catalogTenants} in the catalog.`,
    '',
  );
  for (const framework of report.config.frameworks) {
    lines.push(`#### ${framework}`, '');
    const rows = report.cells
      .filter((cell) => cell.framework === framework)
      .map((cell) => [
        LAYER_TITLES[cell.layer],
        fmt(cell.reqPerSec),
        `${fmt(cell.reqPerSecVsBare * 100)} %`,
        fmt(cell.p50Ms, 1),
        fmt(cell.p99Ms, 1),
        fmt(cell.serverCpuMicrosPerRequest, 1),
        cell.mainThreadCpuMicrosPerRequest === undefined
          ? '—'
          : `${fmt(cell.mainThreadCpuMicrosPerRequest, 1)} / ${fmt(cell.otherThreadsCpuMicrosPerRequest, 1)}`,
        `${fmt(cell.throughputEquivalentVsBare * 100)} %`,
        `${fmt(cell.reqPerSecSpreadPct)} % / ${fmt(cell.serverCpuSpreadPct)} %`,
      ]);
    lines.push(
      table(
        [
          'layer',
          'req/s',
          'req/s vs bare',
          'p50 ms',
          'p99 ms',
          'server CPU µs/req',
          'of it: main thread / other threads',
          'throughput-equivalent vs bare (CPU)',
          'spread req/s / CPU',
        ],
        rows,
      ),
      '',
    );
  }
  const { memory } = report;
  if (memory !== undefined) {
    const steps = memory.cache.steps
      .map((step) => `${fmt(step.bytesPerTenant)} B per tenant up to ${step.cached} cached`)
      .join(', ');
    lines.push(
      '#### Memory',
      '',
      `- Directory cache (\`createCachedDirectory\` over the Postgres catalog, heap after forced GC): ${steps}; ` +
        `one tenant record is ${memory.cache.recordJsonBytes} B as JSON.`,
      `- A full mt-paas Fastify server (JWT + Redis rate limit + quota), ${memory.server.catalogTenants} tenants in the catalog: ` +
        `RSS ${mb(memory.server.idle.rss)} MB / heap ${mb(memory.server.idle.heapUsed)} MB idle, ` +
        `RSS ${mb(memory.server.filled.rss)} MB / heap ${mb(memory.server.filled.heapUsed)} MB with ${memory.server.cached} tenants cached.`,
      '',
    );
    const growth = report.cells.map((cell) => [
      `${cell.framework}/${cell.layer}`,
      mb(cell.memory.first.rss),
      mb(cell.memory.last.rss),
      mb(cell.memory.first.heapUsed),
      mb(cell.memory.last.heapUsed),
    ]);
    lines.push(
      `Growth across the ${report.config.rounds} rounds (each server's memory after a forced GC, before its first round and after its last):`,
      '',
      table(['server', 'RSS before MB', 'RSS after MB', 'heap before MB', 'heap after MB'], growth),
      '',
    );
  }
  if (report.profiles.length > 0)
    lines.push(`#### Where the time goes (${report.label})`, '', PROFILE_NOTE, '');
  for (const p of report.profiles) {
    lines.push(
      `##### Fastify, layer \`${p.layer}\``,
      '',
      `${LAYER_TITLES[p.layer]}, cut to the measured window (${p.samples} samples): ${fmt(p.busyMs)} ms busy, ` +
        `of which ${fmt(p.jsMs)} ms in JavaScript; ${fmt(p.idleMs)} ms idle.`,
      '',
      'By package:',
      '',
      table(
        ['package', 'self ms', '% busy', '% JS'],
        p.packages.map((entry) => [
          entry.name,
          fmt(entry.ms),
          fmt(entry.percent, 1),
          fmt(entry.jsPercent, 1),
        ]),
      ),
      '',
      'Top functions:',
      '',
      table(
        ['function (file:line)', 'self ms', '% busy', '% JS'],
        p.functions.map((entry) => [
          `\`${entry.name.replace(/\|/g, '\\|')}\``,
          fmt(entry.ms),
          fmt(entry.percent, 1),
          fmt(entry.jsPercent, 1),
        ]),
      ),
      '',
    );
  }
  if (report.failures.length > 0)
    lines.push('#### Failures', '', ...report.failures.map((f) => `- ${f}`), '');
  return lines.join('\n');
}

const METHOD = `\`pnpm bench http\` (\`bench/http.bench.mjs\`). Each cell is one server in its own child process
(\`bench/http/server.mjs\`: \`GET /items/:id\`), loaded by autocannon from the parent process over loopback,
the requests cycling through 100 tenants. The load generator shares the cores, so the figure to compare is
the **server's CPU time per request** (\`process.cpuUsage()\` of the server process over the measured window,
read over IPC), given also as a throughput-equivalent: bare CPU per request ÷ cell CPU per request. Every
cell is probed before it is measured (the right tenant in the answer, 400 without a tenant, 401 without a
token where JWT is on, the RateLimit headers where limits are on, the limiter's \`EVALSHA\` as the last command
of the server's own Redis connection in \`CLIENT LIST\`, the quota counter in Redis), and a non-2xx answer or a
socket error under load fails the run. Rounds are interleaved (each cell once per round, order rotated), medians
kept; a ratio is taken per round (cell ÷ bare of the same framework in the same round), then its median.
autocannon's latency histogram has 1 ms resolution (a p50 of 0 means under 1 ms).

Layers, each adding to the one above (the last three stand apart):

- **resolve** — \`createTenantPipeline\` with the \`header\` strategy over \`catalog.directory\` of
  \`@mt-paas/db\` (a real Postgres catalog, as the middleware README shows for production) behind the
  default LRU cache; rate limit, quota and request log off, metrics on (default).
- **jwt** — \`jwt: { secret }\` (HS256, jose), \`defaultAuth: 'jwt'\`: every request carries a token for its tenant.
- **ratelimit** — \`rateLimit: { redis }\` (GCRA, one \`EVALSHA\`; \`createRedisClient\`); the tenants' rpm is far above the load.
- **quota** — \`quota: { redis }\` (\`api_requests\`, monthly, block; one \`EVALSHA\`).
- **db** — the handler reads one row with \`tenantDb.run(tx => tx.select()…)\` (\`createTenantDb\`, row mode,
  RLS, app role NOSUPERUSER NOBYPASSRLS).
- **resolvedb** — **resolve** plus the same read, without JWT and limits: the like-for-like partner of **naive**.
- **naive** — what seeds 000/002 do: a directory SQL query per request, then \`SET search_path TO <id>, public\`
  at session level on a pooled connection, then the same read (schema per tenant). For comparison with
  **resolvedb** (its flaws — a leaking session setting, a string-built statement — are the seed's).
- **defaults** — header strategy and nothing else set: in-process rate limit and quota, request log on
  (pino to /dev/null), metrics on.`;

// ---------------------------------------------------------------- main

async function main() {
  const startedAt = new Date().toISOString();
  const machine = machineInfo();
  console.log(
    `http bench: ${frameworks.join(', ')} × ${layers.join(', ')}; ${rounds} rounds × ${duration} s, ${connections} connections${quick ? ' (quick)' : ''}`,
  );
  // For probes and cleanup. A Redis that is down fails its commands (and so the run) instead of hanging it.
  const redis = new Redis(redisUrl, {
    maxRetriesPerRequest: 1,
    retryStrategy: (times) => (times > 3 ? null : 200),
  });
  redis.on('error', () => {});
  const servers = [];
  let report;
  try {
    const env = await setup();
    for (const framework of frameworks) {
      for (const layer of layers) servers.push(await startServer(framework, layer, env));
    }
    for (const server of servers) await probe(server, redis);
    const samples = new Map(servers.map((server) => [server, []]));
    for (const server of servers) await load(server, Math.min(2, duration)); // warm-up (JIT, caches, pools)
    for (let round = 0; round < rounds; round += 1) {
      const order = servers.map((_, index) => servers[(index + round) % servers.length]);
      for (const server of order) {
        const sample = await measure(server);
        samples.get(server).push(sample);
        console.log(
          `round ${round + 1}/${rounds} ${`${server.framework}/${server.layer}`.padEnd(18)} ${fmt(sample.reqPerSec).padStart(6)} req/s  ` +
            `p50 ${fmt(sample.p50Ms, 1).padStart(5)} ms  p99 ${fmt(sample.p99Ms, 1).padStart(5)} ms  ` +
            `server ${fmt(sample.serverCpuMicrosPerRequest, 1).padStart(6)} µs/req` +
            (sample.mainThreadCpuMicrosPerRequest === undefined
              ? ''
              : ` (main ${fmt(sample.mainThreadCpuMicrosPerRequest, 1)}, others ${fmt(sample.otherThreadsCpuMicrosPerRequest, 1)})`),
        );
      }
    }
    for (const server of servers) await stopServer(server);
    servers.length = 0;
    const cells = summarize([...samples.keys()], samples);
    // The measurements are kept whatever happens next.
    writeResult(
      `http-${timestamp()}.partial.json`,
      `${JSON.stringify({ startedAt, cells }, null, 2)}\n`,
      os.tmpdir(),
    );
    const memory = options['no-memory']
      ? undefined
      : await memoryChecks(env).catch((error) => {
          fail(`memory: ${error?.stack ?? error}`);
        });
    const profiled = [];
    for (const layer of profile ? profiledLayers : []) {
      const result = await profileRun(env, layer).catch((error) => {
        fail(`profile ${layer}: ${error?.stack ?? error}`);
      });
      if (result !== undefined) profiled.push(result);
    }
    report = {
      startedAt,
      label: options.label,
      machine,
      loadAverageAfter: machineInfo().loadAverage,
      config: { duration, connections, rounds, loadTenants, catalogTenants, frameworks, layers, quick, rate },
      cells,
      memory,
      profiles: profiled,
      failures,
    };
  } catch (error) {
    fail(`run aborted: ${error?.stack ?? error}`);
  } finally {
    for (const server of servers) await stopServer(server);
    await deleteRedisKeys(redis, runPrefix).catch((error) => fail(`cleanup: Redis keys: ${error.message}`));
    redis.disconnect();
    await dropDatabase(databaseName).catch((error) => fail(`cleanup: drop database: ${error.message}`));
    await dropRole(appRole).catch((error) => fail(`cleanup: drop role: ${error.message}`));
  }
  if (report === undefined) {
    console.error(`\n${failures.length} failure(s):\n${failures.map((f) => `  - ${f}`).join('\n')}`);
    process.exit(1);
  }
  const stamp = timestamp();
  const json = writeResult(`http-${stamp}.json`, `${JSON.stringify(report, null, 2)}\n`, outDir);
  const md = markdown(report);
  const table = writeResult(`http-${stamp}.md`, `# HTTP request path — ${report.startedAt}\n\n${md}`, outDir);
  console.log(`\n${md}\nresults: ${json}, ${table}`);
  if (!quick && !options['no-docs'] && failures.length === 0) {
    const doc = updateDocSection(
      '## HTTP request path',
      `${METHOD}\n\n### Results (${report.label})\n\nFrom \`${json}\`.\n\n${md.replace(/^#### /gm, '#### ')}`,
    );
    console.log(`updated ${doc}`);
  }
  if (failures.length > 0) {
    console.error(`\n${failures.length} failure(s):\n${failures.map((f) => `  - ${f}`).join('\n')}`);
    process.exit(1);
  }
}

await main();
