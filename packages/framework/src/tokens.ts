import type { MtPaasConfig } from '@mt-paas/config';
import { MtPaasError, parseTenantId, tryCurrentTenant } from '@mt-paas/context';
import { SignJWT } from 'jose';

/** What {@link TokenIssuer} puts in a token. */
export interface IssueTokenInput {
  /** The user id (`sub`). */
  sub: string;
  /** The user's roles (the `roles` claim the pipeline reads). @default [] */
  roles?: readonly string[];
  /** The tenant claim. @default the current request's tenant */
  tenantId?: string;
  email?: string;
  name?: string;
  /** Lifetime in hours. @default `auth.jwt.expiry_hours` (24) */
  expiryHours?: number;
}

/** Issues the service's own JWTs (password login), verified by the pipeline on later requests. */
export type TokenIssuer = (input: IssueTokenInput) => Promise<string>;

/**
 * A token issuer from `auth.jwt`: `secret` + HS* `algorithm`, `expiry_hours`, `issuer`, the first `audience`,
 * and the tenant claim the pipeline checks (`tenant_claim`, or the `jwt_claim` identification method's
 * claim name). A config that verifies with public keys only (jwks_url / public_key) cannot issue: the
 * issuer then throws `CONFIG_INVALID` saying so.
 */
export function createTokenIssuer(config: MtPaasConfig): TokenIssuer {
  const jwt = config.auth.jwt;
  const claimMethod = config.tenantIdentification.methods.find((method) => method.type === 'jwt_claim');
  const tenantClaim = claimMethod?.type === 'jwt_claim' ? claimMethod.claimName : jwt.tenantClaim;
  return async (input) => {
    if (!jwt.enabled || jwt.secret === undefined || !jwt.algorithm.startsWith('HS')) {
      throw new MtPaasError(
        'CONFIG_INVALID',
        'issueToken() signs with auth.jwt.secret and an HS* algorithm; set auth.jwt.secret (from an environment variable) to issue login tokens, or issue them with your identity provider.',
      );
    }
    const rawTenantId = input.tenantId ?? tryCurrentTenant()?.tenantId;
    if (rawTenantId === undefined) {
      throw new MtPaasError(
        'TENANT_CONTEXT_MISSING',
        'issueToken() outside a tenant request needs { tenantId }.',
      );
    }
    const tenantId = parseTenantId(rawTenantId);
    if (typeof input.sub !== 'string' || input.sub === '') {
      throw new MtPaasError('INVALID_REQUEST', 'issueToken() needs the user id as sub.');
    }
    const hours = input.expiryHours ?? jwt.expiryHours;
    let token = new SignJWT({
      [tenantClaim]: tenantId,
      roles: [...(input.roles ?? [])],
      ...(input.email === undefined ? {} : { email: input.email }),
      ...(input.name === undefined ? {} : { name: input.name }),
    })
      .setProtectedHeader({ alg: jwt.algorithm, typ: 'JWT' })
      .setSubject(input.sub)
      .setIssuedAt()
      .setExpirationTime(`${Math.round(hours * 3600)}s`);
    if (jwt.issuer !== undefined) token = token.setIssuer(jwt.issuer);
    if (jwt.audience !== undefined && jwt.audience.length > 0) token = token.setAudience(jwt.audience);
    return token.sign(new TextEncoder().encode(jwt.secret));
  };
}
