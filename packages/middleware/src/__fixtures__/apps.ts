import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import { tryCurrentTenant } from '@mt-paas/context';
import express from 'express';
import Fastify from 'fastify';
import { Hono } from 'hono';
import { answerClientErrorsAsJson, handleClientError } from '../client-errors.js';
import * as forExpress from '../express.js';
import * as forFastify from '../fastify.js';
import * as forHono from '../hono.js';
import type { TenantPipeline } from '../pipeline.js';

/** An app listening on a real port. */
export interface BootedApp {
  url: string;
  close(): Promise<void>;
}

/** Boots one framework's app with the shared routes around a pipeline. */
export type BootApp = (pipeline: TenantPipeline) => Promise<BootedApp>;

/** What a route answers; `protectedRoute` marks the handlers of the routes a policy protects. */
function describeRequest(
  admission:
    | {
        tenantId?: string | undefined;
        principal: { user?: { id: string } | undefined };
        source?: string | undefined;
      }
    | null
    | undefined,
) {
  return {
    contextTenant: tryCurrentTenant()?.tenantId ?? null,
    tenantId: admission?.tenantId ?? null,
    user: admission?.principal.user?.id ?? null,
    source: admission?.source ?? null,
  };
}

export const bootFastify: BootApp = async (pipeline) => {
  const app = Fastify({
    logger: false,
    clientErrorHandler: handleClientError,
    frameworkErrors: forFastify.mtPaasFrameworkErrors,
  });
  await app.register(forFastify.mtPaasFastify, { pipeline });
  app.get(
    '/health',
    { config: { mtPaas: { tenant: 'optional', rateLimit: false, quota: false } } },
    async (request) => describeRequest(request.tenant),
  );
  app.get('/metrics', forFastify.metricsHandler);
  app.get('/admin/tenants', async (request) => ({
    ...describeRequest(request.tenant),
    protectedRoute: true,
  }));
  app.get('/api/whoami', async (request) => {
    await new Promise((resolve) => setTimeout(resolve, 1));
    return describeRequest(request.tenant);
  });
  app.get('/api/courses/:id', async (request) => describeRequest(request.tenant));
  app.post('/api/items', async (request) => ({ ...describeRequest(request.tenant), body: request.body }));
  app.get('/api/quiz', async (request) => describeRequest(request.tenant));
  app.get('/api/quiz2', { preHandler: forFastify.requireFeature('quiz') }, async (request) =>
    describeRequest(request.tenant),
  );
  app.get('/api/reports', async (request) => describeRequest(request.tenant));
  app.get('/api/reports2', { preHandler: forFastify.requirePlan('professional') }, async (request) =>
    describeRequest(request.tenant),
  );
  app.get('/api/staff', async (request) => ({ ...describeRequest(request.tenant), protectedRoute: true }));
  app.get('/api/editor', { preHandler: forFastify.requireRole('editor') }, async (request) =>
    describeRequest(request.tenant),
  );
  app.get('/t/:tenant/whoami', async (request) => describeRequest(request.tenant));
  await app.listen({ port: 0, host: '127.0.0.1' });
  const address = app.server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${address.port}`, close: () => app.close() };
};

export const bootExpress: BootApp = async (pipeline) => {
  const app = express();
  app.use(express.json({ limit: '100kb' }));
  app.use(forExpress.mtPaasExpress({ pipeline }));
  app.get('/health', (request, response) => {
    response.json(describeRequest(request.tenant));
  });
  app.get('/metrics', forExpress.metricsHandler(pipeline));
  app.get('/admin/tenants', (request, response) => {
    response.json({ ...describeRequest(request.tenant), protectedRoute: true });
  });
  app.get('/api/whoami', async (request, response) => {
    await new Promise((resolve) => setTimeout(resolve, 1));
    response.json(describeRequest(request.tenant));
  });
  app.get('/api/courses/:id', (request, response) => {
    response.json(describeRequest(request.tenant));
  });
  app.post('/api/items', (request, response) => {
    response.json({ ...describeRequest(request.tenant), body: request.body });
  });
  for (const path of ['/api/quiz', '/api/reports', '/t/:tenant/whoami']) {
    app.get(path, (request, response) => {
      response.json(describeRequest(request.tenant));
    });
  }
  app.get('/api/staff', (request, response) => {
    response.json({ ...describeRequest(request.tenant), protectedRoute: true });
  });
  app.get('/api/quiz2', forExpress.requireFeature('quiz'), (request, response) => {
    response.json(describeRequest(request.tenant));
  });
  app.get('/api/reports2', forExpress.requirePlan('professional'), (request, response) => {
    response.json(describeRequest(request.tenant));
  });
  app.get('/api/editor', forExpress.requireRole('editor'), (request, response) => {
    response.json(describeRequest(request.tenant));
  });
  app.use(forExpress.mtPaasNotFound(pipeline));
  app.use(forExpress.mtPaasErrorHandler(pipeline));
  const server = await new Promise<import('node:http').Server>((resolve) => {
    const listening = app.listen(0, '127.0.0.1', () => resolve(listening));
  });
  answerClientErrorsAsJson(server as import('node:http').Server);
  const address = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${address.port}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
};

export const bootHono: BootApp = async (pipeline) => {
  const app = new Hono<forHono.MtPaasHonoEnv>();
  app.use('*', forHono.mtPaasHono({ pipeline }));
  app.onError(forHono.mtPaasErrorHandler(pipeline));
  app.notFound(forHono.mtPaasNotFound(pipeline));
  app.get('/health', (c) => c.json(describeRequest(c.get('tenant'))));
  app.get('/metrics', forHono.metricsHandler(pipeline));
  app.get('/admin/tenants', (c) => c.json({ ...describeRequest(c.get('tenant')), protectedRoute: true }));
  app.get('/api/whoami', async (c) => {
    await new Promise((resolve) => setTimeout(resolve, 1));
    return c.json(describeRequest(c.get('tenant')));
  });
  app.get('/api/courses/:id', (c) => c.json(describeRequest(c.get('tenant'))));
  app.post('/api/items', async (c) =>
    c.json({ ...describeRequest(c.get('tenant')), body: await c.req.json() }),
  );
  for (const path of ['/api/quiz', '/api/reports', '/t/:tenant/whoami']) {
    app.get(path, (c) => c.json(describeRequest(c.get('tenant'))));
  }
  app.get('/api/staff', (c) => c.json({ ...describeRequest(c.get('tenant')), protectedRoute: true }));
  app.get('/api/quiz2', forHono.requireFeature('quiz'), (c) => c.json(describeRequest(c.get('tenant'))));
  app.get('/api/reports2', forHono.requirePlan('professional'), (c) =>
    c.json(describeRequest(c.get('tenant'))),
  );
  app.get('/api/editor', forHono.requireRole('editor'), (c) => c.json(describeRequest(c.get('tenant'))));
  const server = await new Promise<ReturnType<typeof serve>>((resolve) => {
    const started = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }, () => resolve(started));
  });
  answerClientErrorsAsJson(server as import('node:http').Server);
  const address = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${address.port}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
};

export const ADAPTERS: ReadonlyArray<readonly [string, BootApp]> = [
  ['fastify', bootFastify],
  ['express', bootExpress],
  ['hono', bootHono],
];
