import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { jsonFixture, startTestServer, type TestServer } from './test-server.js';

// The provider tests replay fixtures from this server; it must refuse what the vendors refuse,
// or a wire-format bug in a provider would pass every test.

let server: TestServer;
beforeEach(async () => {
  server = await startTestServer();
});
afterEach(async () => {
  await server.close();
});

async function post(path: string, body: unknown, headers: Record<string, string> = {}) {
  const response = await fetch(`${server.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
  return { status: response.status, body: (await response.json()) as unknown };
}

describe('the replaying test server', () => {
  it('answers a valid request with the scripted fixture', async () => {
    server.on('/v1/chat/completions', { json: jsonFixture('openai-chat.json') });
    const answer = await post('/v1/chat/completions', {
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: 'hi' }],
    });
    expect(answer.status).toBe(200);
  });

  it('refuses malformed OpenAI requests as OpenAI does', async () => {
    server.on('/v1/chat/completions', { json: jsonFixture('openai-chat.json') });
    expect(await post('/v1/chat/completions', { model: 'gpt-4o-mini', messages: [] })).toMatchObject({
      status: 400,
      body: { error: { type: 'invalid_request_error' } },
    });
    const withoutStream = await post('/v1/chat/completions', {
      model: 'gpt-4o-mini',
      messages: [{ role: 'user', content: 'hi' }],
      stream_options: { include_usage: true },
    });
    expect(withoutStream.status).toBe(400);
    expect(server.requests).toHaveLength(2);
  });

  it('refuses Anthropic requests without x-api-key, anthropic-version or max_tokens', async () => {
    server.on('/v1/messages', { json: jsonFixture('anthropic-message.json') });
    const body = {
      model: 'claude-3-5-haiku-latest',
      max_tokens: 10,
      messages: [{ role: 'user', content: 'hi' }],
    };
    expect(await post('/v1/messages', body, { 'anthropic-version': '2023-06-01' })).toMatchObject({
      status: 401,
      body: { type: 'error', error: { type: 'authentication_error' } },
    });
    expect((await post('/v1/messages', body, { 'x-api-key': 'k' })).status).toBe(400);
    const { max_tokens: _, ...withoutMaxTokens } = body;
    expect(
      (await post('/v1/messages', withoutMaxTokens, { 'x-api-key': 'k', 'anthropic-version': '2023-06-01' }))
        .status,
    ).toBe(400);
    expect(
      (await post('/v1/messages', body, { 'x-api-key': 'k', 'anthropic-version': '2023-06-01' })).status,
    ).toBe(200);
  });

  it('refuses Gemini requests without a key, without contents, or streams without alt=sse', async () => {
    const path = '/v1beta/models/gemini-2.0-flash:streamGenerateContent';
    server.on(path, { body: 'data: {}\r\n\r\n' });
    const body = { contents: [{ role: 'user', parts: [{ text: 'hi' }] }] };
    expect((await post(path, body)).status).toBe(401);
    expect((await post(`${path}`, body, { 'x-goog-api-key': 'k' })).status).toBe(400);
    expect((await post(`${path}?alt=sse`, { contents: [] }, { 'x-goog-api-key': 'k' })).status).toBe(400);
    const valid = await fetch(`${server.url}${path}?alt=sse`, {
      method: 'POST',
      headers: { 'x-goog-api-key': 'k', 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    expect(valid.status).toBe(200);
  });

  it('refuses rerank requests missing their fields (TEI 422, Cohere 400)', async () => {
    expect(await post('/rerank', { query: 'q', texts: [] })).toMatchObject({
      status: 422,
      body: { error_type: 'Validation' },
    });
    expect(await post('/v2/rerank', { query: 'q', documents: ['a'] })).toMatchObject({
      status: 400,
      body: { message: expect.stringContaining('model') },
    });
  });
});
