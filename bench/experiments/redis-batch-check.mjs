// Experiment (not part of `pnpm bench`): Redis reads and writes per HTTP request (Redis INFO total_reads_processed)
// with the limiter on a client with and without ioredis auto-pipelining. Used on commit 39d1895 to check that the
// per-turn batch of the limiter calls (reverted after) shared one write among the requests of a loop turn.
// Redis is shared: counts include other clients. RATE=<req/s> (default 6000).

import { createRedisClient } from '@mt-paas/middleware';
import { mtPaasFastify } from '@mt-paas/middleware/fastify';
import autocannon from 'autocannon';
import Fastify from 'fastify';
import { Redis } from 'ioredis';
import { memoryPipeline } from './fixture.mjs';

const admin = new Redis('redis://127.0.0.1:6379');
const stat = async () =>
  Object.fromEntries(
    (await admin.info('stats'))
      .split('\r\n')
      .filter((l) => l.includes(':'))
      .map((l) => l.split(':')),
  );
for (const auto of [false, true, false, true]) {
  const redis = createRedisClient({
    url: 'redis://127.0.0.1:6379',
    redisOptions: { enableAutoPipelining: auto, keyPrefix: 'perf2chk:' },
  });
  const pipeline = memoryPipeline({ rateLimit: { redis }, quota: { redis } });
  const app = Fastify();
  await app.register(mtPaasFastify, { pipeline });
  app.get('/items/:id', async (r) => ({ id: r.params.id }));
  await app.listen({ port: 0, host: '127.0.0.1' });
  const url = `http://127.0.0.1:${app.server.address().port}`;
  const requests = Array.from({ length: 100 }, (_, i) => ({
    method: 'GET',
    path: `/items/${i}`,
    headers: { 'x-tenant-id': `t${String(i).padStart(4, '0')}` },
  }));
  await autocannon({
    url,
    connections: 32,
    duration: 1,
    requests,
    overallRate: Number(process.env.RATE ?? 6000),
  });
  const s0 = await stat();
  const c0 = process.cpuUsage();
  const res = await autocannon({
    url,
    connections: 32,
    duration: 3,
    requests,
    overallRate: Number(process.env.RATE ?? 6000),
  });
  const c = process.cpuUsage(c0);
  const s1 = await stat();
  const n = res['2xx'] + res.non2xx;
  const d = (k) => (Number(s1[k]) - Number(s0[k])) / n;
  console.log(
    `autoPipelining ${auto}: ${n} req, non2xx ${res.non2xx}, redis reads/req ${d('total_reads_processed').toFixed(3)} writes/req ${d('total_writes_processed').toFixed(3)} cmds/req ${d('total_commands_processed').toFixed(2)} process CPU µs/req (server+client) ${((c.user + c.system) / n).toFixed(1)}`,
  );
  await app.close();
  await redis.quit();
}
await admin.quit();
