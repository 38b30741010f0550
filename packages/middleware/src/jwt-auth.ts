import { createHash } from 'node:crypto';
import { MtPaasError } from '@mt-paas/context';
import {
  createRemoteJWKSet,
  importSPKI,
  type JWTPayload,
  type JWTVerifyGetKey,
  errors as joseErrors,
  jwtVerify,
} from 'jose';
import { LRUCache } from 'lru-cache';

/** Options of {@link createJwtVerifier}. Give exactly one of `secret`, `jwksUrl` and `publicKey`. */
export interface JwtAuthOptions {
  /** Shared secret for HS256 (the seed's `auth.jwt.secret`). At least 32 bytes. */
  secret?: string;
  /** JWKS endpoint for asymmetric keys (RS256 / ES256 …). */
  jwksUrl?: string;
  /** A PEM (SPKI) public key for one asymmetric algorithm (set `algorithms` to exactly that one). */
  publicKey?: string;
  /**
   * Allowed algorithms; always set, never taken from the token.
   * @default ['HS256'] with `secret`, ['RS256', 'ES256'] with `jwksUrl`
   */
  algorithms?: readonly string[];
  /** Required `iss`. */
  issuer?: string | readonly string[];
  /** Required `aud`. */
  audience?: string | readonly string[];
  /** Allowed clock skew in seconds; larger values are capped at 60. @default 30 */
  clockToleranceSeconds?: number;
  /** Claim holding the tenant id. @default 'tenant_id' */
  tenantClaim?: string;
  /**
   * Used by the request pipeline: a token without a tenant claim is refused (403 `FORBIDDEN`) on any
   * request that acts in a tenant, so it cannot act in whichever tenant a header or the host names.
   * Set `false` only when one identity provider signs in users who may act in every tenant (a platform
   * admin IdP); the tenant then comes from the other sources alone. @default true
   */
  requireTenantClaim?: boolean;
  /** Claim holding the roles (array or space-separated string). @default 'roles' */
  rolesClaim?: string;
  /** Most longest token accepted, in characters. @default 8192 */
  maxTokenLength?: number;
  /**
   * Cache verified tokens, so a token seen again skips the signature check: keyed by the whole token (up
   * to 1,024 characters; a longer one by its SHA-256), so a token differing in any byte is verified
   * afresh; an entry lives until the token's `exp` or `maxAgeMs`, whichever comes first, and at most `max` entries are kept (least recently used
   * dropped first). The pipeline still checks the cached token's tenant claim against the resolved
   * tenant on every request. A token whose key has since left the JWKS stays accepted until its entry ends
   * (at most `maxAgeMs`). `false` turns it off.
   * @default { max: 10_000, maxAgeMs: 300_000 }
   */
  cache?: false | { max?: number; maxAgeMs?: number };
}

/** A verified token. */
export interface VerifiedToken {
  claims: JWTPayload & Record<string, unknown>;
  subject: string | undefined;
  /** The tenant claim, raw (checked against the grammar by the pipeline). */
  tenantClaim: unknown;
  roles: string[];
}

/** Verifies bearer tokens. */
export interface JwtVerifier {
  verify(token: string): Promise<VerifiedToken>;
  /**
   * The cached verification of `token` when there is a live one (same token, not expired), without
   * waiting; `undefined` otherwise (then call `verify`). Always `undefined` with `cache: false`.
   */
  peek(token: string): VerifiedToken | undefined;
}

const HMAC_ALGORITHMS = new Set(['HS256', 'HS384', 'HS512']);

/**
 * Builds a JWT verifier with jose. The algorithm allow-list is always set: HMAC algorithms only
 * with a secret and asymmetric ones only with a JWKS or a PEM key, so an RS256 public key can never be used as
 * an HS256 secret (algorithm confusion); `alg: none` is never accepted.
 *
 * @throws MtPaasError `CONFIG_INVALID` for a bad configuration (at build time, not per request).
 */
