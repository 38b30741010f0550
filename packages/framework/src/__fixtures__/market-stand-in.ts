/**
 * A local marketplace stand-in: records every call (heartbeats, usage, status reports, alerts) and issues
 * SSO login tokens signed with its own key, served as JWKS at `/.well-known/jwks.json`. Never the network.
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, type JWK, SignJWT } from 'jose';

export interface ReceivedCall {
  method: string;
  path: string;
  headers: IncomingMessage['headers'];
  body: unknown;
}

export interface MarketStandIn {
  /** Base URL of the API (`<origin>/api/v1`), what `marketplace.api_url` names. */
  url: string;
  origin: string;
  calls: ReceivedCall[];
  /** Heartbeat calls, with `path`, `headers` and `body`. */
  readonly beats: ReceivedCall[];
  /** While true every API call is answered 503 (and counted in `refused`, not `calls`): the market is down. */
  down: boolean;
  /** Calls answered 503 while `down`. */
  readonly refused: number;
  /** Status reports (`POST …/tenants/<id>/status`) received, in order. */
  readonly statusReports: ReceivedCall[];
  /** A login token for the service's SSO callback. */
  loginToken(claims: { tenantId: string; sub: string; email?: string; audience: string }): Promise<string>;
  close(): Promise<void>;
}

export async function startMarketStandIn(): Promise<MarketStandIn> {
  const { publicKey, privateKey } = await generateKeyPair('RS256');
  const jwk: JWK = { ...(await exportJWK(publicKey)), kid: 'market-1', alg: 'RS256', use: 'sig' };
  const calls: ReceivedCall[] = [];
  const state = { down: false, refused: 0 };
  const server: Server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      if (request.url === '/.well-known/jwks.json') {
        response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [jwk] }));
        return;
      }
      if (state.down) {
        state.refused++;
        response.writeHead(503, { 'content-type': 'application/json' }).end('{"error":"down"}');
        return;
      }
      const text = Buffer.concat(chunks).toString('utf8');
      let body: unknown = text;
      try {
        body = text === '' ? undefined : JSON.parse(text);
      } catch {}
      calls.push({ method: request.method ?? '', path: request.url ?? '', headers: request.headers, body });
      response.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url: `${origin}/api/v1`,
    origin,
    calls,
    get down() {
      return state.down;
    },
    set down(value: boolean) {
      state.down = value;
    },
    get refused() {
      return state.refused;
    },
    get statusReports() {
      return calls.filter((call) => call.method === 'POST' && /\/tenants\/[^/]+\/status$/.test(call.path));
    },
    get beats() {
      return calls.filter((call) => call.path.endsWith('/heartbeat'));
    },
    loginToken: ({ tenantId, sub, email, audience }) =>
      new SignJWT({ tenant_id: tenantId, ...(email === undefined ? {} : { email }) })
        .setProtectedHeader({ alg: 'RS256', kid: 'market-1' })
        .setIssuer(origin)
        .setAudience(audience)
        .setSubject(sub)
        .setJti(`jti-${Math.random().toString(36).slice(2)}`)
        .setIssuedAt()
        .setExpirationTime('2m')
        .sign(privateKey),
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
