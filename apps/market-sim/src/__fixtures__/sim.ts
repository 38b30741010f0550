import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { openSimDatabase } from '../database.js';
import { buildServer, type MarketServer, type MarketServerOptions } from '../server.js';

/** The simulator in this process on a free port, on in-memory PGlite; the dispatcher runs only when asked. */
export interface TestSim extends MarketServer {
  url: string;
}

export async function startTestSim(
  options: Partial<Omit<MarketServerOptions, 'driver'>> & { dataDir?: string } = {},
): Promise<TestSim> {
  const { dataDir, ...rest } = options;
  const driver = await openSimDatabase({ dataDir: dataDir ?? 'memory' });
  const holder = { url: '' };
  const server = await buildServer({
    driver,
    publicUrl: () => holder.url,
    pollMs: 0,
    retrySchedule: [0, 0],
    ...rest,
  });
  await server.app.listen({ port: 0, host: '127.0.0.1' });
  holder.url = `http://127.0.0.1:${(server.app.server.address() as AddressInfo).port}`;
  return Object.assign(server, { url: holder.url });
}

/** One request a fake service received. */
export interface ReceivedRequest {
  method: string;
  path: string;
  headers: http.IncomingHttpHeaders;
  /** The raw body text (what was signed). */
  body: string;
}

/** A scripted answer. */
export interface Answer {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
}

/** A local HTTP server standing in for a service: records requests, answers from a script, else 200. */
export interface FakeService {
  url: string;
  requests: ReceivedRequest[];
  answers: Array<Answer | ((request: ReceivedRequest) => Answer)>;
  close(): Promise<void>;
}

export async function startFakeService(): Promise<FakeService> {
  const requests: ReceivedRequest[] = [];
  const answers: FakeService['answers'] = [];
  const server = http.createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const received: ReceivedRequest = {
        method: request.method ?? 'GET',
        path: request.url ?? '/',
        headers: request.headers,
        body: Buffer.concat(chunks).toString('utf8'),
      };
      requests.push(received);
      const next = answers.shift();
      const answer =
        typeof next === 'function' ? next(received) : (next ?? { status: 200, body: { success: true } });
      response.writeHead(answer.status, { 'content-type': 'application/json', ...answer.headers });
      response.end(answer.body === undefined ? '' : JSON.stringify(answer.body));
    });
  });
  server.keepAliveTimeout = 1;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    answers,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
