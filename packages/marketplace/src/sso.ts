import { MtPaasError, type TenantId, tenantIdProblem } from '@mt-paas/context';
import type { SqlDriver } from '@mt-paas/db';
import {
  createLocalJWKSet,
  createRemoteJWKSet,
  type JSONWebKeySet,
  type JWTPayload,
  type JWTVerifyGetKey,
  errors as joseErrors,
  jwtVerify,
} from 'jose';
import { LRUCache } from 'lru-cache';
import { catalogTable } from './receipts.js';

/** Remembers used `jti`s so a login token works once. */
export interface ReplayStore {
  /** True the first time `jti` is claimed; false for every later claim (until `expiresAt` passed). */
  claim(jti: string, expiresAt: Date): Promise<boolean>;
}

/** Options of {@link createMemoryReplayStore}. */
export interface MemoryReplayStoreOptions {
  /** Most `jti`s remembered (oldest dropped first; a token also expires). @default 100000 */
  max?: number;
}

/** A replay store in process memory (an LRU with each entry living until its token expires). One instance only. */
export function createMemoryReplayStore(options: MemoryReplayStoreOptions = {}): ReplayStore {
  const seen = new LRUCache<string, true>({ max: options.max ?? 100_000 });
  return {
    async claim(jti, expiresAt) {
      if (seen.has(jti)) return false;
      const ttl = Math.max(1, expiresAt.getTime() - Date.now() + 60_000);
      seen.set(jti, true, { ttl });
      return true;
    },
  };
}

/**
 * A replay store in the catalog (`webhook_receipts`, ids `sso-jti:<jti>`), shared by every
 * instance: the row's primary key decides which claim wins.
 */
export function createCatalogReplayStore(options: { driver: SqlDriver; schema?: string }): ReplayStore {
  const table = catalogTable(options.schema, 'webhook_receipts');
  return {
    async claim(jti, expiresAt) {
      const result = await options.driver.query(
        `INSERT INTO ${table} (webhook_id, type, result, occurred_at) VALUES ($1, 'sso.login', 'processed', $2)
         ON CONFLICT (webhook_id) DO NOTHING RETURNING webhook_id`,
        [`sso-jti:${jti}`, expiresAt],
      );
      return result.rows.length === 1;
    },
  };
}

/** Options of {@link createMarketplaceSso}. */
export interface MarketplaceSsoOptions {
  /** The marketplace's JWKS: its URL (fetched and cached by jose), a key set, or a jose key function. */
  jwks: URL | string | JSONWebKeySet | JWTVerifyGetKey;
  /** Expected `iss` (the marketplace). */
  issuer: string;
  /** Expected `aud`: this service's id (`service.id`). */
  audience: string;
  /** Accepted algorithms. Symmetric algorithms and `none` are never accepted. @default ['RS256', 'ES256'] */
  algorithms?: ReadonlyArray<'RS256' | 'ES256' | 'RS384' | 'RS512' | 'ES384' | 'ES512' | 'PS256' | 'EdDSA'>;
  /** Claim holding the tenant id. @default 'tenant_id' */
  tenantClaim?: string;
  /** Longest accepted token life (`iat` to now); login tokens are short-lived. @default 300 */
  maxTokenAgeSeconds?: number;
  /** Clock skew allowed on `exp`/`nbf`/`iat`. @default 30 */
  clockToleranceSeconds?: number;
  /** Where used `jti`s are remembered. @default createMemoryReplayStore() (one instance only) */
  replayStore?: ReplayStore;
}

/** A verified marketplace login. */
export interface MarketplaceLogin {
  tenantId: TenantId;
  user: { id: string; email?: string; name?: string; roles: string[] };
  /** Every verified claim. */
  claims: JWTPayload;
  expiresAt: Date;
}

/** Verifies marketplace login tokens. */
export interface MarketplaceSso {
  /**
   * Verifies a login token once. `expectedTenant`: the tenant the login is for (e.g. the host's),
   * when known; another tenant in the token is refused.
   * @throws MtPaasError `UNAUTHENTICATED` (401) or `CROSS_TENANT_ACCESS` (403)
   */
  verify(token: string, options?: { expectedTenant?: string }): Promise<MarketplaceLogin>;
}

const FORBIDDEN_ALGORITHMS = /^(none|HS\d+)$/i;

