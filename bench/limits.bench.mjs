// Rate limit and quota decisions: how many per second, and whether N concurrent callers against a
// limit of L admit exactly L — our Redis GCRA limiter and quota meter (@mt-paas/middleware) against
// @fastify/rate-limit (Redis store) and rate-limiter-flexible (RateLimiterRedis) on the same Redis.
// pnpm bench limits --help

import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import { join } from 'node:path';
import rateLimit from '@fastify/rate-limit';
import {
  createQuotaMeter,
  createRedisClient,
  createRedisQuotaStore,
  createRedisRateLimitStore,
} from '@mt-paas/middleware';
import Fastify from 'fastify';
import { Redis } from 'ioredis';
import { RateLimiterRedis } from 'rate-limiter-flexible';
import {
  deleteRedisKeys,
  flags,
  fmt,
  machineInfo,
  median,
  positive,
  redisUrl,
  resultsDir,
  spread,
  table,
  timestamp,
  updateDocSection,
  writeResult,
} from './lib/common.mjs';

const require = createRequire(import.meta.url);
// Not a public entry point of @fastify/rate-limit: its Redis store, called directly so the raw decision
// can be compared with the others without Fastify around it (the plugin itself is measured below).
const FastifyRedisStore = require('@fastify/rate-limit/store/RedisStore.js');

const USAGE = `pnpm bench limits [options]

  --duration <s>      seconds per contender and round (default 3)
  --rounds <n>        interleaved rounds; the median is kept (default 3)
  --concurrency <n>   callers in flight during the throughput runs (default 64)
  --callers <n>       concurrent callers of the exactness check (default 1000)
  --limit <n>         limit of the exactness check (default 100)
  --trials <n>        exactness trials per contender (default 5)
  --no-docs           do not update docs/performance.md
  --quick             smoke test: 0.5 s, 2 rounds, 2 trials, results to a temp folder, docs untouched;
                      exits non-zero on any failure (an inexact count is a failure in every mode)

Env: MT_PAAS_BENCH_REDIS_URL (default redis://127.0.0.1:6379). Keys under a per-run prefix, deleted at the end.`;

const options = flags(
  process.argv.slice(2),
  {
    duration: { type: 'string' },
    rounds: { type: 'string' },
    concurrency: { type: 'string' },
    callers: { type: 'string' },
    limit: { type: 'string' },
    trials: { type: 'string' },
    'no-docs': { type: 'boolean', default: false },
    quick: { type: 'boolean', default: false },
  },
  USAGE,
);
const quick = options.quick;
const duration = positive('duration', options.duration ?? (quick ? 0.5 : 3));
const rounds = positive('rounds', options.rounds ?? (quick ? 2 : 3), { integer: true });
const concurrency = positive('concurrency', options.concurrency ?? 64, { integer: true });
const callers = positive('callers', options.callers ?? 1000, { integer: true });
const limit = positive('limit', options.limit ?? 100, { integer: true });
const trials = positive('trials', options.trials ?? (quick ? 2 : 5), { integer: true });
if (limit >= callers) {
  console.error('--limit must be below --callers (else the check cannot fail)');
  process.exit(2);
}
const outDir = quick ? mkdtempSync(join(os.tmpdir(), 'mt-paas-bench-')) : resultsDir;
const runPrefix = `mtpbench${randomBytes(4).toString('hex')}`;
const HUGE = 1_000_000_000; // the throughput runs: every call is admitted, every decision still made
const THROUGHPUT_KEYS = 100;

const failures = [];
const fail = (message) => {
  failures.push(message);
  console.error(`FAIL ${message}`);
};

/**
 * Each contender: `build(redis)` → an "instance" (one Redis connection) with `decide(key, max)`
 * resolving to true (admitted) or false (refused); a store error rejects.
 */
