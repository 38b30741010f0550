import http from 'node:http';
import type { AddressInfo } from 'node:net';

/** One request the market received. */
export interface MarketRequest {
  method: string;
  path: string;
  headers: http.IncomingHttpHeaders;
  // biome-ignore lint/suspicious/noExplicitAny: tests read bodies loosely
  body: any;
}

/** A scripted answer: status, headers, body. */
export interface MarketAnswer {
  status: number;
  headers?: Record<string, string>;
  body?: unknown;
}

/**
 * A local marketplace speaking the wire format of seed 001 (heartbeat, audit alerts) and the
 * mt-paas report routes. It can be stopped and started again on the same port (down / back up),
 * and answers from a script (`answers`) before falling back to 200.
 */
export interface MarketServer {
  readonly url: string;
  readonly requests: MarketRequest[];
  /** Answers used first, in order, one per request. */
  answers: Array<MarketAnswer | ((request: MarketRequest) => MarketAnswer)>;
  /** Closes the port: connections are refused. */
  stop(): Promise<void>;
  /** Listens again on the same port. */
  start(): Promise<void>;
}

export async function startMarketServer(): Promise<MarketServer> {
  const requests: MarketRequest[] = [];
  const state: { answers: MarketServer['answers'] } = { answers: [] };
  const server = http.createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      const recorded: MarketRequest = {
        method: request.method ?? 'GET',
        path: request.url ?? '/',
        headers: request.headers,
        body: text === '' ? undefined : JSON.parse(text),
      };
      requests.push(recorded);
      const next = state.answers.shift();
      const answer =
        typeof next === 'function' ? next(recorded) : (next ?? { status: 200, body: { ok: true } });
      response.writeHead(answer.status, { 'content-type': 'application/json', ...answer.headers });
      response.end(answer.body === undefined ? '' : JSON.stringify(answer.body));
    });
  });
  server.keepAliveTimeout = 1;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/api/v1`,
    requests,
    get answers() {
      return state.answers;
    },
    set answers(value) {
      state.answers = value;
    },
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
    start: () => new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve)),
  };
}
