import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createChromaVectorStore } from './chroma-store.js';
import { createHttpClient, oncePerKey } from './http-client.js';
import { createQdrantVectorStore } from './qdrant-store.js';

// What the README promises of the Qdrant and Chroma transport: retries on 429/5xx, TIMEOUT when the
// server does not answer, PROVIDER_UNAVAILABLE (with retryAfterSeconds) once retries are spent.

let server: Server | undefined;
afterEach(async () => {
  server?.closeAllConnections();
  await new Promise<void>((resolve) => (server === undefined ? resolve() : server.close(() => resolve())));
  server = undefined;
});

/** A server answering each request with the next scripted reply (the last one repeats); `hang` never answers. */
async function scripted(
  ...replies: ({ status: number; body: unknown; headers?: Record<string, string> } | 'hang')[]
): Promise<{ url: string; hits: () => number }> {
  let hits = 0;
  server = createServer((request, response) => {
    request.resume();
    request.on('end', () => {
      const reply = replies[Math.min(hits, replies.length - 1)]!;
      hits++;
      if (reply === 'hang') return;
      response.writeHead(reply.status, { 'content-type': 'application/json', ...reply.headers });
      response.end(JSON.stringify(reply.body));
    });
  });
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server!.address() as AddressInfo).port}`, hits: () => hits };
}

function client(url: string, options: { retries?: number; timeoutMs?: number } = {}) {
  return createHttpClient({
    provider: 'Qdrant',
    url,
    headers: {},
    timeoutMs: options.timeoutMs ?? 5_000,
    retries: options.retries ?? 2,
    errorMessage: (body) => (body as { status?: { error?: string } } | undefined)?.status?.error,
  });
}

const countRequest = {
  method: 'POST' as const,
  path: '/collections/docs/points/count',
  body: {},
  schema: z.object({ result: z.object({ count: z.number() }) }),
};

describe('createHttpClient', () => {
  it('retries a 503 and answers with the next reply', async () => {
    const fake = await scripted(
      { status: 503, body: { status: { error: 'Service Unavailable' } } },
      { status: 200, body: { result: { count: 3 } } },
    );
    await expect(client(fake.url).request(countRequest)).resolves.toEqual({ result: { count: 3 } });
    expect(fake.hits()).toBe(2);
  });

  it('gives up after the retries with PROVIDER_UNAVAILABLE, the server message and Retry-After', async () => {
    const fake = await scripted({
      status: 429,
      headers: { 'retry-after': '7' },
      body: { status: { error: 'Too many requests' } },
    });
    await expect(client(fake.url, { retries: 1 }).request(countRequest)).rejects.toMatchObject({
      code: 'PROVIDER_UNAVAILABLE',
      retryAfterSeconds: 7,
      details: { status: 429, serverMessage: 'Too many requests' },
    });
    expect(fake.hits()).toBe(2);
  });

  it('does not retry a 400 and reports the server message', async () => {
    const fake = await scripted({ status: 400, body: { status: { error: 'Wrong input: bad filter' } } });
    await expect(client(fake.url).request(countRequest)).rejects.toMatchObject({
      code: 'PROVIDER_ERROR',
      message: expect.stringContaining('Wrong input: bad filter'),
    });
    expect(fake.hits()).toBe(1);
  });

  it('fails with TIMEOUT when the server does not answer within timeoutMs', async () => {
    const fake = await scripted('hang');
    await expect(
      client(fake.url, { retries: 0, timeoutMs: 100 }).request(countRequest),
    ).rejects.toMatchObject({
      code: 'TIMEOUT',
      message: expect.stringContaining('raise timeoutMs'),
    });
  });

  it('keeps the timeout on a retried request (a 503, then no answer)', async () => {
    const fake = await scripted({ status: 503, body: { status: { error: 'Service Unavailable' } } }, 'hang');
    await expect(
      client(fake.url, { retries: 1, timeoutMs: 200 }).request(countRequest),
    ).rejects.toMatchObject({
      code: 'TIMEOUT',
    });
    expect(fake.hits()).toBe(2);
  }, 5_000);

  it('rejects a body of an unexpected shape with PROVIDER_ERROR', async () => {
    const fake = await scripted({ status: 200, body: { hello: 'world' } });
    await expect(client(fake.url).request(countRequest)).rejects.toMatchObject({
      code: 'PROVIDER_ERROR',
      message: expect.stringContaining('unexpected body'),
    });
  });
});

describe('the naming options of the HTTP stores', () => {
  it('refuse an unknown layout and a prefix that is not a plain name, saying what is allowed', () => {
    expect(() => createQdrantVectorStore({ dimensions: 4, layout: 'per-tenant' as 'shared' })).toThrow(
      expect.objectContaining({
        code: 'CONFIG_INVALID',
        message: expect.stringContaining('"collection-per-tenant"'),
      }),
    );
    expect(() => createChromaVectorStore({ dimensions: 4, collectionPrefix: 'a/b' })).toThrow(
      expect.objectContaining({ code: 'CONFIG_INVALID', message: expect.stringContaining('"a/b"') }),
    );
  });
});

describe('oncePerKey', () => {
  it('shares one setup per key and tries again after a failed one', async () => {
    const calls: string[] = [];
    let fail = true;
    const setups = oncePerKey(async (key: string) => {
      calls.push(key);
      if (fail) throw new Error('server down');
      return `${key}-id`;
    });
    await expect(setups.get('a')).rejects.toThrow('server down');
    fail = false;
    const [first, second] = await Promise.all([setups.get('a'), setups.get('a')]);
    expect([first, second]).toEqual(['a-id', 'a-id']);
    expect(calls).toEqual(['a', 'a']);
    setups.forget('a');
    await setups.get('a');
    expect(calls).toEqual(['a', 'a', 'a']);
  });
});
