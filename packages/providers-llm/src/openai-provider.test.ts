import { isMtPaasError } from '@mt-paas/context';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { retryAfterMs, retryDelayFromBody } from './http.js';
import { createOpenAI, createOpenAICompatible } from './openai-provider.js';
import { fixture, jsonFixture, startTestServer, type TestServer } from './test-server.js';

const API_KEY = 'sk-test-secret-key-1234567890';
let server: TestServer;

beforeEach(async () => {
  server = await startTestServer();
});
afterEach(async () => {
  await server.close();
});

function provider(options: Parameters<typeof createOpenAI>[0] = {}) {
  return createOpenAI({ apiKey: API_KEY, baseURL: `${server.url}/v1`, retryBaseDelayMs: 1, ...options });
}

async function collect(stream: AsyncIterable<string>): Promise<string[]> {
  const deltas: string[] = [];
  for await (const delta of stream) deltas.push(delta);
  return deltas;
}

describe('OpenAI chat completions', () => {
  it('sends the chat request and returns text, finish reason and usage', async () => {
    server.on('/v1/chat/completions', { json: jsonFixture('openai-chat.json') });
    const openai = provider({ organization: 'org-1' });
    const result = await openai('gpt-4o-mini').generate({
      system: 'Answer briefly.',
      messages: [{ role: 'user', content: 'What is RLS?' }],
      maxOutputTokens: 50,
      temperature: 0,
    });
    expect(result).toEqual({
      text: "Row-level security keeps each tenant's rows apart.",
      finishReason: 'stop',
      model: 'openai:gpt-4o-mini',
      usage: { inputTokens: 19, outputTokens: 10, totalTokens: 29 },
    });
    const [request] = server.requests;
    expect(request?.headers.authorization).toBe(`Bearer ${API_KEY}`);
    expect(request?.headers['openai-organization']).toBe('org-1');
    expect(request?.body).toEqual({
      model: 'gpt-4o-mini',
      messages: [
        { role: 'system', content: 'Answer briefly.' },
        { role: 'user', content: 'What is RLS?' },
      ],
      max_completion_tokens: 50,
      temperature: 0,
    });
  });

  it('streams text deltas and reports usage from the include_usage chunk', async () => {
    server.on('/v1/chat/completions', { body: fixture('openai-chat-stream.sse') });
    const stream = await provider()('gpt-4o-mini').stream({ prompt: 'What is RLS?' });
    const deltas = await collect(stream);
    expect(deltas.join('')).toBe("Row-level security keeps each tenant's rows apart.");
    expect(deltas.length).toBe(10);
    const result = await stream.result;
    expect(result.usage).toEqual({ inputTokens: 19, outputTokens: 10, totalTokens: 29 });
    expect(result.finishReason).toBe('stop');
    expect(server.requests[0]?.body).toMatchObject({ stream: true, stream_options: { include_usage: true } });
    expect(server.requests[0]?.headers.accept).toBe('text/event-stream');
  });

  it('settles result without iteration', async () => {
    server.on('/v1/chat/completions', { body: fixture('openai-chat-stream.sse') });
    const stream = await provider()('gpt-4o-mini').stream({ prompt: 'What is RLS?' });
    expect((await stream.result).text).toBe("Row-level security keeps each tenant's rows apart.");
  });

  it('fails clearly when the connection is cut halfway through the stream', async () => {
    const body = fixture('openai-chat-stream.sse');
    server.on('/v1/chat/completions', { body, cutAfterBytes: Math.floor(body.length / 2) });
    const stream = await provider()('gpt-4o-mini').stream({ prompt: 'What is RLS?' });
    const deltas: string[] = [];
    const failure = await (async () => {
      try {
        for await (const delta of stream) deltas.push(delta);
      } catch (error) {
        return error;
      }
      return undefined;
    })();
    expect(deltas.length).toBeGreaterThan(0);
    expect(isMtPaasError(failure, 'PROVIDER_UNAVAILABLE')).toBe(true);
    await expect(stream.result).rejects.toBe(failure);
    expect(stream.usageSoFar()).toMatchObject({ estimated: true, outputTokens: expect.any(Number) });
    expect(stream.usageSoFar().outputTokens).toBeGreaterThan(0);
  });

  it('fails clearly when the stream ends early without finish_reason or [DONE]', async () => {
    const body = fixture('openai-chat-stream.sse');
    server.on('/v1/chat/completions', { body, cutAfterBytes: Math.floor(body.length / 2), endCleanly: true });
    const stream = await provider()('gpt-4o-mini').stream({ prompt: 'What is RLS?' });
    await expect(collect(stream)).rejects.toMatchObject({
      code: 'PROVIDER_UNAVAILABLE',
      message: expect.stringContaining('ended before the answer was complete'),
    });
  });

  it('waits a short Retry-After and retries a 429', async () => {
    server.on(
      '/v1/chat/completions',
      { status: 429, headers: { 'retry-after-ms': '20' }, json: jsonFixture('openai-error-429.json') },
      { json: jsonFixture('openai-chat.json') },
    );
    const result = await provider()('gpt-4o-mini').generate({ prompt: 'hi' });
    expect(result.text).toContain('Row-level security');
    expect(server.requests).toHaveLength(2);
  });

  it('does not sleep through a long Retry-After: RATE_LIMITED with retryAfterSeconds at once', async () => {
    server.on('/v1/chat/completions', {
      status: 429,
      headers: { 'retry-after': '120' },
      json: jsonFixture('openai-error-429.json'),
    });
    const error = await provider()('gpt-4o-mini')
      .generate({ prompt: 'hi' })
      .catch((caught: unknown) => caught);
    expect(error).toMatchObject({
      code: 'RATE_LIMITED',
      httpStatus: 429,
      retryAfterSeconds: 120,
      details: { provider: 'openai', status: 429, providerErrorType: 'requests' },
    });
    expect(server.requests).toHaveLength(1);
  });

  it('retries 5xx up to maxRetries, then PROVIDER_UNAVAILABLE', async () => {
    server.on('/v1/chat/completions', { status: 500, json: jsonFixture('openai-error-500.json') });
    await expect(provider({ maxRetries: 2 })('gpt-4o-mini').generate({ prompt: 'hi' })).rejects.toMatchObject(
      {
        code: 'PROVIDER_UNAVAILABLE',
        message: expect.stringContaining('The server had an error'),
      },
    );
    expect(server.requests).toHaveLength(3);
  });

  it('backs off exponentially between retries (base, 2×, 4×, with jitter)', async () => {
    server.on('/v1/chat/completions', { status: 503, json: jsonFixture('openai-error-500.json') });
    const waits: number[] = [];
    const realSetTimeout = globalThis.setTimeout;
    const spy = vi.spyOn(globalThis, 'setTimeout').mockImplementation(((
      callback: () => void,
      milliseconds?: number,
    ) => {
      // Other timers run too (the call's 60 s timeout, undici's 499 ms clock): keep the range of
      // the retry waits; a backoff outside it leaves fewer than three and fails the test.
      if (milliseconds !== undefined && milliseconds >= 10 && milliseconds <= 400) waits.push(milliseconds);
      return realSetTimeout(callback, milliseconds);
    }) as typeof setTimeout);
    try {
      await expect(
        provider({ maxRetries: 3, retryBaseDelayMs: 40 })('gpt-4o-mini').generate({ prompt: 'hi' }),
      ).rejects.toMatchObject({ code: 'PROVIDER_UNAVAILABLE' });
    } finally {
      spy.mockRestore();
    }
    expect(server.requests).toHaveLength(4);
    expect(waits).toHaveLength(3);
    const [first, second, third] = waits as [number, number, number];
    expect(first).toBeGreaterThanOrEqual(20);
    expect(first).toBeLessThanOrEqual(40);
    expect(second).toBeGreaterThanOrEqual(40);
    expect(second).toBeLessThanOrEqual(80);
    expect(third).toBeGreaterThanOrEqual(80);
    expect(third).toBeLessThanOrEqual(160);
  });

  it('maps 401 to PROVIDER_ERROR without retrying and never shows the key', async () => {
    server.on('/v1/chat/completions', { status: 401, json: jsonFixture('openai-error-401.json') });
    const error = await provider()('gpt-4o-mini')
      .generate({ prompt: 'hi' })
      .catch((caught: unknown) => caught as Error);
    expect(error).toMatchObject({
      code: 'PROVIDER_ERROR',
      message: expect.stringContaining('check the API key'),
    });
    expect(JSON.stringify((error as unknown as { toJSON(): unknown }).toJSON())).not.toContain(API_KEY);
    expect((error as Error).message).not.toContain('sk-proj-');
    expect(server.requests).toHaveLength(1);
  });

  it('refuses with CONFIG_INVALID naming OPENAI_API_KEY when no key is set, before any request', async () => {
    vi.stubEnv('OPENAI_API_KEY', '');
    const openai = createOpenAI({ baseURL: `${server.url}/v1` });
    await expect(openai('gpt-4o-mini').generate({ prompt: 'hi' })).rejects.toMatchObject({
      code: 'CONFIG_INVALID',
      message: expect.stringContaining('OPENAI_API_KEY'),
    });
    expect(server.requests).toHaveLength(0);
    vi.unstubAllEnvs();
  });

  it('reads OPENAI_API_KEY lazily, at call time', async () => {
    const openai = createOpenAI({ baseURL: `${server.url}/v1` });
    vi.stubEnv('OPENAI_API_KEY', 'sk-from-env');
    server.on('/v1/chat/completions', { json: jsonFixture('openai-chat.json') });
    await openai('gpt-4o-mini').generate({ prompt: 'hi' });
    expect(server.requests[0]?.headers.authorization).toBe('Bearer sk-from-env');
    vi.unstubAllEnvs();
  });

  it('cancels the HTTP request when the caller aborts', async () => {
    server.on('/v1/chat/completions', { hang: true });
    const controller = new AbortController();
    const pending = provider()('gpt-4o-mini').generate({ prompt: 'hi', abortSignal: controller.signal });
    await vi.waitFor(() => expect(server.requests).toHaveLength(1));
    controller.abort();
    await expect(pending).rejects.toMatchObject({ name: 'AbortError' });
    expect(server.requests).toHaveLength(1);
    await vi.waitFor(() => expect(server.closedByClient).toBe(1));
  });

  it('stops a running stream when the caller aborts', async () => {
    const body = fixture('openai-chat-stream.sse');
    server.on('/v1/chat/completions', { body, cutAfterBytes: Math.floor(body.length / 3), stall: true });
    const controller = new AbortController();
    const stream = await provider()('gpt-4o-mini').stream({ prompt: 'hi', abortSignal: controller.signal });
    const reason = new Error('user left');
    const failure = await (async () => {
      try {
        for await (const _delta of stream) controller.abort(reason);
      } catch (error) {
        return error;
      }
      return undefined;
    })();
    expect(failure).toBe(reason);
    await expect(stream.result).rejects.toBe(reason);
    await vi.waitFor(() => expect(server.closedByClient).toBe(1));
  });

  it('cancels the request when the consumer breaks out of the loop', async () => {
    const body = fixture('openai-chat-stream.sse');
    server.on('/v1/chat/completions', { body, cutAfterBytes: Math.floor(body.length / 3), stall: true });
    const stream = await provider()('gpt-4o-mini').stream({ prompt: 'hi' });
    expect(server.closedByClient).toBe(0);
    for await (const _delta of stream) break;
    await expect(stream.result).rejects.toMatchObject({ name: 'AbortError' });
    await vi.waitFor(() => expect(server.closedByClient).toBe(1));
  });

  it('times out with TIMEOUT when the server does not answer', async () => {
    server.on('/v1/chat/completions', { hang: true });
    await expect(
      provider({ timeoutMs: 100 })('gpt-4o-mini').generate({ prompt: 'hi' }),
    ).rejects.toMatchObject({
      code: 'TIMEOUT',
    });
  });

  it('times out a stream that stalls between chunks', async () => {
    const body = fixture('openai-chat-stream.sse');
    server.on('/v1/chat/completions', { body, cutAfterBytes: Math.floor(body.length / 3), stall: true });
    const deltas: string[] = [];
    const run = async () => {
      const stream = await provider({ timeoutMs: 150 })('gpt-4o-mini').stream({ prompt: 'hi' });
      for await (const delta of stream) deltas.push(delta);
    };
    await expect(run()).rejects.toMatchObject({ code: 'TIMEOUT' });
  });

  it('turns a malformed event into PROVIDER_ERROR, not a SyntaxError', async () => {
    server.on('/v1/chat/completions', {
      body: 'data: {"choices":[{"delta":{"content":"Hi"}}]}\n\ndata: {not json\n\n',
    });
    const stream = await provider()('gpt-4o-mini').stream({ prompt: 'hi' });
    await expect(collect(stream)).rejects.toMatchObject({
      code: 'PROVIDER_ERROR',
      message: expect.stringContaining('not JSON'),
    });
  });

  it('turns an in-stream error object into an MtPaasError', async () => {
    server.on('/v1/chat/completions', {
      body: 'data: {"error":{"message":"The server is overloaded","type":"server_error"}}\n\n',
    });
    const stream = await provider()('gpt-4o-mini').stream({ prompt: 'hi' });
    await expect(stream.result).rejects.toMatchObject({ code: 'PROVIDER_UNAVAILABLE' });
  });

  it('rejects an unexpected body with PROVIDER_ERROR', async () => {
    server.on('/v1/chat/completions', { json: { hello: 'world' } });
    await expect(provider()('gpt-4o-mini').generate({ prompt: 'hi' })).rejects.toMatchObject({
      code: 'PROVIDER_ERROR',
    });
  });

  it('maps an unreachable server to PROVIDER_UNAVAILABLE', async () => {
    const url = server.url;
    await server.close();
    const openai = createOpenAI({ apiKey: API_KEY, baseURL: `${url}/v1`, maxRetries: 0 });
    await expect(openai('gpt-4o-mini').generate({ prompt: 'hi' })).rejects.toMatchObject({
      code: 'PROVIDER_UNAVAILABLE',
    });
    server = await startTestServer();
  });
});

