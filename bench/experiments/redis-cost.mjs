// Experiment (not part of `pnpm bench`): client CPU per operation of the Redis limiter path against raw ioredis
// round trips (PING, GET, the limits script by EVALSHA, the same through defineCommand), 32 concurrent callers.
//   node bench/experiments/redis-cost.mjs        (MT_PAAS_BENCH_REDIS_URL is not read: redis://127.0.0.1:6379)

import { randomBytes } from 'node:crypto';
import { createRedisClient } from '@mt-paas/middleware';
import { memoryPipeline, memoryTenants, threadCpu } from './fixture.mjs';

const prefix = `mtpmicro${randomBytes(3).toString('hex')}`;
const redis = createRedisClient({ url: 'redis://127.0.0.1:6379' });
await new Promise((r) => redis.once('ready', r));
const tenants = memoryTenants();
const mk = (rate, quota) =>
  memoryPipeline({
    keyPrefix: prefix,
    rateLimit: rate ? { redis } : { enabled: false },
    quota: quota ? { redis } : { enabled: false },
  });
const pipes = { none: mk(false, false), rate: mk(true, false), quota: mk(true, true) };
for (const p of Object.values(pipes)) await p.start();
const reqs = [...tenants.keys()].map((id) => ({
  method: 'GET',
  path: '/items/1',
  url: '/items/1',
  headers: { 'x-tenant-id': id },
  rawHeaders: ['x-tenant-id', id],
  query: {},
  ip: '127.0.0.1',
  routePath: '/items/:id',
}));
async function bench(name, op, N = 60000, conc = 32) {
  let i = 0;
  const worker = async () => {
    while (i < N) {
      const k = i++;
      await op(k);
    }
  };
  const c0 = process.cpuUsage();
  const th0 = threadCpu();
  const t0 = performance.now();
  await Promise.all(Array.from({ length: conc }, worker));
  const c = process.cpuUsage(c0);
  const th = threadCpu();
  const ms = performance.now() - t0;
  console.log(
    `${name.padEnd(28)} ${((c.user + c.system) / N).toFixed(2)} µs CPU/op (user ${(c.user / N).toFixed(2)}, sys ${(c.system / N).toFixed(2)}; main thread ${((th.main - th0.main) / N).toFixed(2)}, other threads ${((th.others - th0.others) / N).toFixed(2)}), ${((N / ms) * 1000).toFixed(0)} op/s`,
  );
}
const admit = (p) => async (k) => {
  let o = p.admitOrRefuse(reqs[k % 100]);
  if (o instanceof Promise) o = await o;
  if (!o.admitted) throw new Error(JSON.stringify(o.response.body));
};
const only = process.argv[2];
await pipes.quota.admitOrRefuse(reqs[0]);
const sha =
  redis.scriptsSet?.mtpaasLimits?.sha ??
  (await import('node:crypto'))
    .createHash('sha1')
    .update((await import('@mt-paas/middleware')).LIMITS_LUA ?? '')
    .digest('hex');
console.log('sha', sha);
for (let r = 0; r < (only ? 1 : 2); r++) {
  if (only) {
    await bench(only, admit(pipes[only]), 50000);
    continue;
  }
  await bench('pipeline, no limits', admit(pipes.none));
  await bench('redis PING', () => redis.ping());
  await bench('redis GET', (k) => redis.get(`${prefix}:x${k % 100}`));
  // The limits script's arguments as the limiter sends them: rate key, quota key, rpm, period, cost, amount,
  // quota limit (-1: none), block, TTL.
  const limitsArgs = (k) => [
    `${prefix}:{t${k % 100}}:r`,
    `${prefix}:{t${k % 100}}:q`,
    1e9,
    60000,
    1,
    1,
    -1,
    '0',
    3600,
  ];
  await bench('raw EVALSHA (limits script)', (k) => redis.evalsha(sha, 2, ...limitsArgs(k)));
  await bench('ioredis defineCommand script', (k) => redis.mtpaasLimits(...limitsArgs(k)));
  await bench('pipeline + rate (EVALSHA)', admit(pipes.rate));
  await bench('pipeline + rate + quota', admit(pipes.quota));
}
for (const p of Object.values(pipes)) await p.close();
let cursor = '0';
do {
  const [c, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
  cursor = c;
  if (keys.length) await redis.del(...keys);
} while (cursor !== '0');
redis.disconnect();
