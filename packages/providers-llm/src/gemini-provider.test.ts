import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createGemini } from './gemini-provider.js';
import { fixture, jsonFixture, startTestServer, type TestServer } from './test-server.js';

let server: TestServer;
beforeEach(async () => {
  server = await startTestServer();
});
afterEach(async () => {
  await server.close();
});

function provider(options: Parameters<typeof createGemini>[0] = {}) {
  return createGemini({
    apiKey: 'AIza-test',
    baseURL: `${server.url}/v1beta`,
    retryBaseDelayMs: 1,
    ...options,
  });
}

describe('Gemini', () => {
  it('calls generateContent with x-goog-api-key, contents and systemInstruction', async () => {
    server.on('/v1beta/models/gemini-2.0-flash:generateContent', {
      json: jsonFixture('gemini-generate.json'),
    });
    const result = await provider()('gemini-2.0-flash').generate({
      system: 'Be brief.',
      messages: [
        { role: 'user', content: 'Hi' },
        { role: 'assistant', content: 'Hello!' },
        { role: 'user', content: 'What does database mode do?' },
      ],
      maxOutputTokens: 64,
    });
    expect(result).toEqual({
      text: 'Database mode gives each tenant its own database.',
      finishReason: 'stop',
      model: 'gemini:gemini-2.0-flash',
      usage: { inputTokens: 18, outputTokens: 10, totalTokens: 28 },
    });
    const [request] = server.requests;
    expect(request?.headers['x-goog-api-key']).toBe('AIza-test');
    expect(request?.body).toEqual({
      contents: [
        { role: 'user', parts: [{ text: 'Hi' }] },
        { role: 'model', parts: [{ text: 'Hello!' }] },
        { role: 'user', parts: [{ text: 'What does database mode do?' }] },
      ],
      systemInstruction: { parts: [{ text: 'Be brief.' }] },
      generationConfig: { maxOutputTokens: 64 },
    });
  });

  it('streams streamGenerateContent?alt=sse (CRLF events) with the last usageMetadata', async () => {
    server.on('/v1beta/models/gemini-2.0-flash:streamGenerateContent', {
      body: fixture('gemini-stream.sse'),
    });
    const stream = await provider()('models/gemini-2.0-flash').stream({
      prompt: 'What does database mode do?',
    });
    let text = '';
    for await (const delta of stream) text += delta;
    expect(text).toBe('Database mode gives each tenant its own database.');
    expect((await stream.result).usage).toEqual({ inputTokens: 18, outputTokens: 10, totalTokens: 28 });
    expect(server.requests[0]?.query.get('alt')).toBe('sse');
  });

  it('refuses a stream that ends before a finishReason', async () => {
    const body = fixture('gemini-stream.sse');
    server.on('/v1beta/models/gemini-2.0-flash:streamGenerateContent', {
      body,
      cutAfterBytes: Math.floor(body.length / 2),
      endCleanly: true,
    });
    const stream = await provider()('gemini-2.0-flash').stream({ prompt: 'hi' });
    await expect(stream.result).rejects.toMatchObject({ code: 'PROVIDER_UNAVAILABLE' });
  });

  it('reads RetryInfo.retryDelay of a RESOURCE_EXHAUSTED 429: a long one fails at once with RATE_LIMITED', async () => {
    server.on('/v1beta/models/gemini-2.0-flash:generateContent', {
      status: 429,
      json: jsonFixture('gemini-error-429.json'),
    });
    await expect(
      provider({ maxRetries: 2 })('gemini-2.0-flash').generate({ prompt: 'hi' }),
    ).rejects.toMatchObject({
      code: 'RATE_LIMITED',
      retryAfterSeconds: 42,
      details: { providerErrorType: 'RESOURCE_EXHAUSTED' },
    });
    // 42s is longer than maxRetryDelayMs: no retry, so a fallback model can answer now.
    expect(server.requests).toHaveLength(1);
  });

  it('waits a short RetryInfo.retryDelay and retries', async () => {
    const exhausted = jsonFixture('gemini-error-429.json') as {
      error: { details: Record<string, unknown>[] };
    };
    exhausted.error.details = exhausted.error.details.map((detail) =>
      detail.retryDelay === undefined ? detail : { ...detail, retryDelay: '0.02s' },
    );
    server.on(
      '/v1beta/models/gemini-2.0-flash:generateContent',
      { status: 429, json: exhausted },
      { json: jsonFixture('gemini-generate.json') },
    );
    const result = await provider({ maxRetries: 1 })('gemini-2.0-flash').generate({ prompt: 'hi' });
    expect(result.text).toBe('Database mode gives each tenant its own database.');
    expect(server.requests).toHaveLength(2);
  });

  it('maps an invalid key (400 INVALID_ARGUMENT) to PROVIDER_ERROR without retry', async () => {
    server.on('/v1beta/models/gemini-2.0-flash:generateContent', {
      status: 400,
      json: jsonFixture('gemini-error-400.json'),
    });
    await expect(provider()('gemini-2.0-flash').generate({ prompt: 'hi' })).rejects.toMatchObject({
      code: 'PROVIDER_ERROR',
      message: expect.stringContaining('API key not valid'),
    });
    expect(server.requests).toHaveLength(1);
  });

  it('embeds with batchEmbedContents and estimates usage (the API reports none)', async () => {
    server.on('/v1beta/models/text-embedding-004:batchEmbedContents', {
      json: jsonFixture('gemini-batch-embed.json'),
    });
    const model = provider().embedding('text-embedding-004', {
      dimensions: 4,
      taskType: 'RETRIEVAL_DOCUMENT',
    });
    const result = await model.embed(['alpha', 'beta']);
    expect(result.embeddings).toEqual([
      [0.013, -0.008, -0.046, 0.071],
      [0.024, 0.011, -0.035, 0.002],
    ]);
    expect(result.usage.estimated).toBe(true);
    expect(result.usage.tokens).toBeGreaterThan(0);
    expect(server.requests[0]?.body).toEqual({
      requests: [
        {
          model: 'models/text-embedding-004',
          content: { parts: [{ text: 'alpha' }] },
          taskType: 'RETRIEVAL_DOCUMENT',
          outputDimensionality: 4,
        },
        {
          model: 'models/text-embedding-004',
          content: { parts: [{ text: 'beta' }] },
          taskType: 'RETRIEVAL_DOCUMENT',
          outputDimensionality: 4,
        },
      ],
    });
  });
});
