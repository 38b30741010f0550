import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, exportSPKI, generateKeyPair, SignJWT } from 'jose';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { flipSignature } from './__fixtures__/tokens.js';
import { bearerToken, createJwtVerifier } from './jwt-auth.js';

const secret = 'a-very-long-test-secret-0123456789abcdef';
const issuer = 'https://issuer.test';
const audience = 'tutor';

async function hsToken(
  claims: Record<string, unknown>,
  options: { exp?: number | string; alg?: string; key?: Uint8Array } = {},
) {
  return new SignJWT(claims)
    .setProtectedHeader({ alg: options.alg ?? 'HS256' })
    .setIssuer(issuer)
    .setAudience(audience)
    .setIssuedAt()
    .setExpirationTime(options.exp ?? '5m')
    .sign(options.key ?? new TextEncoder().encode(secret));
}

describe('createJwtVerifier (HS256)', () => {
  const verifier = createJwtVerifier({ secret, issuer, audience });

  it('verifies a good token and reads tenant and roles', async () => {
    const verified = await verifier.verify(
      await hsToken({ sub: 'u1', tenant_id: 'univ_8', roles: ['admin', 'x'] }),
    );
    expect(verified).toMatchObject({ subject: 'u1', tenantClaim: 'univ_8', roles: ['admin', 'x'] });
    const spaced = await verifier.verify(await hsToken({ sub: 'u1', roles: 'a b' }));
    expect(spaced.roles).toEqual(['a', 'b']);
  });

  it('accepts a token expired within the clock tolerance and refuses one past it', async () => {
    const now = Math.floor(Date.now() / 1000);
    await expect(verifier.verify(await hsToken({ sub: 'u' }, { exp: now - 10 }))).resolves.toBeDefined();
    await expect(verifier.verify(await hsToken({ sub: 'u' }, { exp: now - 120 }))).rejects.toMatchObject({
      code: 'UNAUTHENTICATED',
      details: { reason: 'the token has expired' },
    });
  });

  it('refuses alg none, HS512 outside the allow-list, tokens without exp and wrong keys', async () => {
    const encode = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
    const none = `${encode({ alg: 'none' })}.${encode({ sub: 'u', iss: issuer, aud: audience, exp: 9_999_999_999 })}.`;
    await expect(verifier.verify(none)).rejects.toMatchObject({ code: 'UNAUTHENTICATED' });
    await expect(verifier.verify(await hsToken({ sub: 'u' }, { alg: 'HS512' }))).rejects.toMatchObject({
      details: { reason: 'the signing algorithm is not allowed' },
    });
    const noExp = await new SignJWT({ sub: 'u' })
      .setProtectedHeader({ alg: 'HS256' })
      .setIssuer(issuer)
      .setAudience(audience)
      .sign(new TextEncoder().encode(secret));
    await expect(verifier.verify(noExp)).rejects.toMatchObject({ code: 'UNAUTHENTICATED' });
    const otherKey = new TextEncoder().encode('another-secret-that-is-long-enough-0000');
    await expect(verifier.verify(await hsToken({ sub: 'u' }, { key: otherKey }))).rejects.toMatchObject({
      details: { reason: 'the signature does not verify' },
    });
  });

  it('refuses bad configurations at build time', () => {
    expect(() => createJwtVerifier({ secret: 'short' })).toThrow(
      expect.objectContaining({ code: 'CONFIG_INVALID' }),
    );
    expect(() => createJwtVerifier({ secret, algorithms: ['RS256'] })).toThrow(/HS256/);
    expect(() => createJwtVerifier({ secret, algorithms: ['none'] })).toThrow(/none/);
    expect(() => createJwtVerifier({ jwksUrl: 'http://127.0.0.1/jwks', algorithms: ['HS256'] })).toThrow(
      /asymmetric/,
    );
    expect(() => createJwtVerifier({})).toThrow(/exactly one/);
  });

  it('caps the clock tolerance at 60 s', async () => {
    const lenient = createJwtVerifier({ secret, issuer, audience, clockToleranceSeconds: 600 });
    const now = Math.floor(Date.now() / 1000);
    await expect(lenient.verify(await hsToken({ sub: 'u' }, { exp: now - 50 }))).resolves.toBeDefined();
    await expect(lenient.verify(await hsToken({ sub: 'u' }, { exp: now - 120 }))).rejects.toMatchObject({
      details: { reason: 'the token has expired' },
    });
  });

  it('caches verified tokens until they expire', async () => {
    const cached = createJwtVerifier({ secret, issuer, audience, cache: { max: 10 } });
    const token = await hsToken({ sub: 'u' });
    const first = await cached.verify(token);
    expect(await cached.verify(token)).toBe(first);
    const expired = await hsToken({ sub: 'u' }, { exp: Math.floor(Date.now() / 1000) - 300 });
    await expect(cached.verify(expired)).rejects.toMatchObject({ code: 'UNAUTHENTICATED' });
  });

  it('keys a long token by its hash: cached, and a token differing in one byte is verified afresh', async () => {
    const cached = createJwtVerifier({ secret, issuer, audience, cache: { max: 10 } });
    const long = await hsToken({ sub: 'u', tenant_id: 'univ_8', pad: 'x'.repeat(1500) });
    expect(long.length).toBeGreaterThan(1024);
    const first = await cached.verify(long);
    expect(await cached.verify(long)).toBe(first);
    expect(cached.peek(long)).toBe(first);
    // The signature's first character changed (all six of its bits are signature bits; the last one's low
    // bits are padding a decoder may ignore): another key, refused by the signature check.
    const forged = flipSignature(long);
    expect(cached.peek(forged)).toBeUndefined();
    await expect(cached.verify(forged)).rejects.toMatchObject({ code: 'UNAUTHENTICATED' });
    // A short token one byte away from a cached one is no hit either.
    const short = await hsToken({ sub: 'u', tenant_id: 'univ_8' });
    await cached.verify(short);
    const shortForged = flipSignature(short);
    expect(cached.peek(shortForged)).toBeUndefined();
    await expect(cached.verify(shortForged)).rejects.toMatchObject({ code: 'UNAUTHENTICATED' });
  });

  it('keeps the token cache bounded', async () => {
    const cached = createJwtVerifier({ secret, issuer, audience, cache: { max: 2 } });
    const [a, b, c] = await Promise.all(['a', 'b', 'c'].map((sub) => hsToken({ sub })));
    const firstA = await cached.verify(a!);
    await cached.verify(b!);
    const firstC = await cached.verify(c!);
    expect(await cached.verify(c!)).toBe(firstC);
    const againA = await cached.verify(a!);
    expect(againA).not.toBe(firstA); // evicted by b and c: verified again
    expect(againA).toEqual(firstA);
  });

  describe('with a moving clock', () => {
    afterEach(() => {
      vi.useRealTimers();
    });

    it('stops answering from the cache once the token expired', async () => {
      vi.useFakeTimers({ toFake: ['Date'] });
      vi.setSystemTime(new Date('2026-06-01T12:00:00Z'));
      const cached = createJwtVerifier({ secret, issuer, audience, cache: { max: 10 } });
      const token = await hsToken({ sub: 'u' }, { exp: Math.floor(Date.now() / 1000) + 60 });
      const first = await cached.verify(token);
      expect(await cached.verify(token)).toBe(first);
      vi.setSystemTime(new Date('2026-06-01T12:02:00Z')); // 60 s past exp, beyond the 30 s tolerance
      await expect(cached.verify(token)).rejects.toMatchObject({
        code: 'UNAUTHENTICATED',
        details: { reason: 'the token has expired' },
      });
    });
  });

  it('reads bearer tokens strictly', () => {
    expect(bearerToken('Bearer abc.def.ghi')).toBe('abc.def.ghi');
    expect(bearerToken('bearer   abc')).toBe('abc');
    expect(bearerToken('Basic abc')).toBeUndefined();
    expect(bearerToken('Bearer a b')).toBeUndefined();
  });
});

