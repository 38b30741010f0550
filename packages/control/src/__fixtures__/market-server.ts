import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { z } from 'zod';

/** The seed 001 §5.1 heartbeat body, strictly: what a real market would accept. */
export const heartbeatBodySchema = z
  .object({
    service_id: z.string().min(1),
    status: z.enum(['healthy', 'degraded', 'unhealthy']),
    active_tenants: z.array(z.string()),
    metrics: z
      .object({
        requests_per_minute: z.number().nonnegative(),
        error_rate: z.number().min(0).max(1),
        avg_response_time_ms: z.number().nonnegative(),
      })
      .strict(),
    timestamp: z.iso.datetime(),
  })
  .strict();

export interface ReceivedBeat {
  path: string;
  headers: IncomingMessage['headers'];
  body: z.infer<typeof heartbeatBodySchema>;
  at: number;
}

/** A local market stand-in speaking the heartbeat wire format; its behaviour can be switched per test. */
export interface MarketStandIn {
  url: string;
  beats: ReceivedBeat[];
  /** Malformed bodies received (each one fails a test that checks `invalid`). */
  invalid: unknown[];
  /** `ok` answers 200; `error` answers 503; `hang` never answers. */
  mode: 'ok' | 'error' | 'hang';
  close(): Promise<void>;
}

export async function startMarketStandIn(): Promise<MarketStandIn> {
  const hanging = new Set<ServerResponse>();
  const state: MarketStandIn = {
    url: '',
    beats: [],
    invalid: [],
    mode: 'ok',
    async close() {
      for (const response of hanging) response.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  const server: Server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const match = /^\/api\/v1\/services\/([^/]+)\/heartbeat$/.exec(request.url ?? '');
      if (request.method !== 'POST' || match === null) {
        response.writeHead(404).end();
        return;
      }
      let parsed: unknown;
      try {
        parsed = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      } catch {
        parsed = undefined;
      }
      const result = heartbeatBodySchema.safeParse(parsed);
      if (!result.success || decodeURIComponent(match[1] ?? '') !== result.data.service_id) {
        state.invalid.push(parsed);
        response.writeHead(422, { 'content-type': 'application/json' }).end('{"error":"invalid heartbeat"}');
        return;
      }
      if (state.mode === 'hang') {
        hanging.add(response);
        return;
      }
      state.beats.push({
        path: request.url ?? '',
        headers: request.headers,
        body: result.data,
        at: Date.now(),
      });
      if (state.mode === 'error') {
        response.writeHead(503).end();
        return;
      }
      response.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  state.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/api/v1`;
  return state;
}