const contenders = [
  {
    name: 'mt-paas rate limit (GCRA, Lua)',
    group: 'store',
    algorithm: 'GCRA, one EVALSHA',
    build(redis) {
      const store = createRedisRateLimitStore({ redis });
      return {
        decide: (key, max) => store.consume(`${runPrefix}:{${key}}:rl`, max, 60_000).then((d) => d.allowed),
      };
    },
  },
  {
    name: 'mt-paas quota (block, Lua)',
    group: 'store',
    algorithm: 'check-and-add counter, one EVALSHA',
    build(redis) {
      const meter = createQuotaMeter({ store: createRedisQuotaStore({ redis }), keyPrefix: runPrefix });
      return {
        decide: (key, max) =>
          meter
            .consume(key, 'api_requests', { limit: max, period: 'monthly', enforcement: 'block' })
            .then((d) => d.allowed),
        close: () => meter.close(),
      };
    },
  },
  {
    name: 'rate-limiter-flexible RateLimiterRedis',
    group: 'store',
    algorithm: 'fixed window, one EVALSHA',
    build(redis) {
      const limiters = new Map();
      const limiterFor = (max) => {
        if (!limiters.has(max)) {
          limiters.set(
            max,
            new RateLimiterRedis({
              storeClient: redis,
              points: max,
              duration: 60,
              keyPrefix: `${runPrefix}rlf${max}`,
            }),
          );
        }
        return limiters.get(max);
      };
      return {
        decide: (key, max) =>
          limiterFor(max)
            .consume(key)
            .then(
              () => true,
              (rejection) => {
                if (rejection instanceof Error) throw rejection;
                return false; // a RateLimiterRes: refused
              },
            ),
      };
    },
  },
  {
    name: '@fastify/rate-limit RedisStore (called directly)',
    group: 'store',
    algorithm: 'fixed window, one EVALSHA',
    build(redis) {
      const store = new FastifyRedisStore(false, false, redis, `${runPrefix}frl:`);
      return {
        decide: (key, max) =>
          new Promise((resolve, reject) =>
            store.incr(
              key,
              (error, result) => (error ? reject(error) : resolve(result.current <= max)),
              60_000,
              max,
            ),
          ),
      };
    },
  },
  // The same decisions behind Fastify (inject(): no socket), so the plugin can be compared as users run it.
  {
    name: 'Fastify inject, no limiter (baseline)',
    group: 'fastify',
    algorithm: '—',
    baseline: true,
    build: () => fastifyInstance(() => undefined),
  },
  {
    name: 'Fastify + @fastify/rate-limit (Redis)',
    group: 'fastify',
    algorithm: 'fixed window, one EVALSHA',
    async build(redis) {
      const apps = new Map();
      const appFor = async (max) => {
        if (!apps.has(max)) {
          const app = Fastify({ logger: false });
          await app.register(rateLimit, {
            max,
            timeWindow: 60_000,
            redis,
            nameSpace: `${runPrefix}frlp${max}:`,
            keyGenerator: (request) => request.headers['x-key'],
            skipOnError: false,
          });
          app.get('/', async () => ({ ok: true }));
          await app.ready();
          apps.set(max, app);
        }
        return apps.get(max);
      };
      await appFor(HUGE);
      return {
        decide: async (key, max) => statusOf(await (await appFor(max)).inject(injected(key))),
        close: async () => {
          for (const app of apps.values()) await app.close();
        },
      };
    },
  },
  {
    name: 'Fastify + mt-paas GCRA in onRequest',
    group: 'fastify',
    algorithm: 'GCRA, one EVALSHA',
    build(redis) {
      const store = createRedisRateLimitStore({ redis });
      return fastifyInstance((key, max) =>
        store.consume(`${runPrefix}:{${key}}:rlf`, max, 60_000).then((d) => d.allowed),
      );
    },
  },
  {
    name: 'Fastify + rate-limiter-flexible in onRequest',
    group: 'fastify',
    algorithm: 'fixed window, one EVALSHA',
    build(redis) {
      const limiters = new Map();
      return fastifyInstance((key, max) => {
        if (!limiters.has(max)) {
          limiters.set(
            max,
            new RateLimiterRedis({
              storeClient: redis,
              points: max,
              duration: 60,
              keyPrefix: `${runPrefix}rlff${max}`,
            }),
          );
        }
        return limiters
          .get(max)
          .consume(key)
          .then(
            () => true,
            (rejection) => {
              if (rejection instanceof Error) throw rejection;
              return false;
            },
          );
      });
    },
  },
];

const injected = (key) => ({ method: 'GET', url: '/', headers: { 'x-key': key, 'x-max': '' } });

function statusOf(response) {
  if (response.statusCode === 200) return true;
  if (response.statusCode === 429) return false;
  throw new Error(`answered ${response.statusCode}: ${response.body}`);
}

/** A Fastify app whose onRequest hook asks `allow(key, max)` (max travels in x-max). */
async function fastifyInstance(allow) {
  const app = Fastify({ logger: false });
  app.addHook('onRequest', async (request, reply) => {
    const allowed = await allow(request.headers['x-key'], Number(request.headers['x-max']));
    if (allowed === false) return reply.code(429).send({ error: 'rate limited' });
  });
  app.get('/', async () => ({ ok: true }));
  await app.ready();
  return {
    decide: async (key, max) =>
      statusOf(await app.inject({ ...injected(key), headers: { 'x-key': key, 'x-max': String(max) } })),
    close: () => app.close(),
  };
}