describe('OpenAI embeddings', () => {
  it('returns vectors in input order with usage, sending dimensions for text-embedding-3', async () => {
    server.on('/v1/embeddings', { json: jsonFixture('openai-embeddings.json') });
    const model = provider().embedding('text-embedding-3-small', { dimensions: 4 });
    expect(model.dimensions).toBe(4);
    const result = await model.embed(['first', 'second']);
    expect(result).toEqual({
      embeddings: [
        [0.1, 0.2, 0.3, 0.4],
        [0.5, -0.5, 0.5, -0.5],
      ],
      usage: { tokens: 7 },
    });
    expect(server.requests[0]?.body).toEqual({
      model: 'text-embedding-3-small',
      input: ['first', 'second'],
      encoding_format: 'float',
      dimensions: 4,
    });
  });

  it('knows the dimensions of OpenAI models and asks for others', () => {
    expect(provider().embedding('text-embedding-3-large').dimensions).toBe(3072);
    expect(() => provider().embedding('nomic-embed-text')).toThrow(
      expect.objectContaining({ code: 'CONFIG_INVALID' }),
    );
  });
});

describe('OpenAI-compatible servers', () => {
  it('streams from a server without usage chunks and flags the usage as estimated', async () => {
    server.on('/v1/chat/completions', { body: fixture('ollama-chat-stream.sse') });
    const ollama = createOpenAICompatible({ name: 'ollama', baseURL: `${server.url}/v1` });
    const stream = await ollama('llama3.2').stream({ prompt: 'Say hello', maxOutputTokens: 20 });
    expect((await collect(stream)).join('')).toBe('Hello from Ollama.');
    const result = await stream.result;
    expect(result.model).toBe('ollama:llama3.2');
    expect(result.usage.estimated).toBe(true);
    expect(result.usage.outputTokens).toBeGreaterThan(0);
    expect(result.usage.totalTokens).toBe(result.usage.inputTokens + result.usage.outputTokens);
    const [request] = server.requests;
    expect(request?.headers.authorization).toBeUndefined();
    expect(request?.body).toMatchObject({ max_tokens: 20 });
  });

  it('sends a key when one is given', async () => {
    server.on('/v1/chat/completions', { json: jsonFixture('openai-chat.json') });
    const vllm = createOpenAICompatible({ name: 'vllm', baseURL: `${server.url}/v1`, apiKey: 'token-abc' });
    await vllm('meta-llama/Llama-3.1-8B-Instruct').generate({ prompt: 'hi' });
    expect(server.requests[0]?.headers.authorization).toBe('Bearer token-abc');
  });
});

describe('retryAfterMs', () => {
  it('reads retry-after-ms, seconds and HTTP dates', () => {
    expect(retryAfterMs(new Headers({ 'retry-after-ms': '250' }))).toBe(250);
    expect(retryAfterMs(new Headers({ 'retry-after': '3' }))).toBe(3000);
    const now = Date.parse('2026-01-01T00:00:00Z');
    expect(retryAfterMs(new Headers({ 'retry-after': 'Thu, 01 Jan 2026 00:00:10 GMT' }), now)).toBe(10_000);
    expect(retryAfterMs(new Headers({}))).toBeUndefined();
  });

  it('reads Google RetryInfo delays out of an error body', () => {
    const body = (retryDelay: unknown) => ({
      error: { details: [{ '@type': 'type.googleapis.com/google.rpc.Help' }, { retryDelay }] },
    });
    expect(retryDelayFromBody(body('42s'))).toBe(42_000);
    expect(retryDelayFromBody(body('1.5s'))).toBe(1_500);
    expect(retryDelayFromBody(body('soon'))).toBeUndefined();
    expect(retryDelayFromBody({ error: { message: 'x' } })).toBeUndefined();
    expect(retryDelayFromBody('plain text')).toBeUndefined();
  });
});
