// Experiment (not part of `pnpm bench`): CPU per pipeline.admitOrRefuse() + finish() in process, no HTTP,
// 100 cached tenants, metrics on.   node --expose-gc bench/experiments/pipeline-cost.mjs [jwt]
import { createHmac } from 'node:crypto';
import { memoryPipeline, memoryTenants } from './fixture.mjs';

const withJwt = process.argv.includes('jwt');
const secret = 'x'.repeat(64);
const tenants = memoryTenants();
const pipeline = memoryPipeline(withJwt ? { jwt: { secret }, defaultAuth: 'jwt' } : {});
await pipeline.start();
const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
const reqs = [...tenants.keys()].map((id) => {
  const headers = { host: 'x', 'x-tenant-id': id };
  if (withJwt) {
    const h = b64({ alg: 'HS256', typ: 'JWT' });
    const p = b64({ sub: 'u1', tenant_id: id, exp: Math.floor(Date.now() / 1000) + 3600 });
    headers.authorization = `Bearer ${h}.${p}.${createHmac('sha256', secret).update(`${h}.${p}`).digest('base64url')}`;
  }
  const rawHeaders = Object.entries(headers).flat();
  return {
    method: 'GET',
    path: '/items/1',
    url: '/items/1',
    headers,
    rawHeaders,
    query: {},
    ip: '127.0.0.1',
    routeTemplate: '/items/:id',
    routePath: '/items/:id',
  };
});
const finishOutcome = (a) => pipeline.finish(a, { status: 200, route: '/items/:id', startedAt: a.startedAt });
async function one(i) {
  let o = pipeline.admitOrRefuse(reqs[i % 100], undefined);
  if (o instanceof Promise) o = await o;
  if (!o.admitted) throw new Error(JSON.stringify(o.response));
  finishOutcome(o.admission);
}
for (let i = 0; i < 20000; i++) await one(i);
const N = 200000;
for (let r = 0; r < 3; r++) {
  global.gc?.();
  const t0 = process.hrtime.bigint();
  const c0 = process.cpuUsage();
  let sync = 0;
  for (let i = 0; i < N; i++) {
    const o = pipeline.admitOrRefuse(reqs[i % 100], undefined);
    if (o instanceof Promise) await o;
    else {
      sync++;
      finishOutcome(o.admission);
    }
  }
  const ns = Number(process.hrtime.bigint() - t0) / N;
  const c = process.cpuUsage(c0);
  console.log(
    `${withJwt ? 'jwt' : 'resolve'}: ${ns.toFixed(0)} ns/op wall, ${(((c.user + c.system) * 1000) / N).toFixed(0)} ns/op cpu, sync ${sync}/${N}`,
  );
}
await pipeline.close();
