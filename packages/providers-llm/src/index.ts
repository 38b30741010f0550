export type { AnthropicProvider, AnthropicProviderOptions } from './anthropic-provider.js';
export { anthropic, anthropicFinishReason, createAnthropic } from './anthropic-provider.js';
export type {
  CooldownTracker,
  CooldownTrackerOptions,
  FallbackEvent,
  FallbackOptions,
} from './fallback.js';
export { createCooldownTracker, createFallbackLanguageModel, isFallbackError } from './fallback.js';
export type { GeminiEmbeddingOptions, GeminiProvider, GeminiProviderOptions } from './gemini-provider.js';
export { createGemini, gemini, geminiFinishReason } from './gemini-provider.js';
export type { HttpProviderOptions } from './http.js';
export { retryAfterMs } from './http.js';
export type { StreamPart } from './language-model-stream.js';
export { createLanguageModelStream } from './language-model-stream.js';
export type { LocalEmbeddingModelOptions } from './local-embedding.js';
export { createLocalEmbeddingModel } from './local-embedding.js';
export type { LocalProvider, LocalProviderOptions } from './local-provider.js';
export { createLocalProvider, local } from './local-provider.js';
export type { MeteringOptions, TokenBudget } from './metering.js';
export { withEmbeddingMetering, withTokenMetering } from './metering.js';
export type {
  OpenAICompatibleProviderOptions,
  OpenAIEmbeddingOptions,
  OpenAIProvider,
  OpenAIProviderOptions,
} from './openai-provider.js';
export { createOpenAI, createOpenAICompatible, openAIFinishReason, openai } from './openai-provider.js';
export type { CohereRerankerOptions, TeiRerankerOptions } from './rerank-providers.js';
export { cohereReranker, createCohereReranker, createTeiReranker, teiReranker } from './rerank-providers.js';
export type { SecretBox, SecretBoxKey, SecretBoxOptions } from './secret-box.js';
export { createSecretBox } from './secret-box.js';
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
export type {
  LlmConfig,
  ModelReference,
  ProviderInstance,
  ProviderRegistration,
  ProviderSettings,
  ProvidersForOptions,
  TenantLlmOverrides,
  TenantOverridesStore,
  TenantProviders,
} from './tenant-providers.js';
export {
  BUILT_IN_PROVIDERS,
  encryptTenantApiKey,
  llmConfigSchema,
  parseModelReference,
  providersFor,
  providersForCurrentTenant,
  reencryptTenantApiKeys,
  tenantLlmOverridesSchema,
} from './tenant-providers.js';
