import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEST_ENV, tutorClient } from './__fixtures__/tutor-client.js';
import { type RunningTutor, startTutor } from './server.js';

/**
 * "Log in with the marketplace": a local issuer publishes its JWKS like market-sim does, signs RS256
 * login tokens, and the tutor turns a valid one into its own session — once.
 */
describe('marketplace SSO callback', () => {
  let issuerServer: Server;
  let issuer: string;
  let sign: (
    claims: Record<string, unknown>,
    options?: { audience?: string; expiresIn?: string },
  ) => Promise<string>;
  let tutor: RunningTutor;
  let client: ReturnType<typeof tutorClient>;

  beforeAll(async () => {
    const { publicKey, privateKey } = await generateKeyPair('RS256');
    const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' };
    issuerServer = createServer((request, response) => {
      if (request.url === '/.well-known/jwks.json') {
        response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [jwk] }));
      } else response.writeHead(404).end();
    });
    await new Promise<void>((resolve) => issuerServer.listen(0, '127.0.0.1', resolve));
    issuer = `http://127.0.0.1:${(issuerServer.address() as AddressInfo).port}`;
    sign = (claims, options = {}) =>
      new SignJWT(claims)
        .setProtectedHeader({ alg: 'RS256', kid: 'k1' })
        .setIssuer(issuer)
        .setAudience(options.audience ?? 'keli_tutor')
        .setIssuedAt()
        .setExpirationTime(options.expiresIn ?? '2m')
        .setJti(crypto.randomUUID())
        .sign(privateKey);
    tutor = await startTutor({
      port: 0,
      env: { ...TEST_ENV, TUTOR_DATA_DIR: 'memory', MARKET_SSO_ISSUER: issuer },
      startTimers: false,
    });
    client = tutorClient(tutor.url);
    await client.createTenant('hallym', '한림대학교', 'admin@hallym.ac.kr');
    await client.createTenant('gwangju', 'Gwangju University', 'admin@gwangju.ac.kr');
  }, 60_000);

  afterAll(async () => {
    await tutor?.close();
    issuerServer?.close();
  });

  const member = (extra: Record<string, unknown> = {}) => ({
    sub: '42',
    tenant_id: 'hallym',
    email: 'kim@hallym.ac.kr',
    name: '김교수',
    roles: ['professor'],
    ...extra,
  });

  it('logs a new member in as an instructor, once per token', async () => {
    const token = await sign(member());
    const session = await client.call('GET', `/api/auth/sso/callback?token=${token}`, {
      headers: { accept: 'application/json' },
    });
    expect(session.status).toBe(200);
    expect(session.body).toMatchObject({
      tenant: { id: 'hallym' },
      user: { email: 'kim@hallym.ac.kr', role: 'instructor', hasPassword: false },
    });
    expect(
      (await client.call('GET', '/api/courses', { tenant: 'hallym', token: session.body.token })).status,
    ).toBe(200);
    const replay = await client.call('GET', `/api/auth/sso/callback?token=${token}`, {
      headers: { accept: 'application/json' },
    });
    expect(replay.status).toBe(401);
  });

  it('gives the onboarded admin its admin session and lets it set a password', async () => {
    const token = await sign(member({ sub: '1', email: 'admin@hallym.ac.kr', roles: ['admin'] }));
    const session = await client.call('GET', `/api/auth/sso/callback?token=${token}`, {
      headers: { accept: 'application/json' },
    });
    expect(session.body.user).toMatchObject({ email: 'admin@hallym.ac.kr', role: 'admin' });
    const set = await client.call('PUT', '/api/auth/password', {
      tenant: 'hallym',
      token: session.body.token,
      body: { password: 'set after sso login' },
    });
    expect(set.status).toBe(200);
    const changeWithout = await client.call('PUT', '/api/auth/password', {
      tenant: 'hallym',
      token: session.body.token,
      body: { password: 'changed without the old one' },
    });
    expect(changeWithout.status).toBe(401);
    const login = await client.call('POST', '/api/auth/login', {
      tenant: 'hallym',
      body: { email: 'admin@hallym.ac.kr', password: 'set after sso login' },
    });
    expect(login.status).toBe(200);
  });

  it('redirects a browser to the page with the session in the fragment, also on the seed path', async () => {
    for (const path of ['/api/auth/sso/callback', '/auth/marketplace/callback']) {
      const token = await sign(member());
      const answer = await client.call('GET', `${path}?token=${token}&tenant=hallym`);
      expect(answer.status).toBe(302);
      expect(answer.headers.get('location')).toMatch(/^\/\?tenant=hallym#token=ey/);
    }
  });

  it('refuses tokens for another service, expired, unsigned, or naming another tenant than the address', async () => {
    const wrongAudience = await sign(member(), { audience: 'other_service' });
    expect((await client.call('GET', `/api/auth/sso/callback?token=${wrongAudience}`)).status).toBe(401);
    const expired = await sign(member({ iat: Math.floor(Date.now() / 1000) - 600 }), { expiresIn: '-5m' });
    expect((await client.call('GET', `/api/auth/sso/callback?token=${expired}`)).status).toBe(401);
    const [header, payload] = (await sign(member())).split('.');
    const none = `${Buffer.from(JSON.stringify({ alg: 'none' })).toString('base64url')}.${payload}.`;
    expect((await client.call('GET', `/api/auth/sso/callback?token=${none}`)).status).toBe(401);
    void header;
    const crossed = await sign(member({ tenant_id: 'gwangju' }));
    const answer = await client.call('GET', `/api/auth/sso/callback?token=${crossed}&tenant=hallym`);
    expect(answer.status).toBe(403);
    expect(answer.body.error.code).toBe('CROSS_TENANT_ACCESS');
  });
});
