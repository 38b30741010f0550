/**
 * "Log in with the marketplace": the marketplace redirects the member with a short-lived RS256/ES256 login
 * token. The framework verifies it (`auth.marketplace_sso`: the market's JWKS, issuer, audience = the
 * service id, expiry, the tenant claim, each `jti` once across instances) on seed 001's callback path and
 * hands the login to {@link ssoLoginHook}; `GET /api/auth/sso/callback` does the same through
 * `mt.verifySsoToken` and can also answer JSON. The tutor finds or creates the user and starts its session.
 */
import { MtPaasError, parseTenantId } from '@mt-paas/context';
import type { MarketplaceLogin, SsoLoginResponse } from '@mt-paas/marketplace';
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { UserRole } from '../schema.js';
import type { Tutor } from '../tutor.js';
import { ensureUser, touchLogin } from '../users.js';
import { issueSession, Session } from './auth.js';
import { ErrorBody } from './common.js';

function roleFromMarket(roles: readonly string[]): UserRole {
  // Administrators come only from onboarding (the market's admin email); the market may name teachers.
  return roles.some((role) => ['instructor', 'teacher', 'professor', 'faculty'].includes(role.toLowerCase()))
    ? 'instructor'
    : 'student';
}

/** The session of a verified marketplace login: the tenant must be served, the user is found or created. */
export async function sessionForLogin(tutor: Tutor, login: MarketplaceLogin) {
  const { mt } = tutor;
  const tenantId = parseTenantId(login.tenantId);
  const tenant = await mt.catalog.directory.get(tenantId);
  if (tenant === undefined)
    throw new MtPaasError('TENANT_NOT_FOUND', `Tenant "${tenantId}" does not exist here yet.`);
  if (tenant.status !== 'active' && tenant.status !== 'grace') {
    const code =
      tenant.status === 'blocked'
        ? 'TENANT_BLOCKED'
        : tenant.status === 'deleted'
          ? 'TENANT_DELETED'
          : 'TENANT_SUSPENDED';
    throw new MtPaasError(code, `This institution is ${tenant.status}; contact the marketplace.`);
  }
  const email = login.user.email;
  if (email === undefined) {
    throw new MtPaasError(
      'UNAUTHENTICATED',
      'The marketplace login carries no email; log in with a member account that has one.',
    );
  }
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
  return issueSession(tutor, { id: tenant.id, name: tenant.name }, user);
}

/** Where a browser lands: the page, with the session in the fragment (never in a server log or a Referer). */
function pageWith(session: { token: string; tenant: { id: string } }): string {
  return `/?tenant=${encodeURIComponent(session.tenant.id)}#token=${session.token}`;
}

/** The framework's `onSsoLogin` for seed 001's callback path (`auth.marketplace_sso.callback_url`). */
export function ssoLoginHook(getTutor: () => Tutor) {
  return async (login: MarketplaceLogin): Promise<SsoLoginResponse> => ({
    redirectTo: pageWith(await sessionForLogin(getTutor(), login)),
  });
}

export async function ssoRoutes(root: FastifyInstance, tutor: Tutor) {
  const app = root.withTypeProvider<ZodTypeProvider>();
  app.get(
    '/api/auth/sso/callback',
    {
      config: { mtPaas: { tenant: 'optional', auth: 'none' } },
      schema: {
        tags: ['auth'],
        summary:
          'Marketplace SSO callback: a JSON session with Accept: application/json, else a redirect to the page',
        querystring: z.object({
          token: z.string().min(1).max(8192),
          tenant: z.string().optional(),
          tenant_id: z.string().optional(),
        }),
        response: { 200: Session, 302: z.null(), 401: ErrorBody, 403: ErrorBody },
      },
    },
    async (req, reply) => {
      const resolved = req.tenant?.tenantId;
      const login = await tutor.mt.verifySsoToken(
        req.query.token,
        resolved === undefined ? {} : { expectedTenant: resolved },
      );
      const session = await sessionForLogin(tutor, login);
      if ((req.headers.accept ?? '').includes('application/json')) return session;
      return reply.redirect(pageWith(session), 302);
    },
  );
}