export function createJwtVerifier(options: JwtAuthOptions): JwtVerifier {
  const keySources = [options.secret, options.jwksUrl, options.publicKey].filter(
    (value) => value !== undefined,
  );
  if (keySources.length !== 1) {
    throw new MtPaasError(
      'CONFIG_INVALID',
      'auth.jwt needs exactly one of "secret" (HS256), "jwksUrl" and "publicKey" (PEM).',
    );
  }
  const algorithms = [
    ...(options.algorithms ?? (options.secret !== undefined ? ['HS256'] : ['RS256', 'ES256'])),
  ];
  if (algorithms.length === 0 || algorithms.some((alg) => alg.toLowerCase() === 'none')) {
    throw new MtPaasError(
      'CONFIG_INVALID',
      'auth.jwt.algorithms must list real algorithms; "none" is never allowed.',
    );
  }
  const hmac = algorithms.filter((alg) => HMAC_ALGORITHMS.has(alg));
  if (options.secret !== undefined && hmac.length !== algorithms.length) {
    throw new MtPaasError('CONFIG_INVALID', 'With auth.jwt.secret only HS256/HS384/HS512 may be allowed.');
  }
  if (options.secret === undefined && hmac.length > 0) {
    throw new MtPaasError(
      'CONFIG_INVALID',
      'With auth.jwt.jwksUrl or publicKey only asymmetric algorithms (RS256, ES256, …) may be allowed.',
    );
  }
  if (options.publicKey !== undefined && algorithms.length !== 1) {
    throw new MtPaasError(
      'CONFIG_INVALID',
      'auth.jwt.publicKey verifies one algorithm: set algorithms to exactly one.',
    );
  }
  if (options.secret !== undefined && Buffer.byteLength(options.secret) < 32) {
    throw new MtPaasError('CONFIG_INVALID', 'auth.jwt.secret must be at least 32 bytes long.');
  }
  const clockTolerance = Math.min(Math.max(options.clockToleranceSeconds ?? 30, 0), 60);
  const tenantClaim = options.tenantClaim ?? 'tenant_id';
  const rolesClaim = options.rolesClaim ?? 'roles';
  const maxLength = options.maxTokenLength ?? 8192;
  let key: Uint8Array | JWTVerifyGetKey;
  if (options.secret !== undefined) {
    key = new TextEncoder().encode(options.secret);
  } else if (options.jwksUrl !== undefined) {
    key = createRemoteJWKSet(new URL(options.jwksUrl), { timeoutDuration: 2000, cooldownDuration: 30_000 });
  } else {
    const imported = importSPKI(options.publicKey!, algorithms[0]!);
    imported.catch(() => {});
    key = async () => {
      try {
        return await imported;
      } catch (error) {
        throw new MtPaasError(
          'CONFIG_INVALID',
          'auth.jwt.publicKey is not a PEM public key for the configured algorithm.',
          {
            cause: error,
          },
        );
      }
    };
  }
  const cacheOptions = options.cache === false ? undefined : (options.cache ?? {});
  const cacheMax = cacheOptions?.max ?? 10_000;
  const cacheMaxAgeMs = cacheOptions?.maxAgeMs ?? 300_000;
  if (
    cacheOptions !== undefined &&
    !(Number.isSafeInteger(cacheMax) && cacheMax > 0 && Number.isFinite(cacheMaxAgeMs) && cacheMaxAgeMs > 0)
  ) {
    throw new MtPaasError(
      'CONFIG_INVALID',
      'auth.jwt.cache needs a whole max > 0 and a maxAgeMs > 0, or false to turn the cache off.',
    );
  }
  const cache =
    cacheOptions === undefined
      ? undefined
      : new LRUCache<string, VerifiedToken>({ max: cacheMax, ttl: cacheMaxAgeMs, ttlAutopurge: false });

  async function verifyUncached(token: string): Promise<VerifiedToken> {
    try {
      const { payload } = await jwtVerify(token, key as Uint8Array, {
        algorithms,
        issuer: options.issuer as string | string[] | undefined,
        audience: options.audience as string | string[] | undefined,
        clockTolerance,
        requiredClaims: ['exp'],
      });
      const rawRoles = payload[rolesClaim];
      const roles = Array.isArray(rawRoles)
        ? rawRoles.filter((role): role is string => typeof role === 'string')
        : typeof rawRoles === 'string'
          ? rawRoles.split(' ').filter(Boolean)
          : [];
      // Frozen: a cached token is shared by every request that presents it.
      return Object.freeze({
        claims: deepFreeze(payload),
        subject: payload.sub,
        tenantClaim: payload[tenantClaim],
        roles: Object.freeze(roles) as string[],
      });
    } catch (error) {
      throw unauthenticated(error);
    }
  }

  /**
   * The token itself up to {@link TOKEN_KEY_MAX_LENGTH} characters (a string key is compared whole, so a
   * token differing in any byte is another key, and no hash is computed per request); a longer token is
   * keyed by its SHA-256 (prefixed so the two kinds of keys never meet), which keeps the cache's memory
   * bounded (`max` × about 1 KB).
   */
  function cacheKeyOf(token: string): string {
    if (token.length <= TOKEN_KEY_MAX_LENGTH) return token;
    return `#sha256:${createHash('sha256').update(token).digest('base64url')}`;
  }

  /** A live cache entry: the entry's TTL ends at `exp` on the cache's clock; `exp` is checked on the wall clock too. */
  function cachedEntry(cacheKey: string): VerifiedToken | undefined {
    const cached = cache?.get(cacheKey);
    if (cached === undefined) return undefined;
    if ((cached.claims.exp ?? 0) * 1000 > Date.now()) return cached;
    cache?.delete(cacheKey);
    return undefined;
  }

  return {
    peek(token) {
      if (cache === undefined || token.length === 0 || token.length > maxLength) return undefined;
      return cachedEntry(cacheKeyOf(token));
    },
    async verify(token) {
      if (token.length === 0 || token.length > maxLength) {
        throw new MtPaasError('UNAUTHENTICATED', 'The bearer token is empty or too long; sign in again.');
      }
      if (cache === undefined) return verifyUncached(token);
      const cacheKey = cacheKeyOf(token);
      const cached = cachedEntry(cacheKey);
      if (cached !== undefined) return cached;
      const verified = await verifyUncached(token);
      const expiresInMs = (verified.claims.exp ?? 0) * 1000 - Date.now();
      if (expiresInMs > 0) cache.set(cacheKey, verified, { ttl: Math.min(expiresInMs, cacheMaxAgeMs) });
      return verified;
    },
  };
}