async function redisCpuMicros(redis) {
  const info = await redis.info('cpu');
  const value = (name) => Number(new RegExp(`${name}:([\\d.]+)`).exec(info)?.[1] ?? 0);
  return (value('used_cpu_user') + value('used_cpu_sys')) * 1e6;
}

/** Decisions per second from `concurrency` callers for `duration` s, all admitted. */
async function throughput(instance, monitor) {
  let count = 0;
  let refused = 0;
  const keys = Array.from({ length: THROUGHPUT_KEYS }, (_, index) => `t${index}`);
  const end = performance.now() + duration * 1000;
  const worker = async (offset) => {
    let index = offset;
    while (performance.now() < end) {
      if (!(await instance.decide(keys[index % THROUGHPUT_KEYS], HUGE))) refused += 1;
      index += 1;
      count += 1;
    }
  };
  const redisBefore = await redisCpuMicros(monitor);
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  await Promise.all(Array.from({ length: concurrency }, (_, offset) => worker(offset)));
  const seconds = (performance.now() - started) / 1000;
  const cpu = process.cpuUsage(cpuBefore);
  const redisCpu = (await redisCpuMicros(monitor)) - redisBefore;
  return {
    decisionsPerSec: count / seconds,
    refused,
    clientCpuMicrosPerDecision: (cpu.user + cpu.system) / count,
    redisCpuMicrosPerDecision: redisCpu / count,
  };
}

/** `callers` callers at once, alternating between two instances (two connections), on one fresh key. */
async function exactness(contender, instances, trial) {
  const key = `x${trial}${contender.index}`;
  const results = await Promise.all(
    Array.from({ length: callers }, (_, index) => instances[index % 2].decide(key, limit)),
  );
  return results.filter(Boolean).length;
}

