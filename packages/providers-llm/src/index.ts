export type { LocalEmbeddingModelOptions } from './local-embedding.js';
export { createLocalEmbeddingModel } from './local-embedding.js';
export type {
  CallOptions,
  EmbeddingModel,
  EmbeddingUsage,
  EmbedOptions,
  EmbedResult,
  FinishReason,
  GenerateOptions,
  GenerateResult,
  LanguageModel,
  LanguageModelStream,
  LanguageModelUsage,
  Message,
  MessageRole,
  RerankingModel,
  RerankResponse,
  RerankResult,
  RerankUsage,
  SpecificationVersion,
} from './spec.js';
