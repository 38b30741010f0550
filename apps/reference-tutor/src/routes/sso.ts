/**
 * "Log in with the marketplace": the marketplace redirects the member to the callback with a short-lived
 * RS256/ES256 login token (`@mt-paas/marketplace`'s `createMarketplaceSso` checks issuer, audience = the
 * service id, expiry, the tenant claim and a one-time `jti`, remembered in the catalog so a token works
 * once across instances). The tutor finds or creates the user and starts its own session.
 */
import { MtPaasError, parseTenantId } from '@mt-paas/context';
import { createCatalogReplayStore, createMarketplaceSso, type MarketplaceSso } from '@mt-paas/marketplace';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { UserRole } from '../schema.js';
import type { Tutor } from '../tutor.js';
import { ensureUser, touchLogin } from '../users.js';
import { issueSession, Session } from './auth.js';
import { ErrorBody } from './common.js';

const marketSsoSchema = z.object({
  issuer: z.url().nullish(),
  jwks_url: z.url().nullish(),
});

/** The path seed 001 names (`auth.marketplace_sso.callback_url`) and the tutor's API path. */
export const SSO_PATHS = ['/api/auth/sso/callback'] as const;

function roleFromMarket(roles: readonly string[]): UserRole {
  // Administrators come only from onboarding (the market's admin email); the market may name teachers.
  return roles.some((role) => ['instructor', 'teacher', 'professor', 'faculty'].includes(role.toLowerCase()))
    ? 'instructor'
    : 'student';
}

export async function ssoRoutes(root: FastifyInstance, tutor: Tutor) {
  const app = root.withTypeProvider<ZodTypeProvider>();
  const { mt } = tutor;
  const parsed = marketSsoSchema.safeParse((mt.config.custom as { market_sso?: unknown }).market_sso ?? {});
  if (!parsed.success) {
    throw new MtPaasError(
      'CONFIG_INVALID',
      `custom.market_sso: ${parsed.error.issues[0]?.message}; set MARKET_SSO_ISSUER to the market's URL.`,
    );
  }
  const issuer = parsed.data.issuer ?? undefined;
  const sso: MarketplaceSso | undefined =
    issuer === undefined || !mt.config.auth.marketplaceSso.enabled
      ? undefined
      : createMarketplaceSso({
          jwks: parsed.data.jwks_url ?? `${issuer.replace(/\/+$/, '')}/.well-known/jwks.json`,
          issuer,
          audience: mt.config.service.id,
          replayStore: createCatalogReplayStore(mt.catalog),
        });

  async function callback(req: FastifyRequest<{ Querystring: { token: string } }>, reply: FastifyReply) {
    if (sso === undefined) {
      throw new MtPaasError(
        'FORBIDDEN',
        'Marketplace login is not configured here: set MARKET_SSO_ISSUER (and auth.marketplace_sso.enabled).',
      );
    }
    const resolved = req.tenant?.tenantId;
    const login = await sso.verify(
      req.query.token,
      resolved === undefined ? {} : { expectedTenant: resolved },
    );
    const tenantId = parseTenantId(login.tenantId);
    const tenant = await mt.catalog.directory.get(tenantId);
    if (tenant === undefined)
      throw new MtPaasError('TENANT_NOT_FOUND', `Tenant "${tenantId}" does not exist here yet.`);
    if (tenant.status !== 'active' && tenant.status !== 'grace') {
      throw new MtPaasError(
        tenant.status === 'blocked'
          ? 'TENANT_BLOCKED'
          : tenant.status === 'deleted'
            ? 'TENANT_DELETED'
            : 'TENANT_SUSPENDED',
        `This institution is ${tenant.status}; contact the marketplace.`,
      );
    }
    const email = login.user.email;
    if (email === undefined)
      throw new MtPaasError(
        'UNAUTHENTICATED',
        'The marketplace login carries no email; log in with a member account that has one.',
      );
    const user = await mt.tenantDb.forTenant(tenantId).run(async (tx) => {
      const user = await ensureUser(tx, {
        email,
        name: login.user.name ?? email,
        role: roleFromMarket(login.user.roles),
        marketUserId: login.user.id,
      });
      await touchLogin(tx, user.id);
      return user;
    });
    const session = await issueSession(tutor, { id: tenant.id, name: tenant.name }, user);
    if ((req.headers.accept ?? '').includes('application/json')) return session;
    // The token travels in the fragment: it never reaches a server log or a Referer header.
    return reply.redirect(`/?tenant=${encodeURIComponent(tenant.id)}#token=${session.token}`, 302);
  }

  const routeOptions = {
    config: { mtPaas: { tenant: 'optional' as const, auth: 'none' as const } },
    schema: {
      tags: ['auth'],
      summary:
        'Marketplace SSO callback: JSON session with Accept: application/json, else a redirect to the page',
      querystring: z.object({
        token: z.string().min(1).max(8192),
        tenant: z.string().optional(),
        tenant_id: z.string().optional(),
      }),
      response: { 200: Session, 302: z.null(), 401: ErrorBody, 403: ErrorBody },
    },
  };
  for (const path of SSO_PATHS) app.get(path, routeOptions, callback);
  // Seed 001's callback path, unless the framework already answers it.
  const seedPath = mt.config.auth.marketplaceSso.callbackUrl;
  if (seedPath.startsWith('/') && !root.hasRoute({ method: 'GET', url: seedPath }))
    app.get(seedPath, routeOptions, callback);
}