/**
 * Tokens up to this length are their own cache key. A JWT has no `#` (base64url and dots), so a hashed key
 * (`#sha256:…`) can never equal a raw one.
 */
const TOKEN_KEY_MAX_LENGTH = 1024;

/** Freezes a verified payload all the way down (claims are plain JSON). */
function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    for (const item of Object.values(value)) deepFreeze(item);
    Object.freeze(value);
  }
  return value;
}

function unauthenticated(error: unknown): MtPaasError {
  let reason = 'invalid token';
  if (error instanceof joseErrors.JWTExpired) reason = 'the token has expired';
  else if (error instanceof joseErrors.JWTClaimValidationFailed)
    reason = `claim "${error.claim}" is not accepted`;
  else if (error instanceof joseErrors.JOSEAlgNotAllowed) reason = 'the signing algorithm is not allowed';
  else if (error instanceof joseErrors.JWSSignatureVerificationFailed)
    reason = 'the signature does not verify';
  else if (error instanceof joseErrors.JWKSNoMatchingKey) reason = 'no key in the JWKS matches the token';
  else if (error instanceof joseErrors.JWKSTimeout) reason = 'the JWKS endpoint did not answer in time';
  return new MtPaasError(
    'UNAUTHENTICATED',
    `Authentication failed: ${reason}. Sign in again to get a new token.`,
    {
      details: { reason },
      cause: error,
    },
  );
}

/** The bearer token of an `Authorization` header, if any. */
export function bearerToken(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  const match = /^Bearer[ \t]+(\S+)\s*$/i.exec(header);
  return match?.[1];
}
