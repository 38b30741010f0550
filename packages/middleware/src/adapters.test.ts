import Fastify from 'fastify';
import { Hono } from 'hono';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { entitlements, makeTenant, memoryDirectory } from './__fixtures__/tenants.js';
import { mtPaasFastify } from './fastify.js';
import { type MtPaasHonoEnv, mtPaasHono, requireFeature, requirePlan } from './hono.js';

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
});