async function main() {
  const startedAt = new Date().toISOString();
  const machine = machineInfo();
  console.log(
    `limits bench: ${rounds} rounds × ${duration} s, ${concurrency} in flight; exactness ${callers} callers, limit ${limit}, ${trials} trials`,
  );
  // The product's client (auto-pipelining, no offline queue), with a command timeout of 5 s instead of
  // 250 ms: a burst of 1000 callers on a busy 2-core machine must not turn into store errors.
  const client = () => createRedisClient({ url: redisUrl, commandTimeoutMs: 5000 });
  const clients = [client(), client()];
  const monitor = new Redis(redisUrl); // INFO and cleanup: an ordinary client (it may queue until connected)
  await Promise.all(clients.map((client) => (client.status === 'ready' ? undefined : once(client, 'ready'))));
  const built = [];
  try {
    for (const [index, contender] of contenders.entries()) {
      contender.index = index;
      contender.instances = [await contender.build(clients[0]), await contender.build(clients[1])];
      built.push(contender);
      contender.samples = [];
      contender.admitted = [];
    }
    for (const contender of built) await throughput(contender.instances[0], monitor); // warm-up
    for (let round = 0; round < rounds; round += 1) {
      for (let offset = 0; offset < built.length; offset += 1) {
        const contender = built[(offset + round) % built.length];
        const sample = await throughput(contender.instances[0], monitor);
        if (sample.refused > 0)
          fail(`${contender.name}: refused ${sample.refused} calls far under the limit`);
        contender.samples.push(sample);
        console.log(
          `round ${round + 1}/${rounds} ${contender.name.padEnd(48)} ${fmt(sample.decisionsPerSec).padStart(7)}/s  ` +
            `client ${fmt(sample.clientCpuMicrosPerDecision, 1).padStart(5)} µs  redis ${fmt(sample.redisCpuMicrosPerDecision, 1).padStart(5)} µs`,
        );
      }
    }
    for (const contender of built) {
      if (contender.baseline) continue;
      for (let trial = 0; trial < trials; trial += 1) {
        const admitted = await exactness(contender, contender.instances, trial);
        contender.admitted.push(admitted);
        if (admitted !== limit) {
          fail(
            `${contender.name}: ${callers} concurrent callers against a limit of ${limit} admitted ${admitted}`,
          );
        }
      }
      console.log(
        `exactness ${contender.name.padEnd(48)} admitted ${contender.admitted.join(', ')} of ${callers} (limit ${limit})`,
      );
    }
  } catch (error) {
    fail(`run aborted: ${error?.stack ?? error}`);
  } finally {
    for (const contender of built) for (const instance of contender.instances) await instance.close?.();
    await deleteRedisKeys(monitor, runPrefix).catch((error) => fail(`cleanup: ${error.message}`));
    for (const client of [...clients, monitor]) await client.quit().catch(() => client.disconnect());
  }

  const summary = built.map((contender) => {
    const values = (key) => contender.samples.map((sample) => sample[key]);
    return {
      name: contender.name,
      group: contender.group,
      algorithm: contender.algorithm,
      decisionsPerSec: contender.samples.length > 0 ? median(values('decisionsPerSec')) : undefined,
      spreadPct: contender.samples.length > 0 ? spread(values('decisionsPerSec')) : undefined,
      clientCpuMicrosPerDecision:
        contender.samples.length > 0 ? median(values('clientCpuMicrosPerDecision')) : undefined,
      redisCpuMicrosPerDecision:
        contender.samples.length > 0 ? median(values('redisCpuMicrosPerDecision')) : undefined,
      admitted: contender.admitted,
      exact: contender.baseline
        ? null
        : contender.admitted.length === trials && contender.admitted.every((n) => n === limit),
      samples: contender.samples,
    };
  });
  const report = {
    startedAt,
    machine,
    loadAverageAfter: machineInfo().loadAverage,
    config: {
      duration,
      rounds,
      concurrency,
      callers,
      limit,
      trials,
      quick,
      redis: redisUrl.replace(/\/\/[^@]*@/, '//'),
    },
    contenders: summary,
    failures,
  };
  const m = machine;
  const md = [
    `Run ${startedAt}: ${m.cpus} × ${m.cpuModel}, Node ${m.node}; load average ${m.loadAverage.join(' / ')} before, ` +
      `${report.loadAverageAfter.join(' / ')} after. Throughput: ${concurrency} calls in flight from one process for ${duration} s, ` +
      `${THROUGHPUT_KEYS} keys, every call admitted; ${rounds} interleaved rounds, median (spread = (max − min) / median). ` +
      `Exactness: ${callers} callers at once on one fresh key with a limit of ${limit}, alternating between two Redis ` +
      `connections (two instances), ${trials} trials. Redis CPU is read from \`INFO cpu\` of a shared Redis (other work adds to it).`,
    '',
    table(
      [
        'contender',
        'algorithm',
        'decisions/s',
        'spread',
        'client CPU µs/decision',
        'Redis CPU µs/decision',
        `admitted of ${callers} (limit ${limit})`,
      ],
      summary.map((entry) => [
        entry.name,
        entry.algorithm,
        fmt(entry.decisionsPerSec),
        `${fmt(entry.spreadPct)} %`,
        fmt(entry.clientCpuMicrosPerDecision, 1),
        fmt(entry.redisCpuMicrosPerDecision, 1),
        entry.exact === null
          ? '—'
          : `${entry.admitted.join(', ')}${entry.exact ? ' (exact)' : ' (**inexact**)'}`,
      ]),
    ),
    '',
    ...(failures.length > 0 ? ['Failures:', '', ...failures.map((f) => `- ${f}`), ''] : []),
  ].join('\n');
  const stamp = timestamp();
  const json = writeResult(`limits-${stamp}.json`, `${JSON.stringify(report, null, 2)}\n`, outDir);
  const mdPath = writeResult(
    `limits-${stamp}.md`,
    `# Rate limit and quota decisions — ${startedAt}\n\n${md}`,
    outDir,
  );
  console.log(`\n${md}\nresults: ${json}, ${mdPath}`);
  if (!quick && !options['no-docs'] && failures.length === 0) {
    const method = `\`pnpm bench limits\` (\`bench/limits.bench.mjs\`). Every contender runs on the same Redis, through
the same two \`createRedisClient\` connections (ioredis, auto-pipelining; command timeout raised to 5 s), in one process. "store" rows call each
library's decision directly; "Fastify" rows put it behind \`fastify.inject()\` (no socket), which is how
\`@fastify/rate-limit\` is used, next to a Fastify app without a limiter. GCRA (ours) spreads a limit of L per
minute evenly and allows bursts up to L; the others count in a fixed 60 s window (up to 2 L across a window edge).`;
    const doc = updateDocSection(
      '## Rate limit and quota decisions',
      `${method}\n\nFrom \`${json}\`.\n\n${md}`,
    );
    console.log(`updated ${doc}`);
  }
  if (failures.length > 0) {
    console.error(`\n${failures.length} failure(s):\n${failures.map((f) => `  - ${f}`).join('\n')}`);
    process.exit(1);
  }
  process.exit(0);
}

await main();
