// One server of the HTTP bench, run in its own process (child_process.fork) so the parent can read this
// process's CPU time alone. argv[2] is a JSON config: { framework, layer, catalogUrl, appUrl, redisUrl,
// keyPrefix, jwtSecret }. IPC: → ready { port }; start → started { memory }; stop → stopped { cpuMicros,
// memory }; stats → stats { cache, memory }; close → closes and exits 0.

import { currentTenant } from '@mt-paas/context';
import { createCatalog, createTenantDb, tenantTable } from '@mt-paas/db';
import { createRedisClient, createTenantPipeline } from '@mt-paas/middleware';
import { eq } from 'drizzle-orm';
import { integer, text } from 'drizzle-orm/pg-core';
import pg from 'pg';
import pino from 'pino';
import { threadCpu } from '../lib/thread-cpu.mjs';

const config = JSON.parse(process.argv[2]);
const { framework, layer } = config;

/** What each mt-paas layer turns on, on top of resolution (`bare`, `naive` and `defaults` are built apart). */
const MT_LAYERS = {
  resolve: {},
  jwt: { jwt: true },
  ratelimit: { jwt: true, rate: true },
  quota: { jwt: true, rate: true, quota: true },
  db: { jwt: true, rate: true, quota: true, db: true },
  resolvedb: { db: true },
};
const features = MT_LAYERS[layer];

const items = tenantTable('items', { id: integer('id').primaryKey(), name: text('name').notNull() });

const closers = [];
let pipeline;
let catalog;
let tenantDb;
let ownerPool;

// Every cell's server stays up for the whole run (27 of them), one measured at a time: pools give idle
// connections back after 2 s so that the servers together stay far below Postgres's max_connections.
const IDLE_MS = 2000;

if (features !== undefined || layer === 'defaults') {
  const catalogPool = new pg.Pool({
    connectionString: config.catalogUrl,
    max: 5,
    idleTimeoutMillis: IDLE_MS,
  });
  catalog = await createCatalog({ pool: catalogPool });
  closers.push(
    () => catalog.close(),
    () => catalogPool.end(),
  );
  if (layer === 'defaults') {
    // Everything at its default (in-process rate limit and quota, request log, metrics) but the strategy.
    pipeline = createTenantPipeline({
      directory: catalog.directory,
      strategies: [{ type: 'header' }],
      keyPrefix: config.keyPrefix,
      logger: pino({ level: 'info' }, pino.destination({ dest: '/dev/null', sync: false })),
    });
  } else {
    // Named, so the bench can see in CLIENT LIST that this server's last command was the limiter's EVALSHA.
    const redis =
      features.rate || features.quota
        ? createRedisClient({ url: config.redisUrl, redisOptions: { connectionName: config.keyPrefix } })
        : undefined;
    if (redis !== undefined) closers.push(() => redis.quit());
    pipeline = createTenantPipeline({
      directory: catalog.directory,
      strategies: [{ type: 'header' }],
      keyPrefix: config.keyPrefix,
      logRequests: false,
      logger: pino({ level: 'error' }, pino.destination(2)),
      ...(features.jwt ? { jwt: { secret: config.jwtSecret }, defaultAuth: 'jwt' } : {}),
      rateLimit: features.rate ? { redis } : { enabled: false },
      quota: features.quota ? { redis } : { enabled: false },
    });
  }
  closers.unshift(() => pipeline.close());
  if (features?.db) {
    // What createTenantDb builds from a connection string (10 connections, protocol pipelining), with the short idle time.
    const appPool = new pg.Pool({
      connectionString: config.appUrl,
      max: 10,
      idleTimeoutMillis: IDLE_MS,
      pipeline: true,
    });
    tenantDb = await createTenantDb({ mode: 'row', catalog, pool: appPool });
    closers.unshift(
      () => tenantDb.close(),
      () => appPool.end(),
    );
  }
} else if (layer === 'naive') {
  ownerPool = new pg.Pool({ connectionString: config.catalogUrl, max: 10, idleTimeoutMillis: IDLE_MS });
  closers.push(() => ownerPool.end());
}

// ---- what the handler does (the same for every framework) ----

/** The handler's answer for item `id` of the admitted tenant. */
async function answer(id, headerTenant) {
  if (layer === 'bare') return { tenant: headerTenant ?? null, id };
  if (layer === 'naive') return naiveRead(headerTenant, id);
  const tenant = currentTenant();
  if (!features?.db) return { tenant, id };
  const rows = await tenantDb.run((tx) => tx.select().from(items).where(eq(items.id, id)));
  return { tenant, item: rows[0] ?? null };
}

/**
 * The seed's way (002 §4.1.3–4.1.4): take X-Tenant-ID, look the tenant up with a SQL query on every
 * request, then `SET search_path TO <id>, public` at session level on a pooled connection. The id is
 * checked against the catalog first here, so the string-built SET only ever sees a real tenant id —
 * the seed does not even do that. The leak (the setting stays on the pooled connection) is the seed's.
 */
async function naiveResolve(headerTenant) {
  if (headerTenant === undefined || headerTenant === '') return { status: 400, body: { error: 'no tenant' } };
  const { rows } = await ownerPool.query('SELECT id, status, plan FROM mt_paas.tenants WHERE id = $1', [
    headerTenant,
  ]);
  if (rows.length === 0) return { status: 404, body: { error: 'tenant not found' } };
  if (rows[0].status !== 'active') return { status: 403, body: { error: 'tenant not active' } };
  return undefined;
}

