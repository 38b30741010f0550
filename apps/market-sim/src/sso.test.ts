import { isMtPaasError } from '@mt-paas/context';
import { createMarketplaceSso } from '@mt-paas/marketplace';
import { createLocalJWKSet, createRemoteJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, seedApplication } from './__fixtures__/api.js';
import { startTestSim, type TestSim } from './__fixtures__/sim.js';

/** The SSO issuer: its JWKS, key rotation, and login tokens as the marketplace package's verifier expects. */
describe('SSO issuer', () => {
  let sim: TestSim;
  let userId: number;

  beforeAll(async () => {
    sim = await startTestSim({ ssoRetiredKeySeconds: 3600 });
    ({ userId } = await seedApplication(sim, {
      serviceId: 'tutor',
      tenantId: 'hallym',
      baseUrl: 'http://tutor.test',
      protocol: 'signed',
    }));
  }, 60_000);
  afterAll(async () => {
    await sim?.close();
  });

  const token = async (body: Record<string, unknown> = {}) =>
    (await api(sim, 'POST', '/sim/v1/sso/tokens', { service_id: 'tutor', user_id: userId, ...body })).body;
  const verifier = () =>
    createMarketplaceSso({ jwks: `${sim.url}/.well-known/jwks.json`, issuer: sim.url, audience: 'tutor' });

  it('issues RS256 tokens that jose verifies against the JWKS, with the claims the service expects', async () => {
    const issued = await token({ roles: ['instructor'] });
    const jwks = createRemoteJWKSet(new URL(`${sim.url}/.well-known/jwks.json`));
    const { payload, protectedHeader } = await jwtVerify(issued.token, jwks, {
      issuer: sim.url,
      audience: 'tutor',
      algorithms: ['RS256'],
    });
    expect(protectedHeader).toMatchObject({ alg: 'RS256', kid: issued.kid });
    expect(payload).toMatchObject({
      sub: `user_${userId}`,
      tenant_id: 'hallym',
      email: 'admin@hallym.ac.kr',
      name: 'Admin',
      roles: ['instructor'],
      jti: issued.jti,
    });
    expect((payload.exp as number) - (payload.iat as number)).toBe(120);
    const login = await verifier().verify(issued.token, { expectedTenant: 'hallym' });
    expect(login).toMatchObject({
      tenantId: 'hallym',
      user: { id: `user_${userId}`, roles: ['instructor'] },
    });
    // one use only, and never for another service or tenant
    await expect(verifier().verify(issued.token)).resolves.toBeDefined(); // a new verifier has its own replay store
    const sso = verifier();
    const fresh = await token();
    await sso.verify(fresh.token);
    const replay = await sso.verify(fresh.token).catch((error: unknown) => error);
    expect(isMtPaasError(replay, 'UNAUTHENTICATED')).toBe(true);
    const elsewhere = createMarketplaceSso({
      jwks: `${sim.url}/.well-known/jwks.json`,
      issuer: sim.url,
      audience: 'other',
    });
    expect(
      isMtPaasError(
        await elsewhere.verify((await token()).token).catch((e: unknown) => e),
        'UNAUTHENTICATED',
      ),
    ).toBe(true);
    const crossTenant = await verifier()
      .verify((await token()).token, { expectedTenant: 'korea' })
      .catch((e: unknown) => e);
    expect(isMtPaasError(crossTenant, 'CROSS_TENANT_ACCESS')).toBe(true);
  });

  it('rotates keys: the new key signs, the old one stays published and still verifies', async () => {
    const before = await token();
    const rotated = await api(sim, 'POST', '/sim/v1/sso/rotate', { alg: 'ES256' });
    expect(rotated.body).toMatchObject({ alg: 'ES256', retired: [before.kid] });
    const after = await token();
    expect(decodeProtectedHeader(after.token)).toMatchObject({ alg: 'ES256', kid: rotated.body.kid });
    const { keys } = (await api(sim, 'GET', '/.well-known/jwks.json')).body;
    expect(keys.map((key: { kid: string }) => key.kid)).toEqual(
      expect.arrayContaining([before.kid, after.kid]),
    );
    for (const key of keys) expect(key).not.toHaveProperty('d'); // public halves only
    const local = createLocalJWKSet({ keys });
    await expect(
      jwtVerify(before.token, local, { issuer: sim.url, audience: 'tutor' }),
    ).resolves.toBeDefined();
    await expect(
      jwtVerify(after.token, local, { issuer: sim.url, audience: 'tutor', algorithms: ['ES256'] }),
    ).resolves.toBeDefined();
    await expect(verifier().verify(after.token)).resolves.toMatchObject({ tenantId: 'hallym' });
    // rotating without an algorithm keeps the current one
    expect((await api(sim, 'POST', '/sim/v1/sso/rotate', {})).body.alg).toBe('ES256');
  });

  it('drops a retired key from the JWKS once its time is over', async () => {
    const short = await startTestSim({ ssoRetiredKeySeconds: 0 });
    try {
      const first = (await api(short, 'GET', '/.well-known/jwks.json')).body.keys;
      expect(first).toHaveLength(1);
      const rotated = (await api(short, 'POST', '/sim/v1/sso/rotate', {})).body;
      const keys = (await api(short, 'GET', '/.well-known/jwks.json')).body.keys;
      expect(keys.map((key: { kid: string }) => key.kid)).toEqual([rotated.kid]);
    } finally {
      await short.close();
    }
  });

  it('"open as this user" redirects to the service callback with the token and the tenant', async () => {
    const opened = await api(sim, 'GET', `/sim/v1/sso/open?service_id=tutor&user_id=${userId}`);
    expect(opened.status).toBe(302);
    const location = new URL(String(opened.headers.location));
    expect(`${location.origin}${location.pathname}`).toBe('http://tutor.test/auth/marketplace/callback');
    expect(location.searchParams.get('tenant')).toBe('hallym');
    await expect(
      verifier().verify(location.searchParams.get('token')!, { expectedTenant: 'hallym' }),
    ).resolves.toBeDefined();
    expect((await api(sim, 'GET', '/sim/v1/sso/open?service_id=tutor&user_id=999')).status).toBe(404);
    expect((await api(sim, 'GET', `/sim/v1/sso/open?service_id=nope&user_id=${userId}`)).status).toBe(404);
  });
});
