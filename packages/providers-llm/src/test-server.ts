/**
 * Test helper (not exported): a node:http server on 127.0.0.1 and a random port that replays
 * scripted vendor responses — JSON bodies, SSE fixtures sent in small chunks (so events are
 * split across reads), error statuses with headers, streams cut halfway, requests that hang.
 */
import { readFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { refuseMalformed } from './test-server-validation.js';

/** One scripted answer. */
export interface ScriptedResponse {
  /** @default 200 */
  status?: number;
  headers?: Record<string, string>;
  /** A JSON body. */
  json?: unknown;
  /** A raw body (an SSE fixture). */
  body?: string;
  /** Send only this many bytes of `body`, then cut the connection (or end, with `endCleanly`). */
  cutAfterBytes?: number;
  /** With `cutAfterBytes`: end the response normally instead of destroying the socket. */
  endCleanly?: boolean;
  /** Never answer. */
  hang?: boolean;
  /** Send the headers and the first `cutAfterBytes` bytes, then stall without ending. */
  stall?: boolean;
}

/** A request the server received. */
export interface RecordedRequest {
  method: string;
  path: string;
  query: URLSearchParams;
  headers: IncomingHttpHeaders;
  body: unknown;
}

export interface TestServer {
  url: string;
  requests: RecordedRequest[];
  /** Responses whose connection the client closed before the server finished them. */
  readonly closedByClient: number;
  /** Queues answers for a path (first in, first out); the last one repeats. */
  on(path: string, ...responses: ScriptedResponse[]): void;
  close(): Promise<void>;
}

/** Reads a fixture of `src/__fixtures__/`. */
export function fixture(name: string): string {
  return readFileSync(new URL(`./__fixtures__/${name}`, import.meta.url), 'utf8');
}

/** Reads a JSON fixture of `src/__fixtures__/`. */
export function jsonFixture(name: string): unknown {
  return JSON.parse(fixture(name));
}

async function sendInChunks(response: ServerResponse, body: Buffer, limit: number): Promise<void> {
  const chunkSize = 37;
  for (let offset = 0; offset < limit; offset += chunkSize) {
    response.write(body.subarray(offset, Math.min(offset + chunkSize, limit)));
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
}

/**
 * Starts the server. Every request is first checked as its vendor's API would (see
 * `refuseMalformed`); a malformed one gets the vendor's 400/401 instead of the scripted answer.
 */
export async function startTestServer(): Promise<TestServer> {
  const scripts = new Map<string, ScriptedResponse[]>();
  const requests: RecordedRequest[] = [];
  let closedByClient = 0;
  let closing = false;
  const server = createServer((request, response) => {
    response.on('close', () => {
      if (!response.writableFinished && !closing) closedByClient++;
    });
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const url = new URL(request.url ?? '/', 'http://127.0.0.1');
      const text = Buffer.concat(chunks).toString('utf8');
      let body: unknown = text;
      try {
        body = text === '' ? undefined : JSON.parse(text);
      } catch {}
      requests.push({
        method: request.method ?? 'GET',
        path: url.pathname,
        query: url.searchParams,
        headers: request.headers,
        body,
      });
      const refusal = refuseMalformed(requests.at(-1)!);
      if (refusal !== undefined) {
        response.writeHead(refusal.status, { 'content-type': 'application/json' });
        response.end(JSON.stringify(refusal.json));
        return;
      }
      const queue = scripts.get(url.pathname);
      const script = queue === undefined ? undefined : queue.length > 1 ? queue.shift() : queue[0];
      if (script === undefined) {
        response.writeHead(404, { 'content-type': 'application/json' });
        response.end(JSON.stringify({ error: { message: `no scripted response for ${url.pathname}` } }));
        return;
      }
      if (script.hang === true) return;
      void (async () => {
        const isStream = script.body !== undefined;
        response.writeHead(script.status ?? 200, {
          'content-type': isStream ? 'text/event-stream' : 'application/json',
          ...script.headers,
        });
        if (!isStream) {
          response.end(script.json === undefined ? '' : JSON.stringify(script.json));
          return;
        }
        const bytes = Buffer.from(script.body!, 'utf8');
        const limit = Math.min(script.cutAfterBytes ?? bytes.length, bytes.length);
        await sendInChunks(response, bytes, limit);
        if (script.stall === true) return;
        if (script.cutAfterBytes !== undefined && script.endCleanly !== true) {
          closing = true;
          response.socket?.destroy();
          closing = false;
          return;
        }
        response.end();
      })();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    get closedByClient() {
      return closedByClient;
    },
    on(path, ...responses) {
      scripts.set(path, responses);
    },
    async close() {
      closing = true;
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
