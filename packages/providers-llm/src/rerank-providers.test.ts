import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createCohereReranker, createTeiReranker } from './rerank-providers.js';
import { jsonFixture, startTestServer, type TestServer } from './test-server.js';

let server: TestServer;
beforeEach(async () => {
  server = await startTestServer();
});
afterEach(async () => {
  await server.close();
});

const documents = ['Pricing of the cafeteria', 'Row-level security isolates tenants', 'Parking rules'];

describe('TEI /rerank', () => {
  it('posts query and texts and returns the topN best with their documents', async () => {
    server.on('/rerank', { json: jsonFixture('tei-rerank.json') });
    const reranker = createTeiReranker({ baseURL: server.url });
    const response = await reranker.rerank('how are tenants isolated?', documents, 2);
    expect(response.results).toEqual([
      { index: 1, score: 0.9987, document: documents[1] },
      { index: 0, score: 0.0123, document: documents[0] },
    ]);
    expect(server.requests[0]?.body).toEqual({
      query: 'how are tenants isolated?',
      texts: documents,
      raw_scores: false,
      return_text: false,
      truncate: true,
    });
    expect(server.requests[0]?.headers.authorization).toBeUndefined();
  });

  it('splits inputs larger than the batch size and merges by score', async () => {
    server.on(
      '/rerank',
      {
        json: [
          { index: 1, score: 0.8 },
          { index: 0, score: 0.1 },
        ],
      },
      { json: [{ index: 0, score: 0.9 }] },
    );
    const reranker = createTeiReranker({ baseURL: server.url, maxBatchSize: 2, apiKey: 'hf_token' });
    const response = await reranker.rerank('q', documents);
    expect(response.results.map((result) => result.index)).toEqual([2, 1, 0]);
    expect(server.requests).toHaveLength(2);
    expect(server.requests[1]?.body).toMatchObject({ texts: [documents[2]] });
    expect(server.requests[0]?.headers.authorization).toBe('Bearer hf_token');
  });

  it('maps TEI errors (413 validation, 429 overloaded)', async () => {
    server.on('/rerank', { status: 413, json: jsonFixture('tei-error-413.json') });
    await expect(createTeiReranker({ baseURL: server.url }).rerank('q', documents)).rejects.toMatchObject({
      code: 'PROVIDER_ERROR',
      details: { providerErrorType: 'Validation' },
    });
    server.on('/rerank', { status: 429, json: jsonFixture('tei-error-429.json') });
    await expect(
      createTeiReranker({ baseURL: server.url, maxRetries: 0 }).rerank('q', documents),
    ).rejects.toMatchObject({ code: 'RATE_LIMITED' });
  });

  it('rejects a bad topN', async () => {
    await expect(createTeiReranker({ baseURL: server.url }).rerank('q', documents, 0)).rejects.toMatchObject({
      code: 'INVALID_REQUEST',
    });
  });
});

describe('Cohere v2 /rerank', () => {
  it('posts model, query, documents and top_n; reports search units', async () => {
    server.on('/v2/rerank', { json: jsonFixture('cohere-rerank.json') });
    const reranker = createCohereReranker({ apiKey: 'co-test', baseURL: `${server.url}/v2` });
    const response = await reranker.rerank('parking?', documents, 2);
    expect(response).toEqual({
      results: [
        { index: 2, score: 0.999071, document: documents[2] },
        { index: 0, score: 0.32713068, document: documents[0] },
      ],
      usage: { searchUnits: 1 },
    });
    expect(server.requests[0]?.body).toEqual({
      model: 'rerank-v3.5',
      query: 'parking?',
      documents,
      top_n: 2,
    });
    expect(server.requests[0]?.headers.authorization).toBe('Bearer co-test');
  });

  it('maps 401 to PROVIDER_ERROR with Cohere’s message', async () => {
    server.on('/v2/rerank', { status: 401, json: jsonFixture('cohere-error-401.json') });
    await expect(
      createCohereReranker({ apiKey: 'co-bad', baseURL: `${server.url}/v2` }).rerank('q', documents),
    ).rejects.toMatchObject({ code: 'PROVIDER_ERROR', details: { providerMessage: 'invalid api token' } });
  });

  it('refuses an index outside the documents', async () => {
    server.on('/v2/rerank', { json: { results: [{ index: 7, relevance_score: 0.5 }] } });
    await expect(
      createCohereReranker({ apiKey: 'co-test', baseURL: `${server.url}/v2` }).rerank('q', documents),
    ).rejects.toMatchObject({ code: 'PROVIDER_ERROR' });
  });
});