describe('createJwtVerifier (JWKS)', () => {
  let server: http.Server;
  let jwksUrl: string;
  let rsa: Awaited<ReturnType<typeof generateKeyPair>>;
  let ec: Awaited<ReturnType<typeof generateKeyPair>>;

  beforeAll(async () => {
    rsa = await generateKeyPair('RS256');
    ec = await generateKeyPair('ES256');
    const keys = [
      { ...(await exportJWK(rsa.publicKey)), kid: 'rsa-1', alg: 'RS256', use: 'sig' },
      { ...(await exportJWK(ec.publicKey)), kid: 'ec-1', alg: 'ES256', use: 'sig' },
    ];
    server = http.createServer((_request, response) => {
      response.writeHead(200, { 'content-type': 'application/json' });
      response.end(JSON.stringify({ keys }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    jwksUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/.well-known/jwks.json`;
  });

  afterAll(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  async function sign(
    alg: 'RS256' | 'ES256',
    kid: string,
    key: Parameters<SignJWT['sign']>[0],
    claims: Record<string, unknown> = {},
  ) {
    return new SignJWT({ sub: 'u1', tenant_id: 'univ_8', iss: issuer, aud: audience, ...claims })
      .setProtectedHeader({ alg, kid })
      .setExpirationTime('5m')
      .sign(key);
  }

  it('verifies RS256 and ES256 tokens against the JWKS', async () => {
    const verifier = createJwtVerifier({ jwksUrl, issuer, audience });
    expect((await verifier.verify(await sign('RS256', 'rsa-1', rsa.privateKey))).tenantClaim).toBe('univ_8');
    expect((await verifier.verify(await sign('ES256', 'ec-1', ec.privateKey))).subject).toBe('u1');
  });

  it('refuses algorithm confusion: an HS256 token keyed with the RSA public key', async () => {
    const verifier = createJwtVerifier({ jwksUrl, issuer, audience });
    const publicPem = await exportSPKI(rsa.publicKey);
    const confused = await new SignJWT({ sub: 'attacker', tenant_id: 'univ_8' })
      .setProtectedHeader({ alg: 'HS256', kid: 'rsa-1' })
      .setIssuer(issuer)
      .setAudience(audience)
      .setExpirationTime('5m')
      .sign(new TextEncoder().encode(publicPem));
    await expect(verifier.verify(confused)).rejects.toMatchObject({ code: 'UNAUTHENTICATED' });
  });

  it('verifies against a PEM public key for exactly one algorithm', async () => {
    const verifier = createJwtVerifier({
      publicKey: await exportSPKI(rsa.publicKey),
      algorithms: ['RS256'],
      issuer,
      audience,
    });
    expect((await verifier.verify(await sign('RS256', 'rsa-1', rsa.privateKey))).subject).toBe('u1');
    await expect(verifier.verify(await sign('ES256', 'ec-1', ec.privateKey))).rejects.toMatchObject({
      code: 'UNAUTHENTICATED',
    });
    expect(() => createJwtVerifier({ publicKey: 'pem', algorithms: ['RS256', 'ES256'] })).toThrow(
      /exactly one/,
    );
  });

  it('refuses wrong issuer / audience and keys not in the JWKS', async () => {
    const verifier = createJwtVerifier({ jwksUrl, issuer, audience });
    const stranger = await generateKeyPair('RS256');
    await expect(verifier.verify(await sign('RS256', 'rsa-2', stranger.privateKey))).rejects.toMatchObject({
      code: 'UNAUTHENTICATED',
    });
    await expect(
      verifier.verify(await sign('RS256', 'rsa-1', rsa.privateKey, { iss: 'https://evil.test' })),
    ).rejects.toMatchObject({ code: 'UNAUTHENTICATED' });
    await expect(
      verifier.verify(await sign('RS256', 'rsa-1', rsa.privateKey, { aud: 'someone-else' })),
    ).rejects.toMatchObject({ code: 'UNAUTHENTICATED' });
    const esOnly = createJwtVerifier({ jwksUrl, issuer, audience, algorithms: ['ES256'] });
    await expect(esOnly.verify(await sign('RS256', 'rsa-1', rsa.privateKey))).rejects.toMatchObject({
      details: { reason: 'the signing algorithm is not allowed' },
    });
  });
});
