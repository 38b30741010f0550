/**
 * How the onboarding admin of a tenant logs in to the tutor: "log in with the marketplace" — the
 * market issues a login token for its member, the tutor's SSO callback verifies it against the
 * market's JWKS and answers with the tutor's own session token.
 */
import type { MarketDriver } from './market.js';
import type { TutorClient } from './tutor-client.js';

export interface AdminLogin {
  token: string;
  /** How a person logs in, as `pnpm start` prints it. */
  printable: string;
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
  return { token, printable: `${member.email} through "log in with the market" (the link below)` };
}
