/** `GET /api/health`, `GET /metrics` and `GET /api/tenant` (the page's name and branding). */
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { Tutor } from '../tutor.js';
import { ErrorBody } from './common.js';
import { BrandingInput, brandingOf } from './page.js';

export async function serviceRoutes(root: FastifyInstance, tutor: Tutor) {
  const app = root.withTypeProvider<ZodTypeProvider>();
  const { mt } = tutor;

  app.get(
    '/api/health',
    {
      config: { mtPaas: { tenant: 'optional', auth: 'none', rateLimit: false, quota: false } },
      schema: {
        tags: ['service'],
        summary: 'Liveness (seed 002 §7.3: also with X-Tenant-ID, then the tenant must be admitted)',
        response: {
          200: z.object({
            status: z.literal('healthy'),
            service: z.string(),
            version: z.string(),
            isolation: z.string(),
            tenant_id: z.string().optional(),
          }),
        },
      },
    },
    async (req) => ({
      status: 'healthy' as const,
      service: mt.config.service.id,
      version: mt.config.service.version,
      isolation: mt.config.isolation.mode,
      ...(req.tenant?.tenantId === undefined ? {} : { tenant_id: req.tenant.tenantId }),
    }),
  );

  app.get(
    '/metrics',
    {
      config: { mtPaas: { tenant: 'host-only', auth: 'none' } },
      schema: { tags: ['service'], summary: 'Prometheus metrics (pipeline and control plane)' },
    },
    async (_req, reply) => reply.type(mt.registry.contentType).send(await mt.registry.metrics()),
  );

  app.get(
    '/api/tenant',
    {
      config: { mtPaas: { auth: 'none' } },
      schema: {
        tags: ['service'],
        summary: "The request's tenant: name, plan, features and branding (shown by the page before login)",
        response: {
          200: z.object({
            id: z.string(),
            name: z.string(),
            plan: z.string(),
            features: z.record(z.string(), z.boolean()),
            branding: z.object({
              primaryColor: z.string(),
              logoUrl: z.string().nullable(),
              welcome: z.string(),
            }),
          }),
          403: ErrorBody,
          404: ErrorBody,
        },
      },
    },
    async (req) => {
      const tenant = req.tenant!.record!;
      return {
        id: tenant.id,
        name: tenant.name,
        plan: tenant.plan,
        features: { ...(req.tenant!.entitlements?.features ?? {}) },
        branding: brandingOf(tenant),
      };
    },
  );

  app.patch(
    '/api/tenant/branding',
    {
      config: { mtPaas: { auth: 'jwt', roles: ['admin'], features: ['custom_branding'] } },
      schema: {
        tags: ['service'],
        summary: "Set the institution's colour, logo and welcome line (admin, feature custom_branding)",
        body: BrandingInput,
        response: {
          200: z.object({ primaryColor: z.string(), logoUrl: z.string().nullable(), welcome: z.string() }),
          403: ErrorBody,
        },
      },
    },
    async (req) => {
      const tenantId = req.tenant!.tenantId!;
      const current = (await mt.catalog.directory.get(tenantId)) ?? req.tenant!.record!;
      const previous = BrandingInput.safeParse(current.metadata.branding ?? {});
      const branding = { ...(previous.success ? previous.data : {}), ...req.body };
      const updated = await mt.catalog.tenants.update(tenantId, {
        metadata: { ...current.metadata, branding },
      });
      // every instance drops its cached copy of the tenant
      await mt.events.publish({ type: 'tenant.changed', tenantId, at: new Date().toISOString() });
      return brandingOf(updated);
    },
  );
}
