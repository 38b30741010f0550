import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';

/** A request as a fake server saw it. */
export interface RecordedRequest {
  method: string;
  path: string;
  query: URLSearchParams;
  headers: IncomingMessage['headers'];
  body: unknown;
}

/** What a route answers. A string body is sent as text/plain. */
export interface FixtureResponse {
  status: number;
  body: unknown;
}

/** A route handler error with an HTTP status and a vendor-shaped body. */
export class HttpFailure extends Error {
  constructor(
    readonly status: number,
    readonly body: unknown,
  ) {
    super(`HTTP ${status}`);
  }
}

/** A running local server. */
export interface RunningFixture {
  url: string;
  requests: RecordedRequest[];
  close(): Promise<void>;
}

/**
 * Starts a node:http server on a random local port that parses JSON bodies, records every request
 * and hands it to `handle`. `badJson` shapes the vendor's answer to a body that is not JSON.
 */
export async function startFixtureServer(
  handle: (request: RecordedRequest) => FixtureResponse,
  badJson: (message: string) => FixtureResponse,
): Promise<RunningFixture> {
  const requests: RecordedRequest[] = [];
  const server = createServer((incoming, outgoing) => {
    const chunks: Buffer[] = [];
    incoming.on('data', (chunk: Buffer) => chunks.push(chunk));
    incoming.on('end', () => {
      const url = new URL(incoming.url ?? '/', 'http://fixture');
      const raw = Buffer.concat(chunks).toString('utf8');
      let response: FixtureResponse;
      let body: unknown;
      try {
        body = raw.length === 0 ? undefined : JSON.parse(raw);
        const request: RecordedRequest = {
          method: incoming.method ?? 'GET',
          path: url.pathname,
          query: url.searchParams,
          headers: incoming.headers,
          body,
        };
        requests.push(request);
        response = handle(request);
      } catch (error) {
        if (error instanceof SyntaxError) response = badJson(error.message);
        else if (error instanceof HttpFailure) response = { status: error.status, body: error.body };
        else response = { status: 500, body: { error: String(error) } };
      }
      const text = typeof response.body === 'string' ? response.body : JSON.stringify(response.body);
      outgoing.writeHead(response.status, {
        'content-type': typeof response.body === 'string' ? 'text/plain' : 'application/json',
        'content-length': Buffer.byteLength(text),
      });
      outgoing.end(text);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((error) => (error ? reject(error) : resolve()));
      }),
  };
}

/** Cosine similarity of two equal-length vectors (0 when either is zero). */
export function cosine(left: readonly number[], right: readonly number[]): number {
  let dot = 0;
  let leftNorm = 0;
  let rightNorm = 0;
  for (let index = 0; index < left.length; index++) {
    dot += left[index]! * right[index]!;
    leftNorm += left[index]! ** 2;
    rightNorm += right[index]! ** 2;
  }
  return leftNorm === 0 || rightNorm === 0 ? 0 : dot / Math.sqrt(leftNorm * rightNorm);
}

export const isPlainObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);