function refused(message: string, reason: string, cause?: unknown): MtPaasError {
  return new MtPaasError('UNAUTHENTICATED', message, { details: { reason }, cause });
}

function reasonOf(error: unknown): string {
  if (error instanceof joseErrors.JWTExpired) return 'expired';
  if (error instanceof joseErrors.JWTClaimValidationFailed) return `claim_${error.claim}`;
  if (error instanceof joseErrors.JOSEAlgNotAllowed) return 'algorithm_not_allowed';
  if (error instanceof joseErrors.JWKSNoMatchingKey) return 'unknown_key';
  if (error instanceof joseErrors.JWSSignatureVerificationFailed) return 'bad_signature';
  return 'invalid_token';
}

/**
 * Marketplace SSO (seed 001 `auth.marketplace_sso`): the marketplace signs a short-lived login
 * token (RS256/ES256) for a user of a tenant; this verifies it against the marketplace's JWKS with
 * `jose` — issuer, audience = the service id, expiry, the tenant claim, and a one-time `jti`.
 *
 * @example
 * const sso = createMarketplaceSso({ jwks: 'https://market.example/.well-known/jwks.json', issuer: 'https://market.example', audience: 'keli_tutor' });
 * const login = await sso.verify(token); // { tenantId, user, claims }
 */
export function createMarketplaceSso(options: MarketplaceSsoOptions): MarketplaceSso {
  const algorithms = [...(options.algorithms ?? ['RS256', 'ES256'])];
  const unsafe = algorithms.find((algorithm) => FORBIDDEN_ALGORITHMS.test(algorithm));
  if (unsafe !== undefined || algorithms.length === 0) {
    throw new MtPaasError(
      'CONFIG_INVALID',
      'Marketplace SSO accepts only asymmetric algorithms (RS256, ES256, …).',
    );
  }
  const getKey: JWTVerifyGetKey =
    typeof options.jwks === 'function'
      ? options.jwks
      : typeof options.jwks === 'string' || options.jwks instanceof URL
        ? createRemoteJWKSet(new URL(options.jwks))
        : createLocalJWKSet(options.jwks);
  const tenantClaim = options.tenantClaim ?? 'tenant_id';
  const replayStore = options.replayStore ?? createMemoryReplayStore();
  return {
    async verify(token, verifyOptions = {}) {
      if (typeof token !== 'string' || token.length === 0 || token.length > 8192) {
        throw refused('Missing login token: the marketplace sends it as ?token=…', 'missing_token');
      }
      let payload: JWTPayload;
      try {
        ({ payload } = await jwtVerify(token, getKey, {
          issuer: options.issuer,
          audience: options.audience,
          algorithms,
          maxTokenAge: options.maxTokenAgeSeconds ?? 300,
          clockTolerance: options.clockToleranceSeconds ?? 30,
          requiredClaims: ['exp', 'iat', 'jti', 'sub'],
        }));
      } catch (error) {
        throw refused(
          'The marketplace login token was refused (expired, not for this service, or not signed by the marketplace); start the login again from the marketplace.',
          reasonOf(error),
          error,
        );
      }
      const tenant = payload[tenantClaim];
      const problem = tenantIdProblem(tenant);
      if (problem !== undefined) {
        throw refused(
          `The login token's "${tenantClaim}" claim is not a tenant id (${problem}).`,
          'bad_tenant_claim',
        );
      }
      const tenantId = tenant as TenantId;
      if (verifyOptions.expectedTenant !== undefined && verifyOptions.expectedTenant !== tenantId) {
        throw new MtPaasError(
          'CROSS_TENANT_ACCESS',
          'The login token is for another tenant; start the login again from this tenant in the marketplace.',
        );
      }
      const jti = payload.jti as string;
      const expiresAt = new Date((payload.exp as number) * 1000);
      if (!(await replayStore.claim(jti, expiresAt))) {
        throw refused(
          'This login token was already used; start the login again from the marketplace.',
          'replayed',
        );
      }
      const roles = Array.isArray(payload.roles)
        ? payload.roles.filter((role): role is string => typeof role === 'string')
        : [];
      return {
        tenantId,
        user: {
          id: payload.sub as string,
          ...(typeof payload.email === 'string' ? { email: payload.email } : {}),
          ...(typeof payload.name === 'string' ? { name: payload.name } : {}),
          roles,
        },
        claims: payload,
        expiresAt,
      };
    },
  };
}
