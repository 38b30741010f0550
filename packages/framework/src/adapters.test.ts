/** Express and Hono apps use the same framework object through the middleware and marketplace adapters. */
import type { AddressInfo } from 'node:net';
import { marketplaceExpress } from '@mt-paas/marketplace/express';
import { marketplaceHono } from '@mt-paas/marketplace/hono';
import { mtPaasErrorHandler, mtPaasExpress } from '@mt-paas/middleware/express';
import { mtPaasErrorHandler as honoErrors, type MtPaasHonoEnv, mtPaasHono } from '@mt-paas/middleware/hono';
import express from 'express';
import { Hono } from 'hono';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { courses, FIXTURE_MIGRATIONS, seedAdmin } from './__fixtures__/app.js';
import { createServiceFramework, type ServiceFramework } from './index.js';

const CONFIG = `
service:
  id: fw_adapters
marketplace:
  enabled: false
  api_key: market-key-0123456789
logging:
  level: silent
`;

const createBody = (tenantId: string) =>
  JSON.stringify({
    tenant_id: tenantId,
    tenant_name: tenantId,
    admin_email: `admin@${tenantId}.ac.kr`,
    application_id: `app-${tenantId}`,
    application_kind: 'service',
  });
const marketHeaders = { 'x-api-key': 'market-key-0123456789', 'content-type': 'application/json' };

let mt: ServiceFramework;
beforeAll(async () => {
  mt = await createServiceFramework({
    config: CONFIG,
    env: {},
    dataDir: 'memory',
    migrationsFolder: FIXTURE_MIGRATIONS,
    hooks: seedAdmin,
  });
}, 60_000);
afterAll(async () => {
  await mt?.close();
});

describe('Express with mt.pipeline and mt.receiver', () => {
  it('onboards through the marketplace route and serves a tenant route from req.tenant + mt.tenantDb', async () => {
    const app = express();
    app.use(marketplaceExpress(mt.receiver)); // before the body parser: signatures are over raw bytes
    app.use(express.json(), mtPaasExpress({ pipeline: mt.pipeline }));
    app.post('/courses', async (req, res, next) => {
      try {
        const body = req.body as { title: string; code: string };
        const [row] = await mt.tenantDb.run((tx) => tx.insert(courses).values(body).returning());
        res.status(201).json({ title: row?.title, tenant: req.tenant?.tenantId });
      } catch (error) {
        next(error);
      }
    });
    app.get('/courses', async (_req, res, next) => {
      try {
        res.json(await mt.tenantDb.run((tx) => tx.select({ title: courses.title }).from(courses)));
      } catch (error) {
        next(error);
      }
    });
    app.use(mtPaasErrorHandler(mt.pipeline));
    const server = app.listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      const created = await fetch(`${base}/api/tenant/create`, {
        method: 'POST',
        headers: marketHeaders,
        body: createBody('express_u'),
      });
      expect(created.status).toBe(200);
      const post = await fetch(`${base}/courses`, {
        method: 'POST',
        headers: { 'x-tenant-id': 'express_u', 'content-type': 'application/json' },
        body: JSON.stringify({ title: 'Express 101', code: 'EX101' }),
      });
      expect(post.status).toBe(201);
      expect(await post.json()).toEqual({ title: 'Express 101', tenant: 'express_u' });
      expect(
        await (await fetch(`${base}/courses`, { headers: { 'x-tenant-id': 'express_u' } })).json(),
      ).toEqual([{ title: 'Express 101' }]);
      const unknown = await fetch(`${base}/courses`, { headers: { 'x-tenant-id': 'nobody_here' } });
      expect(unknown.status).toBe(404);
      expect(((await unknown.json()) as { error: { code: string } }).error.code).toBe('TENANT_NOT_FOUND');
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});

describe('Hono with mt.pipeline and mt.receiver', () => {
  it('onboards through the marketplace route and serves a tenant route', async () => {
    const app = new Hono<MtPaasHonoEnv>();
    app.use('*', marketplaceHono(mt.receiver));
    app.use('*', mtPaasHono({ pipeline: mt.pipeline }));
    app.onError(honoErrors(mt.pipeline));
    app.get('/courses', async (c) =>
      c.json({
        tenant: c.get('tenant').tenantId,
        courses: await mt.tenantDb.run((tx) => tx.select({ title: courses.title }).from(courses)),
      }),
    );
    const created = await app.request('/api/tenant/create', {
      method: 'POST',
      headers: marketHeaders,
      body: createBody('hono_u'),
    });
    expect(created.status).toBe(200);
    const listed = await app.request('/courses', { headers: { 'x-tenant-id': 'hono_u' } });
    expect(listed.status).toBe(200);
    // A fresh tenant: its own (empty) rows, none of the Express tenant's.
    expect(await listed.json()).toEqual({ tenant: 'hono_u', courses: [] });
  });
});
