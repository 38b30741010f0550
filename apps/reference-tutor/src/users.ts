/** Tenant users: lookup, creation at onboarding and SSO, and the public shape. */
import { eq, sql } from 'drizzle-orm';
import { type UserRole, users } from './schema.js';
import type { Tx } from './tutor.js';

export type UserRow = typeof users.$inferSelect;

/** What the API shows of a user (never the password hash). */
export function publicUser(user: UserRow) {
  return {
    id: user.id,
    email: user.email,
    name: user.name,
    role: user.role,
    hasPassword: user.passwordHash !== null,
    createdAt: user.createdAt.toISOString(),
    lastLoginAt: user.lastLoginAt?.toISOString() ?? null,
  };
}

export function normalizeEmail(email: string): string {
  return email.trim().toLowerCase();
}

export async function findUserByEmail(tx: Tx, email: string): Promise<UserRow | undefined> {
  const [user] = await tx
    .select()
    .from(users)
    .where(eq(users.email, normalizeEmail(email)));
  return user;
}

/** Creates the user, or returns the existing one with that email (onboarding and SSO are retried). */
export async function ensureUser(
  tx: Tx,
  input: { email: string; name: string; role: UserRole; marketUserId?: string | undefined },
): Promise<UserRow> {
  const email = normalizeEmail(input.email);
  await tx
    .insert(users)
    .values({ email, name: input.name, role: input.role, marketUserId: input.marketUserId ?? null })
    .onConflictDoNothing();
  const [user] = await tx.select().from(users).where(eq(users.email, email));
  return user!;
}

export async function touchLogin(tx: Tx, userId: string) {
  await tx.update(users).set({ lastLoginAt: sql`now()` }).where(eq(users.id, userId));
}
