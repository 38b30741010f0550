/**
 * The operator's routes (seed 002 §8.1): tenants, usage, history, and one-time password links for a
 * tenant's users. `X-API-Key` must equal `custom.tutor.superadmin_api_key` (`SUPERADMIN_API_KEY`); without
 * a configured key the routes refuse everyone.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { MtPaasError, parseTenantId } from '@mt-paas/context';
import { and, count, desc, eq, max, sum } from 'drizzle-orm';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { newOneTimeToken } from '../passwords.js';
import { chatMessages, passwordTokens, users } from '../schema.js';
import type { Tutor } from '../tutor.js';
import { findUserByEmail } from '../users.js';
import { ErrorBody } from './common.js';

const RESET_TOKEN_HOURS = 24;

/** `?tenant_id=`, checked against the tenant id grammar (`INVALID_TENANT_ID`). */
function optionalTenant(value: string | undefined) {
  return value === undefined ? undefined : parseTenantId(value);
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}

export async function superadminRoutes(root: FastifyInstance, tutor: Tutor) {
  const app = root.withTypeProvider<ZodTypeProvider>();
  const { mt } = tutor;
  const configured = tutor.settings.superadmin_api_key;
  const expected = configured ? digest(configured) : undefined;

  async function checkKey(req: FastifyRequest) {
    if (expected === undefined) {
      throw new MtPaasError(
        'FORBIDDEN',
        'The superadmin API is off: set SUPERADMIN_API_KEY (custom.tutor.superadmin_api_key) to use it.',
      );
    }
    const given = req.headers['x-api-key'];
    if (typeof given !== 'string' || !timingSafeEqual(digest(given), expected)) {
      throw new MtPaasError('UNAUTHENTICATED', 'Send the superadmin key as X-API-Key.');
    }
  }

  const policy = {
    config: { mtPaas: { tenant: 'host-only' as const, auth: 'none' as const } },
    preHandler: checkKey,
  };
  const TenantIdQuery = z.object({ tenant_id: z.string().optional() });

  app.get(
    '/api/superadmin/tenants',
    {
      ...policy,
      schema: {
        tags: ['superadmin'],
        summary: 'Every tenant with its status and plan',
        response: {
          200: z.object({
            tenants: z.array(
              z.object({
                id: z.string(),
                name: z.string(),
                status: z.string(),
                plan: z.string(),
                features: z.record(z.string(), z.boolean()),
                createdAt: z.string(),
              }),
            ),
          }),
          401: ErrorBody,
          403: ErrorBody,
        },
      },
    },
    async () => {
      const tenants = [];
      let cursor: string | undefined;
      do {
        const page = await mt.catalog.directory.list({
          limit: 500,
          ...(cursor === undefined ? {} : { cursor }),
        });
        tenants.push(...page.tenants);
        cursor = page.nextCursor;
      } while (cursor !== undefined);
      return {
        tenants: tenants.map((tenant) => ({
          id: tenant.id,
          name: tenant.name,
          status: tenant.status,
          plan: tenant.plan,
          features: { ...tenant.entitlements.features },
          createdAt: tenant.createdAt.toISOString(),
        })),
      };
    },
  );

  app.get(
    '/api/superadmin/usage',
    {
      ...policy,
      schema: {
        tags: ['superadmin'],
        summary:
          'Metered usage per tenant and meter (the usage ledger); with tenant_id also its users and chats (seed 002 §8.1.1)',
        querystring: TenantIdQuery,
        response: {
          200: z.object({
            meters: z.array(z.object({ tenant_id: z.string(), meter: z.string(), quantity: z.number() })),
            tenant_id: z.string().optional(),
            usage: z
              .object({
                user_count: z.number(),
                chat_count: z.number(),
                last_activity: z.string().nullable(),
              })
              .optional(),
          }),
          401: ErrorBody,
          403: ErrorBody,
          404: ErrorBody,
        },
      },
    },
    async (req) => {
      const tenantId = optionalTenant(req.query.tenant_id);
      const ledger = mt.catalog.tables.usageLedger;
      const rows = await mt.catalog.driver.db
        .select({ tenantId: ledger.tenantId, meter: ledger.meter, quantity: sum(ledger.quantity) })
        .from(ledger)
        .where(tenantId === undefined ? undefined : eq(ledger.tenantId, tenantId))
        .groupBy(ledger.tenantId, ledger.meter)
        .orderBy(ledger.tenantId, ledger.meter);
      const meters = rows.map((row) => ({
        tenant_id: row.tenantId,
        meter: row.meter,
        quantity: Number(row.quantity ?? 0),
      }));
      if (tenantId === undefined) return { meters };
      if ((await mt.catalog.directory.get(tenantId)) === undefined) {
        throw new MtPaasError('TENANT_NOT_FOUND', `Tenant "${tenantId}" does not exist.`);
      }
      const usage = await mt.tenantDb.forTenant(tenantId).run(async (tx) => {
        const [userCount] = await tx.select({ value: count() }).from(users);
        const [chats] = await tx
          .select({ value: count(), last: max(chatMessages.createdAt) })
          .from(chatMessages);
        return {
          user_count: userCount?.value ?? 0,
          chat_count: chats?.value ?? 0,
          last_activity: chats?.last ? new Date(chats.last).toISOString() : null,
        };
      });
      return { meters, tenant_id: tenantId, usage };
    },
  );

  app.get(
    '/api/superadmin/history',
    {
      ...policy,
      schema: {
        tags: ['superadmin'],
        summary: 'The audit history (newest first), of one tenant with tenant_id',
        querystring: TenantIdQuery.extend({ limit: z.coerce.number().int().min(1).max(500).default(100) }),
        response: {
          200: z.object({
            events: z.array(
              z.object({
                at: z.string(),
                type: z.string(),
                severity: z.string(),
                tenant_id: z.string().nullable(),
                target_tenant_id: z.string().nullable(),
                details: z.record(z.string(), z.unknown()).nullable(),
              }),
            ),
          }),
          401: ErrorBody,
          403: ErrorBody,
        },
      },
    },
    async (req) => {
      const tenantId = optionalTenant(req.query.tenant_id);
      const audit = mt.catalog.tables.auditLog;
      const rows = await mt.catalog.driver.db
        .select()
        .from(audit)
        .where(tenantId === undefined ? undefined : eq(audit.tenantId, tenantId))
        .orderBy(desc(audit.at), desc(audit.id))
        .limit(req.query.limit);
      return {
        events: rows.map((row) => ({
          at: new Date(row.at).toISOString(),
          type: row.type,
          severity: row.severity,
          tenant_id: row.tenantId,
          target_tenant_id: row.targetTenantId,
          details: row.details ?? null,
        })),
      };
    },
  );

  app.post(
    '/api/superadmin/tenants/:tenantId/password-reset',
    {
      ...policy,
      schema: {
        tags: ['superadmin'],
        summary: `A one-time password link for a user of the tenant (valid ${RESET_TOKEN_HOURS} h); the user sets a password with POST /api/auth/password`,
        params: z.object({ tenantId: z.string() }),
        body: z.object({ email: z.string().min(3).max(320) }),
        response: {
          201: z.object({
            tenant_id: z.string(),
            email: z.string(),
            resetToken: z.string(),
            expiresAt: z.string(),
            url: z.string(),
          }),
          401: ErrorBody,
          403: ErrorBody,
          404: ErrorBody,
        },
      },
    },
    async (req, reply) => {
      const tenantId = parseTenantId(req.params.tenantId);
      if ((await mt.catalog.directory.get(tenantId)) === undefined) {
        throw new MtPaasError('TENANT_NOT_FOUND', `Tenant "${tenantId}" does not exist.`);
      }
      const { token, tokenHash } = newOneTimeToken();
      const expiresAt = new Date(Date.now() + RESET_TOKEN_HOURS * 3_600_000);
      const user = await mt.tenantDb.forTenant(tenantId).run(async (tx) => {
        const user = await findUserByEmail(tx, req.body.email);
        if (user === undefined) return undefined;
        // one open link per user: older ones stop working
        await tx.delete(passwordTokens).where(and(eq(passwordTokens.userId, user.id)));
        await tx.insert(passwordTokens).values({ tokenHash, userId: user.id, expiresAt });
        return user;
      });
      if (user === undefined) {
        throw new MtPaasError('ROUTE_NOT_FOUND', `No user ${req.body.email} in tenant "${tenantId}".`, {
          httpStatus: 404,
        });
      }
      mt.logger.info({ tenantId, userId: user.id }, 'password link issued by the superadmin');
      reply.code(201);
      return {
        tenant_id: tenantId,
        email: user.email,
        resetToken: token,
        expiresAt: expiresAt.toISOString(),
        url: `/?tenant=${encodeURIComponent(tenantId)}#reset=${token}`,
      };
    },
  );
}
