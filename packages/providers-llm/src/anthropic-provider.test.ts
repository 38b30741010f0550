import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createAnthropic } from './anthropic-provider.js';
import { fixture, jsonFixture, startTestServer, type TestServer } from './test-server.js';

let server: TestServer;
beforeEach(async () => {
  server = await startTestServer();
});
afterEach(async () => {
  await server.close();
});

function provider(options: Parameters<typeof createAnthropic>[0] = {}) {
  return createAnthropic({
    apiKey: 'sk-ant-test',
    baseURL: `${server.url}/v1`,
    retryBaseDelayMs: 1,
    ...options,
  });
}

async function collect(stream: AsyncIterable<string>): Promise<string> {
  let text = '';
  for await (const delta of stream) text += delta;
  return text;
}

describe('Anthropic Messages API', () => {
  it('sends x-api-key, anthropic-version and a Messages body; counts cached input tokens', async () => {
    server.on('/v1/messages', { json: jsonFixture('anthropic-message.json') });
    const result = await provider()('claude-3-5-haiku-latest').generate({
      system: 'Be brief.',
      messages: [
        { role: 'system', content: 'Answer from the docs.' },
        { role: 'user', content: 'What does schema mode do?' },
        { role: 'user', content: 'One sentence.' },
      ],
      stopSequences: ['\n\n'],
    });
    expect(result).toEqual({
      text: 'Schema mode gives each tenant its own schema.',
      finishReason: 'stop',
      model: 'anthropic:claude-3-5-haiku-latest',
      usage: { inputTokens: 25, outputTokens: 11, totalTokens: 36 },
    });
    const [request] = server.requests;
    expect(request?.headers['x-api-key']).toBe('sk-ant-test');
    expect(request?.headers['anthropic-version']).toBe('2023-06-01');
    expect(request?.body).toEqual({
      model: 'claude-3-5-haiku-latest',
      max_tokens: 1024,
      system: 'Be brief.\n\nAnswer from the docs.',
      messages: [{ role: 'user', content: 'What does schema mode do?\n\nOne sentence.' }],
      stop_sequences: ['\n\n'],
    });
  });

  it('streams text_delta events; output_tokens in message_delta are cumulative, not added', async () => {
    server.on('/v1/messages', { body: fixture('anthropic-stream.sse') });
    const stream = await provider()('claude-3-5-haiku-latest').stream({
      prompt: 'What does schema mode do?',
    });
    expect(await collect(stream)).toBe('Schema mode gives each tenant its own schema.');
    const result = await stream.result;
    expect(result.usage).toEqual({ inputTokens: 21, outputTokens: 11, totalTokens: 32 });
    expect(result.finishReason).toBe('stop');
    expect(server.requests[0]?.body).toMatchObject({ stream: true });
  });

  it('turns an error event in the stream into PROVIDER_UNAVAILABLE (overloaded_error)', async () => {
    server.on('/v1/messages', { body: fixture('anthropic-stream-error.sse') });
    const stream = await provider()('claude-3-5-haiku-latest').stream({ prompt: 'hi' });
    await expect(collect(stream)).rejects.toMatchObject({
      code: 'PROVIDER_UNAVAILABLE',
      details: { providerErrorType: 'overloaded_error' },
    });
  });

  it('refuses a stream cut before message_stop', async () => {
    const body = fixture('anthropic-stream.sse');
    server.on('/v1/messages', { body, cutAfterBytes: Math.floor(body.length * 0.6), endCleanly: true });
    const stream = await provider()('claude-3-5-haiku-latest').stream({ prompt: 'hi' });
    await expect(collect(stream)).rejects.toMatchObject({
      code: 'PROVIDER_UNAVAILABLE',
      message: expect.stringContaining('message_stop'),
    });
    await expect(stream.result).rejects.toMatchObject({ code: 'PROVIDER_UNAVAILABLE' });
  });

  it('retries 529 overloaded, then answers', async () => {
    server.on(
      '/v1/messages',
      { status: 529, json: jsonFixture('anthropic-error-529.json') },
      { json: jsonFixture('anthropic-message.json') },
    );
    const result = await provider()('claude-3-5-haiku-latest').generate({ prompt: 'hi' });
    expect(result.text).toContain('Schema mode');
    expect(server.requests).toHaveLength(2);
  });

  it('maps 401 authentication_error to PROVIDER_ERROR', async () => {
    server.on('/v1/messages', { status: 401, json: jsonFixture('anthropic-error-401.json') });
    await expect(provider()('claude-3-5-haiku-latest').generate({ prompt: 'hi' })).rejects.toMatchObject({
      code: 'PROVIDER_ERROR',
      details: {
        status: 401,
        providerErrorType: 'authentication_error',
        providerMessage: 'invalid x-api-key',
      },
    });
  });

  it('maps a 429 with Retry-After to RATE_LIMITED once retries are spent', async () => {
    server.on('/v1/messages', {
      status: 429,
      headers: { 'retry-after': '0' },
      json: {
        type: 'error',
        error: {
          type: 'rate_limit_error',
          message: 'Number of request tokens has exceeded your per-minute rate limit',
        },
      },
    });
    await expect(
      provider({ maxRetries: 1 })('claude-3-5-haiku-latest').generate({ prompt: 'hi' }),
    ).rejects.toMatchObject({
      code: 'RATE_LIMITED',
      retryAfterSeconds: 0,
    });
    expect(server.requests).toHaveLength(2);
  });

  it('needs a user message', async () => {
    await expect(provider()('claude-3-5-haiku-latest').generate({ system: 'x' })).rejects.toMatchObject({
      code: 'INVALID_REQUEST',
    });
  });
});
