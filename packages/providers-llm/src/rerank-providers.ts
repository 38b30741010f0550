import { MtPaasError } from '@mt-paas/context';
import { z } from 'zod';
import { type HttpProviderOptions, httpSettings, postJson, readEnv, requireApiKey } from './http.js';
import { checkTopN, rankResults } from './rerank-results.js';
import type { CallOptions, RerankingModel, RerankResponse, RerankResult } from './spec.js';

function checkIndex(provider: string, index: number, documents: readonly string[]): string {
  const document = documents[index];
  if (document === undefined) {
    throw new MtPaasError(
      'PROVIDER_ERROR',
      `${provider} returned a result for document ${index} of ${documents.length}; check that the base URL points at a ${provider} rerank API.`,
      { details: { provider } },
    );
  }
  return document;
}

/** Options of {@link createTeiReranker}. */
export interface TeiRerankerOptions extends HttpProviderOptions {
  /**
   * Base URL of the text-embeddings-inference server running a reranker model.
   * @default process.env.TEI_RERANKER_URL ?? 'http://127.0.0.1:8080'
   */
  baseURL?: string;
  /** Bearer token (Hugging Face Inference Endpoints). @default process.env.TEI_API_KEY, optional */
  apiKey?: string;
  /** Reported as `modelId` (TEI serves one model per server). @default 'tei' */
  modelId?: string;
  /** Documents per request; TEI refuses batches above its `--max-client-batch-size`. @default 32 */
  maxBatchSize?: number;
  /** Ask TEI to truncate documents longer than the model's window instead of failing. @default true */
  truncate?: boolean;
}

const teiResponseSchema = z.array(z.object({ index: z.number().int().nonnegative(), score: z.number() }));

/**
 * A reranker over Hugging Face text-embeddings-inference `POST /rerank`. Large inputs are split
 * into batches of `maxBatchSize` and merged.
 *
 * @example
 * const reranker = createTeiReranker({ baseURL: 'http://127.0.0.1:8080' });
 * const { results } = await reranker.rerank('what is rls?', documents, 3);
 */
export function createTeiReranker(options: TeiRerankerOptions = {}): RerankingModel {
  const name = 'tei';
  const modelId = options.modelId ?? 'tei';
  const batchSize = options.maxBatchSize ?? 32;
  const settings = httpSettings(options, {
    name,
    baseURLEnv: 'TEI_RERANKER_URL',
    defaultBaseURL: 'http://127.0.0.1:8080',
    authHeaders: (): Record<string, string> => {
      const apiKey = options.apiKey ?? readEnv(['TEI_API_KEY']);
      return apiKey === undefined ? {} : { authorization: `Bearer ${apiKey}` };
    },
  });
  return {
    specificationVersion: 'v1',
    provider: name,
    modelId,
    async rerank(
      query: string,
      documents: readonly string[],
      topN?: number,
      call: CallOptions = {},
    ): Promise<RerankResponse> {
      checkTopN(topN);
      const results: RerankResult[] = [];
      for (let start = 0; start < documents.length; start += batchSize) {
        const batch = documents.slice(start, start + batchSize);
        const response = await postJson(
          settings,
          modelId,
          '/rerank',
          { query, texts: batch, raw_scores: false, return_text: false, truncate: options.truncate ?? true },
          teiResponseSchema,
          call,
        );
        for (const item of response) {
          const index = start + item.index;
          results.push({ index, score: item.score, document: checkIndex(name, index, documents) });
        }
      }
      return { results: rankResults(results, topN), usage: {} };
    },
  };
}

/** Options of {@link createCohereReranker}. */
export interface CohereRerankerOptions extends HttpProviderOptions {
  /** Bearer key. @default process.env.COHERE_API_KEY ?? process.env.CO_API_KEY, read at call time */
  apiKey?: string;
  /** @default process.env.COHERE_BASE_URL ?? 'https://api.cohere.com/v2' */
  baseURL?: string;
  /** @default 'rerank-v3.5' */
  modelId?: string;
  /** Sent as `max_tokens_per_doc` (longer documents are truncated by Cohere). */
  maxTokensPerDocument?: number;
}

const cohereResponseSchema = z.object({
  results: z.array(z.object({ index: z.number().int().nonnegative(), relevance_score: z.number() })),
  meta: z
    .object({ billed_units: z.object({ search_units: z.number().nonnegative().optional() }).optional() })
    .optional(),
});

const COHERE_ENV = ['COHERE_API_KEY', 'CO_API_KEY'] as const;

/**
 * A reranker over Cohere's v2 `POST /rerank`; reports billed search units as usage.
 *
 * @example
 * const reranker = createCohereReranker({ apiKey: process.env.COHERE_API_KEY });
 * const { results } = await reranker.rerank('what is rls?', documents, 3);
 */
export function createCohereReranker(options: CohereRerankerOptions = {}): RerankingModel {
  const name = 'cohere';
  const modelId = options.modelId ?? 'rerank-v3.5';
  const settings = httpSettings(options, {
    name,
    baseURLEnv: 'COHERE_BASE_URL',
    defaultBaseURL: 'https://api.cohere.com/v2',
    authHeaders: () => ({
      authorization: `Bearer ${requireApiKey(name, options.apiKey ?? readEnv(COHERE_ENV), COHERE_ENV)}`,
    }),
  });
  return {
    specificationVersion: 'v1',
    provider: name,
    modelId,
    async rerank(
      query: string,
      documents: readonly string[],
      topN?: number,
      call: CallOptions = {},
    ): Promise<RerankResponse> {
      checkTopN(topN);
      if (documents.length === 0) return { results: [], usage: {} };
      const response = await postJson(
        settings,
        modelId,
        '/rerank',
        {
          model: modelId,
          query,
          documents: [...documents],
          ...(topN === undefined ? {} : { top_n: topN }),
          ...(options.maxTokensPerDocument === undefined
            ? {}
            : { max_tokens_per_doc: options.maxTokensPerDocument }),
        },
        cohereResponseSchema,
        call,
      );
      const results = response.results.map((item) => ({
        index: item.index,
        score: item.relevance_score,
        document: checkIndex(name, item.index, documents),
      }));
      const searchUnits = response.meta?.billed_units?.search_units;
      return {
        results: rankResults(results, topN),
        usage: searchUnits === undefined ? {} : { searchUnits },
      };
    },
  };
}

/** The default TEI reranker; reads `TEI_RERANKER_URL` (and `TEI_API_KEY`) when a call is made. */
export const teiReranker: RerankingModel = createTeiReranker();

/** The default Cohere reranker; reads `COHERE_API_KEY` when a call is made. */
export const cohereReranker: RerankingModel = createCohereReranker();
