/** `GET /api/users` — the tenant's users (seed 002 §7.1.3), for its administrators or the service's API key. */
import { asc } from 'drizzle-orm';
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { users } from '../schema.js';
import { publicUser } from '../users.js';
import { Session } from './auth.js';
import { ErrorBody } from './common.js';

export async function userRoutes(root: FastifyInstance) {
  const app = root.withTypeProvider<ZodTypeProvider>();
  app.get(
    '/api/users',
    {
      config: { mtPaas: { auth: 'jwt-or-api-key', roles: ['admin', 'marketplace', 'superadmin'] } },
      schema: {
        tags: ['users'],
        summary: "The tenant's users (administrators, or the X-API-Key of the marketplace / superadmin)",
        response: {
          200: z.object({ tenant_id: z.string(), count: z.number(), users: z.array(Session.shape.user) }),
          401: ErrorBody,
          403: ErrorBody,
        },
      },
    },
    async (req) => {
      const rows = await req.tenantDb((tx) => tx.select().from(users).orderBy(asc(users.createdAt)));
      return { tenant_id: req.tenant!.tenantId!, count: rows.length, users: rows.map(publicUser) };
    },
  );
}
