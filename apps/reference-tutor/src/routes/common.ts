import { MtPaasError } from '@mt-paas/context';
import { eq } from 'drizzle-orm';
import type { FastifyRequest } from 'fastify';
import { z } from 'zod';
import { users } from '../schema.js';
import type { UserRow } from '../users.js';

/** `{ error: { code, message } }` — every refusal. */
export const ErrorBody = z.object({ error: z.object({ code: z.string(), message: z.string() }) });

/** The user of the request's token, read from the tenant's table (a deleted user's token stops working). */
export async function sessionUser(req: FastifyRequest): Promise<UserRow> {
  const id = req.tenant?.principal.user?.id;
  if (id === undefined || !z.uuid().safeParse(id).success) {
    throw new MtPaasError(
      'UNAUTHENTICATED',
      'Log in first: send the token from POST /api/auth/login as Authorization: Bearer <token>.',
    );
  }
  const [user] = await req.tenantDb((tx) => tx.select().from(users).where(eq(users.id, id)));
  if (user === undefined)
    throw new MtPaasError('UNAUTHENTICATED', 'Your user no longer exists in this institution; log in again.');
  return user;
}

/** The id of the logged-in user, or null for a service (API key) caller. */
export function userIdOf(req: FastifyRequest): string | null {
  const id = req.tenant?.principal.user?.id;
  return id !== undefined && z.uuid().safeParse(id).success ? id : null;
}

export const IdParams = z.object({ id: z.uuid() });
