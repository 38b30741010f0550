import { MtPaasError } from '@mt-paas/context';
import type { Catalog } from '@mt-paas/db';
import {
  createCatalogReplayStore,
  createMarketplaceSso,
  type MarketplaceLogin,
  type MarketplaceSso,
  type SsoLoginResponse,
} from '@mt-paas/marketplace';
import type { FrameworkConfig } from './load-framework-config.js';
import type { TokenIssuer } from './tokens.js';

/** Where the marketplace's login tokens are verified. */
export interface SsoOptions {
  /** JWKS of the marketplace. @default `<origin of marketplace.api_url>/.well-known/jwks.json` */
  jwksUrl?: string;
  /** The `iss` of login tokens. @default the origin of `marketplace.api_url` */
  issuer?: string;
}

/**
 * `auth.marketplace_sso`: when enabled, login tokens are verified against the marketplace's keys (RS256 /
 * ES256, audience = `service.id`, each `jti` once across instances) at `callback_url`. Enabled without
 * `marketplace.api_url` (or explicit `jwksUrl` + `issuer`) is a `CONFIG_INVALID` at startup.
 */
export function createSsoFromConfig(
  config: FrameworkConfig,
  catalog: Catalog,
  options: SsoOptions = {},
): MarketplaceSso | undefined {
  if (!config.auth.marketplaceSso.enabled) return undefined;
  const origin =
    config.marketplace.apiUrl === undefined ? undefined : new URL(config.marketplace.apiUrl).origin;
  const jwks = options.jwksUrl ?? (origin === undefined ? undefined : `${origin}/.well-known/jwks.json`);
  const issuer = options.issuer ?? origin;
  if (jwks === undefined || issuer === undefined) {
    throw new MtPaasError(
      'CONFIG_INVALID',
      'auth.marketplace_sso.enabled needs the marketplace that signs the login tokens: set marketplace.api_url (its origin serves /.well-known/jwks.json), or pass sso: { jwksUrl, issuer } to createServiceFramework, or set enabled: false.',
      { details: { key: 'auth.marketplace_sso.enabled' } },
    );
  }
  return createMarketplaceSso({
    jwks,
    issuer,
    audience: config.service.id,
    replayStore: createCatalogReplayStore(catalog),
  });
}

/**
 * The default end of a marketplace login: the service's own session token (`issueToken` with the login's
 * user id, email and roles) in an HttpOnly cookie `mt_paas_token`, and a redirect to `/?tenant=<id>`.
 * Without `auth.jwt.secret` the verified identity is answered as JSON instead (the app issues its session).
 */
export function defaultSsoLogin(
  issueToken: TokenIssuer,
  secureCookie: boolean,
): (login: MarketplaceLogin) => Promise<SsoLoginResponse> {
  return async (login) => {
    let token: string;
    try {
      token = await issueToken({
        sub: login.user.id,
        tenantId: login.tenantId,
        roles: login.user.roles,
        ...(login.user.email === undefined ? {} : { email: login.user.email }),
        ...(login.user.name === undefined ? {} : { name: login.user.name }),
      });
    } catch (error) {
      if (MtPaasError.isInstance(error) && error.code === 'CONFIG_INVALID') {
        return { status: 200, body: { tenant_id: login.tenantId, user: login.user } };
      }
      throw error;
    }
    return {
      redirectTo: `/?tenant=${encodeURIComponent(login.tenantId)}`,
      headers: {
        'set-cookie': `mt_paas_token=${token}; Path=/; HttpOnly; SameSite=Lax${secureCookie ? '; Secure' : ''}`,
      },
    };
  };
}
