// Experiment (not part of `pnpm bench`): one server of adapter-cost-run.mjs, run in its own process.
// argv[2] is <framework>:<variant>, framework fastify | express | hono, variant:
//   bare     — the framework alone; the handler answers the X-Tenant-ID header
//   mt       — the mt-paas adapter over an in-memory directory (metrics on, limits and request log off)
//   mtheavy  — (Fastify) mt, with @mt-paas/db, drizzle, pg and ioredis loaded and unused
//   noop     — Express / Hono: a middleware that only runs the rest in AsyncLocalStorage.run
//              (Express: plus a `finish` listener); Fastify: `hooks3als` (onRequest, preHandler with ALS, onResponse)
//   noophdr  — Hono: noop plus one response header through c.header()
//   hooks3   — Fastify: three empty hooks
//   alsidle  — Fastify: bare, after one `AsyncLocalStorage.run` at start-up (Node 20: the promise hooks are
//              installed from then on, for every promise of the process); nothing per request
//   als      — Fastify: one `onRequest` hook, `als.run(tenant, done)` per request, nothing else
//   alsenter — Fastify: one `onRequest` hook, `als.enterWith(tenant); done()` per request, nothing else
//   hdr, pipereq, pipefix, pipe, pipefin — Fastify: hooks3als plus one part of the adapter at a time (below)
// IPC: start → started; stop → { cpu, main, others } (µs, server process); close.
import { AsyncLocalStorage } from 'node:async_hooks';
import { currentTenant } from '@mt-paas/context';
import { memoryPipeline, threadCpu } from './fixture.mjs';

const [framework, variant] = process.argv[2].split(':');
const als = new AsyncLocalStorage();
const usesMt = variant === 'mt' || variant === 'mtheavy';
// Bisecting the Fastify adapter: hooks3als plus one part of what the adapter does.
//   hdr     — + the X-Request-ID header through reply.header() in onRequest
//   pipe    — + pipeline.admitOrRefuse() in onRequest and runWithTenant in preHandler (no header, no finish)
//   pipefin — pipe + pipeline.finish() in onResponse
//   pipereq — hooks3als + the PipelineRequest built from Fastify's request, no pipeline call
//   pipefix — hooks3als + pipeline.admitOrRefuse() on one prebuilt PipelineRequest per tenant
const bisect = ['hdr', 'pipe', 'pipefin', 'pipereq', 'pipefix'].includes(variant);
const usesPipeline = usesMt || (bisect && variant !== 'hdr');
const pipeline = usesPipeline ? memoryPipeline() : undefined;
if (pipeline !== undefined) await pipeline.start();
/** The same answer in every variant: the tenant id and the item id. */
const answer = (headerTenant, id) => ({
  tenant: usesPipeline && variant !== 'pipereq' ? currentTenant() : (als.getStore() ?? headerTenant ?? null),
  id,
});

