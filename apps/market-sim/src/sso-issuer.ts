import { randomUUID } from 'node:crypto';
import { MtPaasError } from '@mt-paas/context';
import { desc, eq, isNull } from 'drizzle-orm';
import { exportJWK, generateKeyPair, importJWK, type JWK, SignJWT } from 'jose';
import type { Db } from './outbox.js';
import { ssoKeys } from './schema.js';

/** A signing algorithm of the marketplace's login tokens (asymmetric only, as the service requires). */
export type SsoAlgorithm = 'RS256' | 'ES256';

/** Options of {@link createSsoIssuer}. */
export interface SsoIssuerOptions {
  db: Db;
  /** `iss` of every token (the simulator's public URL); a function when it is known only after listening. */
  issuer: string | (() => string);
  /** Algorithm of new keys. @default 'RS256' */
  algorithm?: SsoAlgorithm;
  /** How long a rotated-out key stays in the JWKS. @default 3600 */
  retiredKeySeconds?: number;
  /** Lifetime of a login token. @default 120 */
  tokenSeconds?: number;
}

/** The claims of a login token besides the registered ones. */
export interface LoginClaims {
  serviceId: string;
  tenantId: string;
  userId: string;
  email?: string;
  name?: string;
  roles?: readonly string[];
}

/** The market's SSO issuer: keys in the database, the JWKS, and short-lived login tokens. */
export interface SsoIssuer {
  /** Creates the first key when there is none. */
  ensureKey(): Promise<void>;
  /** `{ keys: [...] }`: the active key and retired keys that have not expired. */
  jwks(): Promise<{ keys: JWK[] }>;
  /** A new active key; the old one stays published for `retiredKeySeconds`. */
  rotate(algorithm?: SsoAlgorithm): Promise<{ kid: string; alg: SsoAlgorithm; retired: string[] }>;
  /** Signs a login token with the active key. */
  issue(claims: LoginClaims): Promise<{ token: string; kid: string; expiresAt: Date; jti: string }>;
}

export function createSsoIssuer(options: SsoIssuerOptions): SsoIssuer {
  const { db } = options;
  const defaultAlg = options.algorithm ?? 'RS256';

  async function addKey(alg: SsoAlgorithm) {
    const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
    const kid = `market-${alg.toLowerCase()}-${randomUUID().slice(0, 8)}`;
    const privateJwk = { ...(await exportJWK(privateKey)), kid, alg };
    const publicJwk = { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' };
    await db.insert(ssoKeys).values({ kid, alg, privateJwk, publicJwk });
    return kid;
  }

  async function activeKey() {
    const [key] = await db
      .select()
      .from(ssoKeys)
      .where(isNull(ssoKeys.retiredAt))
      .orderBy(desc(ssoKeys.createdAt))
      .limit(1);
    return key;
  }

  return {
    async ensureKey() {
      if ((await activeKey()) === undefined) await addKey(defaultAlg);
    },
    async jwks() {
      const now = Date.now();
      const rows = await db.select().from(ssoKeys).orderBy(desc(ssoKeys.createdAt));
      return {
        keys: rows
          .filter((row) => row.expiresAt === null || row.expiresAt.getTime() > now)
          .map((row) => row.publicJwk as JWK),
      };
    },
    async rotate(algorithm) {
      const alg = algorithm ?? ((await activeKey())?.alg as SsoAlgorithm | undefined) ?? defaultAlg;
      const now = new Date();
      const retiring = await db.select().from(ssoKeys).where(isNull(ssoKeys.retiredAt));
      for (const key of retiring) {
        await db
          .update(ssoKeys)
          .set({
            retiredAt: now,
            expiresAt: new Date(now.getTime() + (options.retiredKeySeconds ?? 3600) * 1000),
          })
          .where(eq(ssoKeys.kid, key.kid));
      }
      const kid = await addKey(alg);
      return { kid, alg, retired: retiring.map((key) => key.kid) };
    },
    async issue(claims) {
      const key = await activeKey();
      if (key === undefined) {
        throw new MtPaasError(
          'CONFIG_INVALID',
          'The simulator has no SSO key; POST /sim/v1/sso/rotate creates one.',
        );
      }
      const privateKey = await importJWK(key.privateJwk as JWK, key.alg);
      const jti = randomUUID();
      const now = Math.floor(Date.now() / 1000);
      const expiresAt = new Date((now + (options.tokenSeconds ?? 120)) * 1000);
      const token = await new SignJWT({
        tenant_id: claims.tenantId,
        ...(claims.email === undefined ? {} : { email: claims.email }),
        ...(claims.name === undefined ? {} : { name: claims.name }),
        roles: [...(claims.roles ?? [])],
      })
        .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'JWT' })
        .setIssuer(typeof options.issuer === 'function' ? options.issuer() : options.issuer)
        .setAudience(claims.serviceId)
        .setSubject(claims.userId)
        .setIssuedAt(now)
        .setExpirationTime(Math.floor(expiresAt.getTime() / 1000))
        .setJti(jti)
        .sign(privateKey);
      return { token, kid: key.kid, expiresAt, jti };
    },
  };
}
