/**
 * One contract, every implementation: each language model, embedding model and reranker is run
 * through the same checks of the v1 spec against its vendor's recorded wire format.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAnthropic } from './anthropic-provider.js';
import { createGemini } from './gemini-provider.js';
import { createLocalProvider } from './local-provider.js';
import { createOpenAI, createOpenAICompatible } from './openai-provider.js';
import { createCohereReranker, createTeiReranker } from './rerank-providers.js';
import type { EmbeddingModel, GenerateOptions, LanguageModel, RerankingModel } from './spec.js';
import { fixture, jsonFixture, startTestServer, type TestServer } from './test-server.js';

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer();
});
afterAll(async () => {
  await server.close();
});

const local = createLocalProvider({ dimensions: 4 });
const localCall: GenerateOptions = {
  system: 'Schema mode gives each tenant its own schema. Lunch is at noon.',
  prompt: 'What does schema mode give each tenant?',
};

const languageModels: [string, () => LanguageModel, () => void, GenerateOptions][] = [
  [
    'openai',
    () => createOpenAI({ apiKey: 'sk-test', baseURL: `${server.url}/openai/v1` })('gpt-4o-mini'),
    () => {
      server.on(
        '/openai/v1/chat/completions',
        { json: jsonFixture('openai-chat.json') },
        { body: fixture('openai-chat-stream.sse') },
      );
    },
    { prompt: 'What is RLS?' },
  ],
  [
    'openai-compatible',
    () => createOpenAICompatible({ name: 'ollama', baseURL: `${server.url}/ollama/v1` })('llama3.2'),
    () => {
      server.on(
        '/ollama/v1/chat/completions',
        {
          json: {
            choices: [
              { message: { role: 'assistant', content: 'Hello from Ollama.' }, finish_reason: 'stop' },
            ],
          },
        },
        { body: fixture('ollama-chat-stream.sse') },
      );
    },
    { prompt: 'Say hello' },
  ],
  [
    'anthropic',
    () =>
      createAnthropic({ apiKey: 'sk-ant', baseURL: `${server.url}/anthropic/v1` })('claude-3-5-haiku-latest'),
    () => {
      server.on(
        '/anthropic/v1/messages',
        { json: jsonFixture('anthropic-message.json') },
        { body: fixture('anthropic-stream.sse') },
      );
    },
    { prompt: 'What does schema mode do?' },
  ],
  [
    'gemini',
    () => createGemini({ apiKey: 'AIza', baseURL: `${server.url}/gemini/v1beta` })('gemini-2.0-flash'),
    () => {
      server.on('/gemini/v1beta/models/gemini-2.0-flash:generateContent', {
        json: jsonFixture('gemini-generate.json'),
      });
      server.on('/gemini/v1beta/models/gemini-2.0-flash:streamGenerateContent', {
        body: fixture('gemini-stream.sse'),
      });
    },
    { prompt: 'What does database mode do?' },
  ],
  ['local', () => local.languageModel(), () => {}, localCall],
];

describe.each(languageModels)('LanguageModel contract: %s', (_name, create, script, call) => {
  it('generates and streams the same answer with consistent usage', async () => {
    script();
    const model = create();
    expect(model.specificationVersion).toBe('v1');
    const generated = await model.generate(call);
    expect(generated.text.length).toBeGreaterThan(0);
    expect(generated.model).toBe(`${model.provider}:${model.modelId}`);
    expect(generated.finishReason).toBe('stop');
    for (const usage of [generated.usage]) {
      expect(usage.inputTokens).toBeGreaterThan(0);
      expect(usage.outputTokens).toBeGreaterThan(0);
      expect(usage.totalTokens).toBe(usage.inputTokens + usage.outputTokens);
    }
    const stream = await model.stream(call);
    expect(stream.model).toBe(generated.model);
    let text = '';
    for await (const delta of stream) {
      expect(typeof delta).toBe('string');
      text += delta;
    }
    const streamed = await stream.result;
    expect(text).toBe(generated.text);
    expect(streamed.text).toBe(generated.text);
    expect(streamed.usage.outputTokens).toBeGreaterThan(0);
    expect(streamed.usage.totalTokens).toBe(streamed.usage.inputTokens + streamed.usage.outputTokens);
  });
});

const embeddingModels: [string, () => EmbeddingModel, () => void][] = [
  [
    'openai',
    () =>
      createOpenAI({ apiKey: 'sk-test', baseURL: `${server.url}/openai/v1` }).embedding(
        'text-embedding-3-small',
        { dimensions: 4 },
      ),
    () => server.on('/openai/v1/embeddings', { json: jsonFixture('openai-embeddings.json') }),
  ],
  [
    'gemini',
    () =>
      createGemini({ apiKey: 'AIza', baseURL: `${server.url}/gemini/v1beta` }).embedding(
        'text-embedding-004',
        { dimensions: 4 },
      ),
    () =>
      server.on('/gemini/v1beta/models/text-embedding-004:batchEmbedContents', {
        json: jsonFixture('gemini-batch-embed.json'),
      }),
  ],
  ['local', () => local.embedding(), () => {}],
];

describe.each(embeddingModels)('EmbeddingModel contract: %s', (_name, create, script) => {
  it('returns one vector of `dimensions` numbers per text, and usage', async () => {
    script();
    const model = create();
    expect(model.specificationVersion).toBe('v1');
    const result = await model.embed(['first text', 'second text']);
    expect(result.embeddings).toHaveLength(2);
    for (const vector of result.embeddings) {
      expect(vector).toHaveLength(model.dimensions);
      for (const value of vector) expect(Number.isFinite(value)).toBe(true);
    }
    expect(result.usage.tokens).toBeGreaterThan(0);
  });
});

const documents = ['Pricing of the cafeteria', 'Row-level security isolates tenants', 'Parking rules'];
const rerankers: [string, () => RerankingModel, () => void][] = [
  [
    'tei',
    () => createTeiReranker({ baseURL: `${server.url}/tei` }),
    () => server.on('/tei/rerank', { json: jsonFixture('tei-rerank.json') }),
  ],
  [
    'cohere',
    () => createCohereReranker({ apiKey: 'co', baseURL: `${server.url}/cohere/v2` }),
    () =>
      server.on('/cohere/v2/rerank', {
        json: {
          results: [
            { index: 1, relevance_score: 0.98 },
            { index: 2, relevance_score: 0.1 },
          ],
        },
      }),
  ],
  ['local', () => local.reranker(), () => {}],
];

describe.each(rerankers)('RerankingModel contract: %s', (_name, create, script) => {
  it('returns at most topN results, most relevant first, with their documents', async () => {
    script();
    const model = create();
    expect(model.specificationVersion).toBe('v1');
    const { results } = await model.rerank('how are tenants isolated with row-level security?', documents, 2);
    expect(results).toHaveLength(2);
    expect(results[0]?.index).toBe(1);
    expect(results[0]!.score).toBeGreaterThanOrEqual(results[1]!.score);
    for (const result of results) expect(result.document).toBe(documents[result.index]);
  });

  it('refuses a topN that is not a positive integer with INVALID_REQUEST', async () => {
    script();
    const model = create();
    for (const topN of [0, -1, 1.5]) {
      await expect(model.rerank('tenants', documents, topN)).rejects.toMatchObject({
        code: 'INVALID_REQUEST',
      });
    }
  });
});