async function naiveRead(tenantId, id) {
  const client = await ownerPool.connect();
  try {
    await client.query(`SET search_path TO ${tenantId}, public`);
    const { rows } = await client.query('SELECT id, name FROM items WHERE id = $1', [id]);
    return { tenant: tenantId, item: rows[0] ?? null };
  } finally {
    client.release();
  }
}

// ---- the three frameworks ----

let port;
let closeServer;
const usesMt = pipeline !== undefined;

if (framework === 'fastify') {
  const { default: Fastify } = await import('fastify');
  const app = Fastify({ logger: false });
  if (usesMt) {
    const { mtPaasFastify } = await import('@mt-paas/middleware/fastify');
    await app.register(mtPaasFastify, { pipeline });
  } else if (layer === 'naive') {
    app.addHook('onRequest', async (request, reply) => {
      const refusal = await naiveResolve(request.headers['x-tenant-id']);
      if (refusal !== undefined) return reply.code(refusal.status).send(refusal.body);
    });
  }
  app.get('/items/:id', async (request) => answer(Number(request.params.id), request.headers['x-tenant-id']));
  await app.listen({ port: 0, host: '127.0.0.1' });
  port = app.server.address().port;
  closeServer = () => app.close();
} else if (framework === 'express') {
  const { default: express } = await import('express');
  const app = express();
  if (usesMt) {
    const { mtPaasErrorHandler, mtPaasExpress } = await import('@mt-paas/middleware/express');
    app.use(mtPaasExpress({ pipeline }));
    app.get('/items/:id', (request, response, next) => {
      answer(Number(request.params.id), request.get('x-tenant-id')).then((body) => response.json(body), next);
    });
    app.use(mtPaasErrorHandler(pipeline));
  } else {
    if (layer === 'naive') {
      app.use((request, response, next) => {
        naiveResolve(request.get('x-tenant-id')).then((refusal) => {
          if (refusal === undefined) next();
          else response.status(refusal.status).json(refusal.body);
        }, next);
      });
    }
    app.get('/items/:id', (request, response, next) => {
      answer(Number(request.params.id), request.get('x-tenant-id')).then((body) => response.json(body), next);
    });
  }
  const server = await new Promise((resolve) => {
    const listening = app.listen(0, '127.0.0.1', () => resolve(listening));
  });
  port = server.address().port;
  closeServer = () => new Promise((resolve) => server.close(() => resolve()));
} else if (framework === 'hono') {
  const { Hono } = await import('hono');
  const { serve } = await import('@hono/node-server');
  const app = new Hono();
  if (usesMt) {
    const { mtPaasErrorHandler, mtPaasHono } = await import('@mt-paas/middleware/hono');
    app.use('*', mtPaasHono({ pipeline }));
    app.onError(mtPaasErrorHandler(pipeline));
  } else if (layer === 'naive') {
    app.use('*', async (c, next) => {
      const refusal = await naiveResolve(c.req.header('x-tenant-id'));
      if (refusal !== undefined) return c.json(refusal.body, refusal.status);
      await next();
    });
  }
  app.get('/items/:id', async (c) =>
    c.json(await answer(Number(c.req.param('id')), c.req.header('x-tenant-id'))),
  );
  const server = await new Promise((resolve) => {
    const started = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, () => resolve(started));
  });
  port = server.address().port;
  closeServer = () => new Promise((resolve) => server.close(() => resolve()));
} else {
  throw new Error(`unknown framework "${framework}"`);
}

// ---- measurement over IPC ----

function memory() {
  globalThis.gc?.();
  const { rss, heapUsed, heapTotal, external } = process.memoryUsage();
  return { rss, heapUsed, heapTotal, external };
}

let cpuAtStart;
let threadsAtStart;
process.on('message', async (message) => {
  try {
    if (message.type === 'start') {
      const before = memory();
      cpuAtStart = process.cpuUsage();
      threadsAtStart = threadCpu();
      // The monotonic clock of V8's CPU profile (µs), to cut a --cpu-prof profile to the measured window.
      process.send({ type: 'started', memory: before, atMicros: Number(process.hrtime.bigint() / 1000n) });
    } else if (message.type === 'stop') {
      const used = process.cpuUsage(cpuAtStart);
      const threads = threadCpu();
      const atMicros = Number(process.hrtime.bigint() / 1000n);
      process.send({
        type: 'stopped',
        cpuMicros: used.user + used.system,
        // Threads that exited within the window are missed; none do in a serving process.
        ...(threads === undefined || threadsAtStart === undefined
          ? {}
          : {
              mainThreadCpuMicros: threads.main - threadsAtStart.main,
              otherThreadsCpuMicros: threads.others - threadsAtStart.others,
            }),
        memory: memory(),
        atMicros,
      });
    } else if (message.type === 'stats') {
      process.send({ type: 'stats', cache: pipeline?.directory.stats() ?? null, memory: memory() });
    } else if (message.type === 'close') {
      await closeServer();
      for (const close of closers) await close();
      process.send({ type: 'closed' }, () => process.exit(0));
    }
  } catch (error) {
    process.send({ type: 'error', message: String(error?.stack ?? error) });
  }
});
process.on('disconnect', () => process.exit(1)); // the parent died: do not linger

process.send({ type: 'ready', port });
