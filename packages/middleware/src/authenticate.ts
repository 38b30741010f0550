import { MtPaasError, type TenantUser } from '@mt-paas/context';
import type { ApiKeyVerifier } from './api-key-auth.js';
import {
  type AuthRequirement,
  headerValue,
  type PipelineRequest,
  type RequestPrincipal,
} from './http-types.js';
import { bearerToken, type JwtVerifier, type VerifiedToken } from './jwt-auth.js';

/** Who sent a request, and the verified token when it came with one. */
export interface Authentication {
  principal: RequestPrincipal;
  token: VerifiedToken | undefined;
}

/**
 * The authentication stage: API key or bearer token, as the route's `auth` asks. Answers without waiting
 * when it can (no credentials, an API key, a token in the verified-token cache); a promise otherwise.
 */
export type Authenticate = (
  request: PipelineRequest,
  auth: AuthRequirement,
) => Authentication | Promise<Authentication>;

function asUser(verified: VerifiedToken): Authentication {
  const user: TenantUser = { id: verified.subject ?? 'unknown', roles: verified.roles };
  return { principal: { kind: 'user', user, claims: verified.claims }, token: verified };
}

const ANONYMOUS: Authentication = Object.freeze({
  principal: Object.freeze({ kind: 'anonymous' }) as RequestPrincipal,
  token: undefined,
});

/**
 * Builds the authentication stage. An API key (when the route accepts one and it is present) wins;
 * otherwise a bearer token is verified with `jwt`. A malformed `Authorization` header, an unknown key or a
 * token on a service without JWT verification are refused (`UNAUTHENTICATED`), never ignored.
 */
export function createAuthenticator(stage: {
  jwt: JwtVerifier | undefined;
  apiKeys: ApiKeyVerifier | undefined;
}): Authenticate {
  const { jwt, apiKeys } = stage;
  return (request, auth) => {
    if (auth === 'none') return ANONYMOUS;
    const acceptsKey = auth === 'api-key' || auth === 'jwt-or-api-key';
    const acceptsJwt = auth === 'jwt' || auth === 'optional' || auth === 'jwt-or-api-key';
    if (acceptsKey && apiKeys !== undefined) {
      const presented = headerValue(request.headers, apiKeys.header);
      if (presented !== undefined) {
        const entry = presented.length <= 1024 ? apiKeys.match(presented) : undefined;
        if (entry === undefined) {
          throw new MtPaasError(
            'UNAUTHENTICATED',
            'The API key is not valid; check the key configured for this caller.',
          );
        }
        return {
          principal: {
            kind: 'service',
            service: entry.id,
            user: { id: `service:${entry.id}`, roles: [...(entry.roles ?? [])] },
          },
          token: undefined,
        };
      }
    }
    const authorization = headerValue(request.headers, 'authorization');
    const token = acceptsJwt ? bearerToken(authorization) : undefined;
    if (authorization !== undefined && acceptsJwt && token === undefined) {
      throw new MtPaasError(
        'UNAUTHENTICATED',
        'The Authorization header is not "Bearer <token>"; send a bearer token.',
      );
    }
    if (token !== undefined) {
      if (jwt === undefined) {
        throw new MtPaasError(
          'UNAUTHENTICATED',
          'Bearer tokens are not accepted by this service (no JWT verification configured).',
        );
      }
      const cached = jwt.peek(token);
      return cached === undefined ? jwt.verify(token).then(asUser) : asUser(cached);
    }
    if (auth === 'jwt')
      throw new MtPaasError('UNAUTHENTICATED', 'This route needs a bearer token; sign in first.');
    if (auth === 'api-key')
      throw new MtPaasError(
        'UNAUTHENTICATED',
        `This route needs an API key in the ${apiKeys?.header ?? 'x-api-key'} header.`,
      );
    if (auth === 'jwt-or-api-key')
      throw new MtPaasError('UNAUTHENTICATED', 'This route needs a bearer token or an API key.');
    return ANONYMOUS;
  };
}
