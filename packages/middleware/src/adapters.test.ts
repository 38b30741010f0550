import type { AddressInfo } from 'node:net';
import { send } from '@mt-paas/test-env/http-client';
import express from 'express';
import Fastify from 'fastify';
import { Hono } from 'hono';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { entitlements, makeTenant, memoryDirectory } from './__fixtures__/tenants.js';
import * as forExpress from './express.js';
import * as forFastify from './fastify.js';
import { mtPaasFastify } from './fastify.js';
import * as forHono from './hono.js';
import { type MtPaasHonoEnv, mtPaasHono, requireFeature, requirePlan } from './hono.js';
import { createTenantPipeline } from './pipeline.js';

const directory = () =>
  memoryDirectory([
    makeTenant('univ_8', { entitlements: entitlements({ plan: 'starter', features: { quiz: false } }) }),
  ]);

describe('adapters without extra wiring', () => {
  it('Hono gates answer with the JSON error shape even without app.onError', async () => {
    const app = new Hono<MtPaasHonoEnv>();
    app.use('*', mtPaasHono({ directory: directory(), logger: pino({ level: 'silent' }), metrics: false }));
    app.get('/quiz', requireFeature('quiz'), (c) => c.json({ ok: true }));
    app.get('/reports', requirePlan('professional'), (c) => c.json({ ok: true }));
    for (const path of ['/quiz', '/reports']) {
      const response = await app.request(path, { headers: { 'x-tenant-id': 'univ_8' } });
      expect(response.status).toBe(403);
      expect(await response.json()).toMatchObject({ error: { code: 'FEATURE_NOT_IN_PLAN' } });
    }
    const missing = await app.request('/quiz');
    expect(missing.status).toBe(400);
    expect(await missing.json()).toMatchObject({ error: { code: 'TENANT_NOT_IDENTIFIED' } });
  });

  it('the Fastify plugin builds its own pipeline from options and closes it with the app', async () => {
    const app = Fastify();
    await app.register(mtPaasFastify, { directory: directory(), logger: pino({ level: 'silent' }) });
    app.get('/whoami', async (request) => ({ tenantId: request.tenant?.tenantId }));
    const ok = await app.inject({ method: 'GET', url: '/whoami', headers: { 'x-tenant-id': 'univ_8' } });
    expect(ok.json()).toEqual({ tenantId: 'univ_8' });
    const bad = await app.inject({ method: 'GET', url: '/whoami', headers: { 'x-tenant-id': 'UNIV_8' } });
    expect(bad.statusCode).toBe(400);
    expect(bad.json()).toMatchObject({ error: { code: 'INVALID_TENANT_ID' } });
    expect(app.mtPaas.metrics).toBeDefined();
    await app.close();
  });

  it('Fastify: rules match route templates, a catch-all `*` route included; notFoundHandler: false keeps the app its own', async () => {
    const app = Fastify();
    await app.register(mtPaasFastify, {
      directory: directory(),
      logger: pino({ level: 'silent' }),
      metrics: false,
      routes: [
        { path: '/courses/:id', policy: { auth: 'jwt' } },
        { path: '/*', policy: { tenant: 'optional' } },
      ],
      notFoundHandler: false,
    });
    app.get('/courses/:id', async () => ({ course: true }));
    app.get('*', async () => ({ spa: true }));
    app.setNotFoundHandler(async (_request, reply) => reply.code(404).send({ own: true }));
    const course = await app.inject({ url: '/COURSES/%34%32', headers: { 'x-tenant-id': 'univ_8' } });
    // find-my-way is case-sensitive: this is the catch-all, not the course route.
    expect(course.json()).toEqual({ spa: true });
    const protectedCourse = await app.inject({
      url: '/courses/%34%32',
      headers: { 'x-tenant-id': 'univ_8' },
    });
    expect(protectedCourse.statusCode).toBe(401);
    const spa = await app.inject({ url: '/some/page' });
    expect(spa.json()).toEqual({ spa: true });
    const own = await app.inject({ method: 'DELETE', url: '/x', headers: { 'x-tenant-id': 'univ_8' } });
    expect(own.json()).toEqual({ own: true });
    await app.close();
  });

  it('a gate used without the middleware is a CONFIG_INVALID saying what to mount, in every adapter', async () => {
    const fastify = Fastify();
    fastify.decorateRequest('tenant', null);
    fastify.decorate(
      'mtPaas',
      createTenantPipeline({ directory: directory(), logger: pino({ level: 'silent' }), metrics: false }),
    );
    fastify.get('/quiz', { preHandler: forFastify.requireFeature('quiz') }, async () => ({ ok: true }));
    const fromFastify = await fastify.inject({ method: 'GET', url: '/quiz' });
    expect(fromFastify.statusCode).toBe(500);
    expect(fromFastify.json().error).toMatchObject({
      code: 'CONFIG_INVALID',
      message: expect.stringMatching(/register mtPaasFastify/),
    });
    await fastify.close();

    const hono = new Hono<MtPaasHonoEnv>();
    hono.get('/reports', forHono.requirePlan('professional'), (c) => c.json({ ok: true }));
    const fromHono = await hono.request('/reports');
    expect(fromHono.status).toBe(500);
    expect(((await fromHono.json()) as { error: unknown }).error).toMatchObject({
      code: 'CONFIG_INVALID',
      message: expect.stringMatching(/mount mtPaasHono\(\)/),
    });

    const app = express();
    app.get(
      '/staff',
      forExpress.requireRole('admin'),
      (_request, response) => void response.json({ ok: true }),
    );
    const server = app.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    try {
      const fromExpress = await send(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, {
        path: '/staff',
      });
      expect(fromExpress.status).toBe(500);
      expect(fromExpress.json.error).toMatchObject({
        code: 'CONFIG_INVALID',
        message: expect.stringMatching(/mount mtPaasExpress\(\)/),
      });
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('a /metrics handler of a pipeline without metrics answers 404 and says how to turn them on', async () => {
    const pipeline = createTenantPipeline({
      directory: directory(),
      logger: pino({ level: 'silent' }),
      metrics: false,
    });
    const expected = {
      code: 'INVALID_REQUEST',
      message: expect.stringMatching(/metrics: false.*remove that option/),
    };
    const hono = new Hono();
    hono.get('/metrics', forHono.metricsHandler(pipeline));
    const fromHono = await hono.request('/metrics');
    expect({ status: fromHono.status, error: ((await fromHono.json()) as { error: unknown }).error }).toEqual(
      {
        status: 404,
        error: expected,
      },
    );

    const fastify = Fastify();
    await fastify.register(mtPaasFastify, { pipeline });
    fastify.get(
      '/metrics',
      { config: { mtPaas: { tenant: 'host-only', auth: 'none' } } },
      forFastify.metricsHandler,
    );
    const fromFastify = await fastify.inject({ method: 'GET', url: '/metrics' });
    expect({ status: fromFastify.statusCode, error: fromFastify.json().error }).toEqual({
      status: 404,
      error: expected,
    });
    await fastify.close();

    const app = express();
    app.get('/metrics', forExpress.metricsHandler(pipeline));
    const server = app.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    try {
      const fromExpress = await send(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, {
        path: '/metrics',
      });
      expect({ status: fromExpress.status, error: fromExpress.json.error }).toEqual({
        status: 404,
        error: expected,
      });
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('gate refusals are rendered by the pipeline in every adapter: request id, content type, counted in metrics', async () => {
    const build = () => createTenantPipeline({ directory: directory(), logger: pino({ level: 'silent' }) });
    const headers = { 'x-tenant-id': 'univ_8', 'x-request-id': 'req-gate-1' };
    const answers: Array<{
      adapter: string;
      status: number;
      requestId: unknown;
      type: unknown;
      code: unknown;
    }> = [];
    const counted: string[] = [];

    const hono = new Hono<MtPaasHonoEnv>();
    const honoPipeline = build();
    hono.use('*', mtPaasHono({ pipeline: honoPipeline }));
    hono.get('/quiz', requireFeature('quiz'), (c) => c.json({ ok: true }));
    const fromHono = await hono.request('/quiz', { headers });
    answers.push({
      adapter: 'hono',
      status: fromHono.status,
      requestId: fromHono.headers.get('x-request-id'),
      type: fromHono.headers.get('content-type'),
      code: ((await fromHono.json()) as { error: { code: string } }).error.code,
    });
    counted.push((await honoPipeline.metrics!.render()).body);

    const fastify = Fastify();
    const fastifyPipeline = build();
    await fastify.register(mtPaasFastify, { pipeline: fastifyPipeline });
    fastify.get('/quiz', { preHandler: forFastify.requireFeature('quiz') }, async () => ({ ok: true }));
    const fromFastify = await fastify.inject({ method: 'GET', url: '/quiz', headers });
    answers.push({
      adapter: 'fastify',
      status: fromFastify.statusCode,
      requestId: fromFastify.headers['x-request-id'],
      type: fromFastify.headers['content-type'],
      code: fromFastify.json().error.code,
    });
    counted.push((await fastifyPipeline.metrics!.render()).body);
    await fastify.close();

    const app = express();
    const expressPipeline = build();
    app.use(forExpress.mtPaasExpress({ pipeline: expressPipeline }));
    app.get('/quiz', forExpress.requireFeature('quiz'), (_request, response) => {
      response.json({ ok: true });
    });
    const server = app.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    try {
      const fromExpress = await send(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, {
        path: '/quiz',
        headers,
      });
      answers.push({
        adapter: 'express',
        status: fromExpress.status,
        requestId: fromExpress.headers['x-request-id'],
        type: fromExpress.headers['content-type'],
        code: fromExpress.json.error.code,
      });
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
    counted.push((await expressPipeline.metrics!.render()).body);

    for (const adapter of ['hono', 'fastify', 'express']) {
      expect(answers.find((answer) => answer.adapter === adapter)).toEqual({
        adapter,
        status: 403,
        requestId: 'req-gate-1',
        type: 'application/json; charset=utf-8',
        code: 'FEATURE_NOT_IN_PLAN',
      });
    }
    for (const body of counted) expect(body).toMatch(/mtpaas_refusals_total\{code="FEATURE_NOT_IN_PLAN"\} 1/);
    await Promise.all([honoPipeline.close(), fastifyPipeline.close(), expressPipeline.close()]);
  });
});