let server;
if (framework === 'fastify') {
  const { default: Fastify } = await import('fastify');
  const app = Fastify({ logger: false });
  if (variant === 'mtheavy') {
    globalThis.keep = await Promise.all(
      ['@mt-paas/db', 'drizzle-orm', 'pg', 'ioredis'].map((name) => import(name)),
    );
  }
  if (usesMt) {
    const { mtPaasFastify } = await import('@mt-paas/middleware/fastify');
    await app.register(mtPaasFastify, { pipeline });
  } else if (variant === 'alsidle') {
    als.run('start-up', () => {});
  } else if (variant === 'als') {
    app.addHook('onRequest', (request, _reply, done) => als.run(request.headers['x-tenant-id'], done));
  } else if (variant === 'alsenter') {
    app.addHook('onRequest', (request, _reply, done) => {
      als.enterWith(request.headers['x-tenant-id']);
      done();
    });
  } else if (bisect) {
    const { runWithTenant } = await import('@mt-paas/context');
    let n = 0;
    const prebuilt = new Map();
    app.decorateRequest('tenant', null);
    app.decorateRequest('built', null);
    app.addHook('onRequest', (request, reply, done) => {
      if (variant === 'hdr') {
        n += 1;
        reply.header('x-request-id', `0af8de9-f683-4221-b1e6-e4e95b7a41b6-${n.toString(36)}`);
        return done();
      }
      if (variant === 'pipefix') {
        const tenant = request.headers['x-tenant-id'];
        let fixed = prebuilt.get(tenant);
        if (fixed === undefined) {
          fixed = {
            method: 'GET',
            path: '/items/1',
            url: '/items/1',
            headers: { 'x-tenant-id': tenant, host: 'localhost' },
            rawHeaders: ['x-tenant-id', tenant, 'host', 'localhost'],
            query: {},
            ip: '127.0.0.1',
            routeTemplate: '/items/:id',
            routePath: '/items/:id',
          };
          prebuilt.set(tenant, fixed);
        }
        request.tenant = pipeline.admitOrRefuse(fixed, undefined).admission;
        return done();
      }
      const route = request.routeOptions;
      const url = request.url;
      const q = url.indexOf('?');
      const built = {
        method: request.method,
        path: q === -1 ? url : url.slice(0, q),
        url,
        headers: request.headers,
        rawHeaders: request.raw.rawHeaders,
        query: request.query,
        ip: request.ip,
        routeTemplate: route.url,
        routePath: route.url,
      };
      if (variant === 'pipereq') {
        request.built = built;
        return done();
      }
      const outcome = pipeline.admitOrRefuse(built, undefined);
      request.tenant = outcome.admission;
      done();
    });
    app.addHook('preHandler', (request, _reply, done) =>
      request.tenant === null
        ? als.run(request.headers['x-tenant-id'], done)
        : runWithTenant(request.tenant.context, done),
    );
    app.addHook('onResponse', (request, reply, done) => {
      if (variant === 'pipefin') {
        pipeline.finish(request.tenant, {
          status: reply.statusCode,
          route: '/items/:id',
          startedAt: request.tenant.startedAt,
        });
      }
      done();
    });
  } else if (variant === 'hooks3' || variant === 'hooks3als') {
    app.addHook('onRequest', (_request, _reply, done) => done());
    app.addHook('preHandler', (request, _reply, done) =>
      variant === 'hooks3als' ? als.run(request.headers['x-tenant-id'], done) : done(),
    );
    app.addHook('onResponse', (_request, _reply, done) => done());
  }
  app.get('/items/:id', async (request) => answer(request.headers['x-tenant-id'], Number(request.params.id)));
  await app.listen({ port: 0, host: '127.0.0.1' });
  server = app.server;
} else if (framework === 'express') {
  const { default: express } = await import('express');
  const app = express();
  if (usesMt) {
    const { mtPaasExpress } = await import('@mt-paas/middleware/express');
    app.use(mtPaasExpress({ pipeline }));
  } else if (variant === 'noop') {
    app.use((request, response, next) => {
      response.on('finish', () => {});
      als.run(request.headers['x-tenant-id'], next);
    });
  }
  app.get('/items/:id', (request, response) => {
    response.json(answer(request.get('x-tenant-id'), Number(request.params.id)));
  });
  server = await new Promise((resolve) => {
    const listening = app.listen(0, '127.0.0.1', () => resolve(listening));
  });
} else {
  const { Hono } = await import('hono');
  const { serve } = await import('@hono/node-server');
  const app = new Hono();
  if (usesMt) {
    const { mtPaasHono } = await import('@mt-paas/middleware/hono');
    app.use('*', mtPaasHono({ pipeline }));
  } else if (variant === 'noop' || variant === 'noophdr') {
    app.use('*', async (c, next) => {
      if (variant === 'noophdr') c.header('x-request-id', 'abc-123');
      await als.run(c.req.header('x-tenant-id'), next);
    });
  }
  app.get('/items/:id', (c) => c.json(answer(c.req.header('x-tenant-id'), Number(c.req.param('id')))));
  server = await new Promise((resolve) => {
    const started = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, () => resolve(started));
  });
}

let cpuAtStart;
let threadsAtStart;
process.on('message', (message) => {
  if (message === 'start') {
    cpuAtStart = process.cpuUsage();
    threadsAtStart = threadCpu();
    process.send('started');
  } else if (message === 'stop') {
    const cpu = process.cpuUsage(cpuAtStart);
    const threads = threadCpu();
    process.send({
      cpu: cpu.user + cpu.system,
      system: cpu.system,
      main: threads.main - threadsAtStart.main,
      others: threads.others - threadsAtStart.others,
    });
  } else if (message === 'close') process.exit(0);
});
process.send({ port: server.address().port });
