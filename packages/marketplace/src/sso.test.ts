import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, type JSONWebKeySet, type JWK, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { noopHandlers } from './__fixtures__/handlers.js';
import { createMarketplaceReceiver } from './receiver.js';
import { createMarketplaceSso, createMemoryReplayStore, type MarketplaceSso } from './sso.js';

const ISSUER = 'https://svcmkt.k-university.ai';
const AUDIENCE = 'keli_tutor';

type Keys = { privateKey: Awaited<ReturnType<typeof generateKeyPair>>['privateKey']; publicJwk: JWK };

async function keyPair(alg: 'RS256' | 'ES256', kid: string): Promise<Keys> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  return { privateKey, publicJwk: { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' } };
}

let rsa: Keys;
let ec: Keys;
let stranger: Keys;
let jwks: JSONWebKeySet;

beforeAll(async () => {
  rsa = await keyPair('RS256', 'market-rsa-1');
  ec = await keyPair('ES256', 'market-ec-1');
  stranger = await keyPair('RS256', 'market-rsa-9');
  jwks = { keys: [rsa.publicJwk, ec.publicJwk] };
});

function loginToken(
  options: {
    keys?: Keys;
    alg?: 'RS256' | 'ES256';
    kid?: string;
    claims?: Record<string, unknown>;
    issuer?: string;
    audience?: string;
    expiresIn?: string | number;
    issuedAt?: number;
    jti?: string | null;
  } = {},
): Promise<string> {
  const keys = options.keys ?? rsa;
  const jwt = new SignJWT({
    tenant_id: 'hallym',
    email: 'kim@hallym.ac.kr',
    name: '김교수',
    roles: ['instructor'],
    ...options.claims,
  })
    .setProtectedHeader({ alg: options.alg ?? 'RS256', kid: options.kid ?? (keys.publicJwk.kid as string) })
    .setSubject('user_42')
    .setIssuer(options.issuer ?? ISSUER)
    .setAudience(options.audience ?? AUDIENCE)
    .setIssuedAt(options.issuedAt)
    .setExpirationTime(options.expiresIn ?? '2m');
  if (options.jti !== null) jwt.setJti(options.jti ?? randomUUID());
  return jwt.sign(keys.privateKey);
}

function sso(): MarketplaceSso {
  return createMarketplaceSso({
    jwks,
    issuer: ISSUER,
    audience: AUDIENCE,
    replayStore: createMemoryReplayStore(),
  });
}

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

async function reasonOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
    return 'accepted';
  } catch (error) {
    const known = error as { code?: string; details?: { reason?: string } };
    return known.details?.reason ?? known.code ?? 'unknown';
  }
}

