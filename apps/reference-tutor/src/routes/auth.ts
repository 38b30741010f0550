/**
 * Password login, password setting (one-time token or an SSO session), and "log in with the
 * marketplace" (the SSO callback). Every token issued carries the tenant claim.
 */
import { MtPaasError } from '@mt-paas/context';
import { and, eq, gt, isNull, sql } from 'drizzle-orm';
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { checkNewPassword, hashPassword, hashToken, verifyPassword } from '../passwords.js';
import { passwordTokens, users } from '../schema.js';
import type { Tutor } from '../tutor.js';
import { findUserByEmail, publicUser, touchLogin, type UserRow } from '../users.js';
import { ErrorBody, sessionUser } from './common.js';

export const Session = z.object({
  token: z.string().describe('JWT (HS256) with the tenant claim; send it as `Authorization: Bearer …`'),
  user: z.object({
    id: z.string(),
    email: z.string(),
    name: z.string(),
    role: z.string(),
    hasPassword: z.boolean(),
    createdAt: z.string(),
    lastLoginAt: z.string().nullable(),
  }),
  tenant: z.object({ id: z.string(), name: z.string() }),
});

export async function issueSession(tutor: Tutor, tenant: { id: string; name: string }, user: UserRow) {
  const token = await tutor.issueToken({
    sub: user.id,
    tenantId: tenant.id,
    email: user.email,
    name: user.name,
    roles: [user.role],
  });
  return { token, user: publicUser(user), tenant };
}

export async function authRoutes(root: FastifyInstance, tutor: Tutor) {
  const app = root.withTypeProvider<ZodTypeProvider>();

  app.post(
    '/api/auth/login',
    {
      config: { mtPaas: { auth: 'none' } },
      schema: {
        tags: ['auth'],
        summary: 'Log in with email and password',
        body: z.object({ email: z.string().min(3).max(320), password: z.string().min(1).max(200) }),
        response: { 200: Session, 401: ErrorBody },
      },
    },
    async (req) => {
      const tenant = req.tenant!.record!;
      const user = await req.tenantDb((tx) => findUserByEmail(tx, req.body.email));
      // verifyPassword runs scrypt even without a user, so timing does not tell which emails exist
      const ok = await verifyPassword(req.body.password, user?.passwordHash ?? null);
      if (user === undefined || !ok) {
        throw new MtPaasError(
          'UNAUTHENTICATED',
          'Wrong email or password. Log in with the marketplace, or ask your administrator for a password link.',
        );
      }
      await req.tenantDb((tx) => touchLogin(tx, user.id));
      tutor.activity('launched', 'session');
      return issueSession(tutor, { id: tenant.id, name: tenant.name }, user);
    },
  );

  app.post(
    '/api/auth/password',
    {
      config: { mtPaas: { auth: 'none' } },
      schema: {
        tags: ['auth'],
        summary:
          'Set a password with a one-time token (from the operator: POST /api/superadmin/tenants/:tenantId/password-reset)',
        body: z.object({ resetToken: z.string().min(20).max(200), password: z.string() }),
        response: { 200: Session, 401: ErrorBody },
      },
    },
    async (req) => {
      const tenant = req.tenant!.record!;
      const password = checkNewPassword(req.body.password);
      const passwordHash = await hashPassword(password);
      const user = await req.tenantDb(async (tx) => {
        const [used] = await tx
          .update(passwordTokens)
          .set({ usedAt: sql`now()` })
          .where(
            and(
              eq(passwordTokens.tokenHash, hashToken(req.body.resetToken)),
              isNull(passwordTokens.usedAt),
              gt(passwordTokens.expiresAt, sql`now()`),
            ),
          )
          .returning({ userId: passwordTokens.userId });
        if (used === undefined) return undefined;
        const [user] = await tx
          .update(users)
          .set({ passwordHash, lastLoginAt: sql`now()` })
          .where(eq(users.id, used.userId))
          .returning();
        return user;
      });
      if (user === undefined) {
        throw new MtPaasError(
          'UNAUTHENTICATED',
          'This password link is unknown, used or expired; ask the operator for a new one.',
        );
      }
      return issueSession(tutor, { id: tenant.id, name: tenant.name }, user);
    },
  );

  app.put(
    '/api/auth/password',
    {
      config: { mtPaas: { auth: 'jwt' } },
      schema: {
        tags: ['auth'],
        summary: 'Change (or, after a marketplace SSO login, set) your password',
        body: z.object({ password: z.string(), currentPassword: z.string().max(200).optional() }),
        response: { 200: z.object({ ok: z.literal(true) }), 401: ErrorBody },
      },
    },
    async (req) => {
      const password = checkNewPassword(req.body.password);
      const me = await sessionUser(req);
      if (
        me.passwordHash !== null &&
        !(await verifyPassword(req.body.currentPassword ?? '', me.passwordHash))
      ) {
        throw new MtPaasError(
          'UNAUTHENTICATED',
          'Give your current password (currentPassword) to change it.',
        );
      }
      const passwordHash = await hashPassword(password);
      await req.tenantDb((tx) => tx.update(users).set({ passwordHash }).where(eq(users.id, me.id)));
      return { ok: true as const };
    },
  );

  app.get(
    '/api/auth/me',
    {
      config: { mtPaas: { auth: 'jwt' } },
      schema: {
        tags: ['auth'],
        summary: 'The logged-in user',
        response: { 200: Session.shape.user, 401: ErrorBody },
      },
    },
    async (req) => publicUser(await sessionUser(req)),
  );
}
