/**
 * The provider specification, version 1. Every implementation (OpenAI, Anthropic, Gemini, TEI,
 * Cohere, local) and every wrapper (fallback chain, tenant metering) returns objects of these
 * shapes, so callers never depend on a vendor.
 */

/** The version of this specification that a model implements. */
export type SpecificationVersion = 'v1';

/** Tokens consumed by one language-model call. */
export interface LanguageModelUsage {
  /** Tokens of the prompt (system, messages). */
  inputTokens: number;
  /** Tokens generated. */
  outputTokens: number;
  /** `inputTokens + outputTokens` unless the provider reports otherwise. */
  totalTokens: number;
  /**
   * `true` when the provider did not report usage and the numbers are an estimate
   * (about four characters per token). Omitted when the provider reported them.
   */
  estimated?: true;
}

/** Who speaks a message. */
export type MessageRole = 'system' | 'user' | 'assistant';

/** One message of a conversation. */
export interface Message {
  role: MessageRole;
  content: string;
}

/** Options every call accepts. */
export interface CallOptions {
  /** Cancels the HTTP request (and a running stream) when aborted. */
  abortSignal?: AbortSignal;
  /** Extra HTTP headers for this call only. */
  headers?: Record<string, string>;
}

/** What to generate. Give `prompt`, `messages`, or both (the prompt is appended as a user message). */
export interface GenerateOptions extends CallOptions {
  /** A single user message. */
  prompt?: string;
  /** The conversation so far. */
  messages?: readonly Message[];
  /** Instructions for the model (sent as the provider's system prompt). */
  system?: string;
  /** Upper bound on generated tokens. @default provider default (Anthropic: 1024) */
  maxOutputTokens?: number;
  /** Sampling temperature. @default provider default */
  temperature?: number;
  /** Sequences that stop generation. */
  stopSequences?: readonly string[];
  /**
   * Makes usage metering idempotent when the same logical call is retried by the caller
   * (for example a job re-run). @default a random UUID per call
   */
  idempotencyKey?: string;
}

/** Why generation stopped. */
export type FinishReason = 'stop' | 'length' | 'content-filter' | 'tool-calls' | 'error' | 'other';

/** The result of a complete (non-streamed or fully streamed) generation. */
export interface GenerateResult {
  text: string;
  usage: LanguageModelUsage;
  finishReason: FinishReason;
  /** `provider:modelId` of the model that answered (after any fallback). */
  model: string;
}

/**
 * A running generation. Iterate it for text deltas; `result` resolves with the full text and
 * usage once the stream has ended, and rejects when the stream breaks off (never a silent
 * truncated answer). Breaking out of the loop cancels the HTTP request.
 */
export interface LanguageModelStream extends AsyncIterable<string> {
  /** `provider:modelId` of the model that is answering. */
  readonly model: string;
  /** Resolves after the last delta; rejects with the same error the iteration threw. */
  readonly result: Promise<GenerateResult>;
  /**
   * Usage up to now: the final usage once `result` resolved; after a break-off, what the
   * provider reported so far, the rest estimated (`estimated: true`). Metering uses it to bill
   * the tokens a broken or abandoned stream consumed.
   */
  usageSoFar(): LanguageModelUsage;
}

/** A text-generation model. */
export interface LanguageModel {
  readonly specificationVersion: SpecificationVersion;
  /** `openai`, `anthropic`, `gemini`, `local`, or the name given to an OpenAI-compatible provider. */
  readonly provider: string;
  readonly modelId: string;
  /** Generates a full answer. */
  generate(options: GenerateOptions): Promise<GenerateResult>;
  /**
   * Starts a streamed answer. Resolves once the provider accepted the request (so HTTP errors
   * such as 429 reject here, where a fallback can still take over); then yields text deltas.
   */
  stream(options: GenerateOptions): Promise<LanguageModelStream>;
}

/** Tokens consumed by one embedding call. */
export interface EmbeddingUsage {
  tokens: number;
  /** `true` when the provider did not report usage and the number is an estimate. */
  estimated?: true;
}

/** Options of {@link EmbeddingModel.embed}. */
export interface EmbedOptions extends CallOptions {
  /** See {@link GenerateOptions.idempotencyKey}. */
  idempotencyKey?: string;
}

/** The result of {@link EmbeddingModel.embed}: one vector per input text, in input order. */
export interface EmbedResult {
  embeddings: number[][];
  usage: EmbeddingUsage;
}

/** A text-embedding model. */
export interface EmbeddingModel {
  readonly specificationVersion: SpecificationVersion;
  readonly provider: string;
  readonly modelId: string;
  /** Length of every vector this model returns. */
  readonly dimensions: number;
  /** Embeds texts; the result has one vector per text, in the same order. */
  embed(texts: readonly string[], options?: EmbedOptions): Promise<EmbedResult>;
}

/** One reranked document. */
export interface RerankResult {
  /** Index of the document in the input array. */
  index: number;
  /** Relevance score; higher is more relevant (scale depends on the model). */
  score: number;
  /** The document text. */
  document: string;
}

/** What a rerank call consumed. */
export interface RerankUsage {
  /** Billed search units (Cohere), when the provider reports them. */
  searchUnits?: number;
}

/** The result of {@link RerankingModel.rerank}, most relevant first. */
export interface RerankResponse {
  results: RerankResult[];
  usage: RerankUsage;
}

/** A reranker: orders documents by relevance to a query. */
export interface RerankingModel {
  readonly specificationVersion: SpecificationVersion;
  readonly provider: string;
  readonly modelId: string;
  /**
   * Scores `documents` against `query` and returns the `topN` best, most relevant first.
   * @param topN how many results to return; all when omitted.
   */
  rerank(
    query: string,
    documents: readonly string[],
    topN?: number,
    options?: CallOptions,
  ): Promise<RerankResponse>;
}
