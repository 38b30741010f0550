/**
 * How the onboarding admin of a tenant logs in to the tutor: "log in with the marketplace" — the
 * market issues a login token for its member, the tutor's SSO callback verifies it against the
 * market's JWKS and answers with the tutor's own session token.
 */
import { call } from '@mt-paas/test-env/processes';
import type { MarketDriver } from './market.js';
import type { TutorClient } from './tutor-client.js';

export interface AdminLogin {
  token: string;
}

/** Logs `client` in as the tenant's admin through the market's SSO and returns the session token. */
export async function adminLogin(
  market: MarketDriver,
  client: TutorClient,
  member: { serviceId: string; userId: number; email: string },
): Promise<AdminLogin> {
  const issued = await market.ssoToken(member.serviceId, member.userId);
  const response = await fetch(
    `${client.baseUrl}/api/auth/sso/callback?token=${encodeURIComponent(issued.token)}`,
    { redirect: 'manual', headers: { accept: 'application/json' } },
  );
  const text = await response.text();
  let token: string | undefined;
  try {
    token = (JSON.parse(text) as { token?: string }).token;
  } catch {
    // not JSON: a redirect carrying the session in a cookie
  }
  if (token === undefined) {
    const cookie = response.headers.getSetCookie().find((value) => /token|session/i.test(value));
    token = cookie?.split(';')[0]?.split('=').slice(1).join('=');
  }
  if (token === undefined || token === '') {
    throw new Error(`the tutor's SSO callback answered ${response.status} without a session token: ${text}`);
  }
  client.token = token;
  return { token };
}

/**
 * Gives a tenant's admin `password` the operator's way: a one-time reset token from the tutor's
 * superadmin API (`POST /api/superadmin/tenants/:tenantId/password-reset`, `X-API-Key`), redeemed with
 * `POST /api/auth/password`. When the admin already has this password (a previous run) nothing changes.
 */
export async function ensureAdminPassword(
  client: TutorClient,
  superadminKey: string,
  email: string,
  password: string,
): Promise<void> {
  const login = await fetch(`${client.baseUrl}/api/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-tenant-id': client.tenantId },
    body: JSON.stringify({ email, password }),
  });
  if (login.status === 200) return;
  const reset = await call<{ resetToken: string }>(
    `${client.baseUrl}/api/superadmin/tenants/${client.tenantId}/password-reset`,
    { body: { email }, headers: { 'x-api-key': superadminKey }, expect: 201 },
  );
  await call(`${client.baseUrl}/api/auth/password`, {
    body: { resetToken: reset.resetToken, password },
    headers: { 'x-tenant-id': client.tenantId },
  });
}