describe('marketplace SSO', () => {
  it('accepts an RS256 login and hands over the user and tenant', async () => {
    const login = await sso().verify(await loginToken());
    expect(login.tenantId).toBe('hallym');
    expect(login.user).toEqual({
      id: 'user_42',
      email: 'kim@hallym.ac.kr',
      name: '김교수',
      roles: ['instructor'],
    });
  });

  it('accepts an ES256 login', async () => {
    const login = await sso().verify(await loginToken({ keys: ec, alg: 'ES256' }));
    expect(login.tenantId).toBe('hallym');
  });

  it('accepts the expected tenant and refuses another (403 CROSS_TENANT_ACCESS)', async () => {
    const verifier = sso();
    expect(await reasonOf(verifier.verify(await loginToken(), { expectedTenant: 'hallym' }))).toBe(
      'accepted',
    );
    expect(await reasonOf(verifier.verify(await loginToken(), { expectedTenant: 'korea' }))).toBe(
      'CROSS_TENANT_ACCESS',
    );
  });

  it('refuses a replayed jti', async () => {
    const verifier = sso();
    const token = await loginToken();
    expect(await reasonOf(verifier.verify(token))).toBe('accepted');
    expect(await reasonOf(verifier.verify(token))).toBe('replayed');
  });

  it.each([
    ['an expired token', () => loginToken({ expiresIn: Math.floor(Date.now() / 1000) - 120 }), 'expired'],
    ['a wrong audience', () => loginToken({ audience: 'other_service' }), 'claim_aud'],
    ['a wrong issuer', () => loginToken({ issuer: 'https://evil.example' }), 'claim_iss'],
    [
      'a token older than 5 minutes',
      () => loginToken({ issuedAt: Math.floor(Date.now() / 1000) - 600, expiresIn: '1h' }),
      'expired',
    ],
    ['a missing jti', () => loginToken({ jti: null }), 'claim_jti'],
    ['an unknown kid', () => loginToken({ keys: stranger }), 'unknown_key'],
    [
      'a known kid with a foreign key',
      () => loginToken({ keys: stranger, kid: 'market-rsa-1' }),
      'bad_signature',
    ],
    ['an invalid tenant claim', () => loginToken({ claims: { tenant_id: 'Hallym' } }), 'bad_tenant_claim'],
    ['a missing tenant claim', () => loginToken({ claims: { tenant_id: undefined } }), 'bad_tenant_claim'],
    ['a reserved tenant', () => loginToken({ claims: { tenant_id: 'public' } }), 'bad_tenant_claim'],
  ])('refuses %s', async (_label, make, reason) => {
    expect(await reasonOf(sso().verify(await make()))).toBe(reason);
  });

  it('refuses alg none', async () => {
    const now = Math.floor(Date.now() / 1000);
    const token = `${b64({ alg: 'none', typ: 'JWT' })}.${b64({ sub: 'u', tenant_id: 'hallym', iss: ISSUER, aud: AUDIENCE, iat: now, exp: now + 60, jti: randomUUID() })}.`;
    expect(await reasonOf(sso().verify(token))).not.toBe('accepted');
  });

  it('refuses HS256 signed with the public key as the secret (algorithm confusion)', async () => {
    const secret = new TextEncoder().encode(JSON.stringify(rsa.publicJwk));
    const token = await new SignJWT({ tenant_id: 'hallym' })
      .setProtectedHeader({ alg: 'HS256', kid: 'market-rsa-1' })
      .setSubject('u')
      .setIssuer(ISSUER)
      .setAudience(AUDIENCE)
      .setIssuedAt()
      .setJti(randomUUID())
      .setExpirationTime('2m')
      .sign(secret);
    expect(await reasonOf(sso().verify(token))).toBe('algorithm_not_allowed');
  });

  it.each(['', 'not-a-jwt', 'a.b.c', 'x'.repeat(9000)])('refuses the token %j', async (token) => {
    expect(await reasonOf(sso().verify(token))).not.toBe('accepted');
  });

  it('refuses to be configured with a symmetric algorithm or none', () => {
    for (const algorithm of ['HS256', 'none']) {
      expect(() =>
        createMarketplaceSso({
          jwks,
          issuer: ISSUER,
          audience: AUDIENCE,
          algorithms: [algorithm as 'RS256'],
        }),
      ).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID' }));
    }
  });

  describe('against the marketplace JWKS URL, through the callback route', () => {
    let server: http.Server;
    let jwksUrl: string;
    beforeAll(async () => {
      server = http.createServer((_request, response) => {
        response.setHeader('content-type', 'application/json');
        response.end(JSON.stringify(jwks));
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      jwksUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/.well-known/jwks.json`;
    });
    afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

    it('starts the app session on GET /auth/marketplace/callback?token=… and refuses a replay', async () => {
      const sessions: string[] = [];
      const receiver = createMarketplaceReceiver({
        serviceId: AUDIENCE,
        sso: createMarketplaceSso({ jwks: jwksUrl, issuer: ISSUER, audience: AUDIENCE }),
        handlers: noopHandlers({
          onSsoLogin(login) {
            sessions.push(`${login.tenantId}/${login.user.id}`);
            return {
              redirectTo: `/?tenant=${login.tenantId}`,
              headers: { 'set-cookie': ['session=abc; HttpOnly'] },
            };
          },
        }),
      });
      const token = await loginToken();
      const request = {
        method: 'GET',
        path: '/auth/marketplace/callback',
        query: `token=${token}`,
        headers: {},
      };
      const first = await receiver.handle(request);
      expect(first.status).toBe(302);
      expect(first.headers.location).toBe('/?tenant=hallym');
      expect(first.headers['set-cookie']).toEqual(['session=abc; HttpOnly']);
      const replay = await receiver.handle(request);
      expect(replay.status).toBe(401);
      expect(JSON.parse(replay.body).error.code).toBe('UNAUTHENTICATED');
      const wrongTenant = await receiver.handle({
        ...request,
        query: `token=${await loginToken()}&tenant=korea`,
      });
      expect(wrongTenant.status).toBe(403);
      expect(sessions).toEqual(['hallym/user_42']);
    });
  });
});
