// Experiment (not part of `pnpm bench`): isolates what an adapter costs on each framework, without Postgres.
//   node bench/experiments/adapter-cost-run.mjs fastify:bare,fastify:mt,hono:bare,hono:noop,hono:mt 3 3
// args: comma-separated servers (see adapter-cost-server.mjs), seconds per cell, interleaved rounds.
// Env: REQUESTS=array (the bench's fixed request list; default a per-request setupRequest, a slower client),
// RATE=<req/s> (every server at the same throughput: CPU per request depends on it — compare at equal rates).
// Prints median server CPU µs per request (process.cpuUsage) and its split into the main thread and the others
// (/proc/self/task/*/schedstat, Linux). EXECARGV='--cpu-prof --cpu-prof-dir=DIR' profiles every server.

import { fork } from 'node:child_process';
import autocannon from 'autocannon';

const variants = process.argv[2].split(',');
const dur = Number(process.argv[3] ?? 2),
  rounds = Number(process.argv[4] ?? 3);
const servers = [];
for (const v of variants) {
  const child = fork(new URL('./adapter-cost-server.mjs', import.meta.url), [v], {
    execArgv: process.env.EXECARGV ? process.env.EXECARGV.split(' ') : [],
  });
  const port = await new Promise((r) => child.once('message', (m) => r(m.port)));
  servers.push({ v, child, port, res: [] });
}
const ask = (c, m) =>
  new Promise((r) => {
    c.once('message', r);
    c.send(m);
  });
// REQUESTS=array: the bench's way (a fixed list of 100 requests each connection cycles through, built once);
// default: one request template rewritten per request by setupRequest.
const requestList = Array.from({ length: 100 }, (_, index) => ({
  method: 'GET',
  path: `/items/${(index % 50) + 1}`,
  headers: { 'x-tenant-id': `t${String(index).padStart(4, '0')}` },
}));
const run = (s, d) => {
  let i = 0;
  return autocannon({
    url: `http://127.0.0.1:${s.port}`,
    connections: 32,
    duration: d,
    // RATE=<n>: a fixed overall request rate (every server served at the same throughput).
    ...(process.env.RATE ? { overallRate: Number(process.env.RATE) } : {}),
    requests:
      process.env.REQUESTS === 'array'
        ? requestList
        : [
            {
              method: 'GET',
              setupRequest: (r) => {
                i++;
                return {
                  ...r,
                  path: `/items/${i % 50}`,
                  headers: { 'x-tenant-id': `t${String(i % 100).padStart(4, '0')}` },
                };
              },
            },
          ],
  });
};
for (const s of servers) await run(s, 1);
for (let r = 0; r < rounds; r++)
  for (let k = 0; k < servers.length; k++) {
    const s = servers[(k + r) % servers.length];
    await ask(s.child, 'start');
    const res = await run(s, dur);
    const st = await ask(s.child, 'stop');
    const n = res['2xx'] + res.non2xx;
    if (res.non2xx) console.log('NON2XX', s.v);
    s.res.push({
      rps: n / res.duration,
      cpu: st.cpu / n,
      system: st.system / n,
      main: st.main / n,
      others: st.others / n,
    });
  }
const med = (a) => {
  const b = [...a].sort((x, y) => x - y);
  return b[Math.floor(b.length / 2)];
};
const os = await import('node:os');
console.log(
  'load',
  os
    .loadavg()
    .map((x) => x.toFixed(1))
    .join(' '),
);
for (const s of servers) {
  console.log(
    s.v.padEnd(14),
    `rps ${med(s.res.map((x) => x.rps))
      .toFixed(0)
      .padStart(6)}  cpu ${med(s.res.map((x) => x.cpu))
      .toFixed(1)
      .padStart(5)} µs (kernel ${med(s.res.map((x) => x.system))
      .toFixed(1)
      .padStart(5)})  main ${med(s.res.map((x) => x.main))
      .toFixed(1)
      .padStart(5)}  others ${med(s.res.map((x) => x.others))
      .toFixed(1)
      .padStart(5)}   [cpu ${s.res.map((x) => x.cpu.toFixed(1)).join(' ')}]`,
  );
  s.child.send('close');
}
