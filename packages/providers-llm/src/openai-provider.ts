import { MtPaasError } from '@mt-paas/context';
import { z } from 'zod';
import { embedInBatches } from './embedding-batches.js';
import {
  type HttpProviderOptions,
  httpSettings,
  incompleteStreamError,
  parseStreamChunk,
  postEventStream,
  postJson,
  readEnv,
  requireApiKey,
} from './http.js';
import {
  callMessages,
  completeUsage,
  createLanguageModelStream,
  estimateInputTokens,
  type StreamPart,
} from './language-model-stream.js';
import type {
  EmbeddingModel,
  EmbedOptions,
  EmbedResult,
  FinishReason,
  GenerateOptions,
  GenerateResult,
  LanguageModel,
  LanguageModelStream,
} from './spec.js';
import { estimateTokens } from './text.js';

/** Options of {@link createOpenAI} and {@link createOpenAICompatible}. */
export interface OpenAIProviderOptions extends HttpProviderOptions {
  /** API key sent as `Authorization: Bearer`. @default process.env.OPENAI_API_KEY, read at call time */
  apiKey?: string;
  /** @default process.env.OPENAI_BASE_URL ?? 'https://api.openai.com/v1' */
  baseURL?: string;
  /** Sent as `OpenAI-Organization`. */
  organization?: string;
  /** Sent as `OpenAI-Project`. */
  project?: string;
  /** Provider name reported in `model` strings, errors and metering. @default 'openai' */
  name?: string;
  /**
   * Asks for usage in streams (`stream_options.include_usage`). Turn off for a server that
   * rejects the option; usage is then estimated. @default true
   */
  includeStreamUsage?: boolean;
  /** Texts per embeddings request; longer inputs are split. @default 2048 */
  maxEmbeddingsPerCall?: number;
}

/** Options of {@link OpenAIProvider.embedding}. */
export interface OpenAIEmbeddingOptions {
  /**
   * Vector length. Required for models whose size is not known here (most OpenAI-compatible
   * servers); for `text-embedding-3-*` a smaller value is sent as the `dimensions` parameter.
   */
  dimensions?: number;
}

/** An OpenAI (or OpenAI-compatible) provider: call it with a model id for a language model. */
export interface OpenAIProvider {
  (modelId: string): LanguageModel;
  /** The provider name (`openai`, or the name of a compatible server). */
  readonly name: string;
  /** A chat-completions language model. */
  languageModel(modelId: string): LanguageModel;
  /** An embeddings model. */
  embedding(modelId: string, options?: OpenAIEmbeddingOptions): EmbeddingModel;
}

const KNOWN_EMBEDDING_DIMENSIONS: Record<string, number> = {
  'text-embedding-3-small': 1536,
  'text-embedding-3-large': 3072,
  'text-embedding-ada-002': 1536,
};

const usageSchema = z
  .object({
    prompt_tokens: z.number().int().nonnegative(),
    completion_tokens: z.number().int().nonnegative().optional(),
    total_tokens: z.number().int().nonnegative().optional(),
  })
  .nullish();

const chatCompletionSchema = z.object({
  choices: z
    .array(
      z.object({
        message: z.object({ content: z.string().nullish() }),
        finish_reason: z.string().nullish(),
      }),
    )
    .min(1),
  usage: usageSchema,
});

const chatChunkSchema = z.object({
  choices: z
    .array(
      z.object({
        delta: z.object({ content: z.string().nullish() }).nullish(),
        finish_reason: z.string().nullish(),
      }),
    )
    .optional()
    .default([]),
  usage: usageSchema,
});

const embeddingsSchema = z.object({
  data: z.array(z.object({ index: z.number().int().nonnegative(), embedding: z.array(z.number()) })),
  usage: z.object({ prompt_tokens: z.number().int().nonnegative() }).nullish(),
});

/** Maps an OpenAI `finish_reason`. */
export function openAIFinishReason(reason: string | null | undefined): FinishReason {
  switch (reason) {
    case 'stop':
      return 'stop';
    case 'length':
      return 'length';
    case 'content_filter':
      return 'content-filter';
    case 'tool_calls':
    case 'function_call':
      return 'tool-calls';
    default:
      return 'other';
  }
}

function openAIUsage(usage: z.infer<typeof usageSchema>): {
  inputTokens?: number;
  outputTokens?: number;
  totalTokens?: number;
} {
  if (usage === null || usage === undefined) return {};
  return {
    inputTokens: usage.prompt_tokens,
    outputTokens: usage.completion_tokens ?? 0,
    totalTokens: usage.total_tokens ?? usage.prompt_tokens + (usage.completion_tokens ?? 0),
  };
}

function createProvider(options: OpenAIProviderOptions, compatible: boolean): OpenAIProvider {
  const name = options.name ?? 'openai';
  const settings = httpSettings(options, {
    name,
    baseURLEnv: 'OPENAI_BASE_URL',
    defaultBaseURL: 'https://api.openai.com/v1',
    authHeaders: () => {
      const apiKey = options.apiKey ?? (compatible ? undefined : readEnv(['OPENAI_API_KEY']));
      const headers: Record<string, string> = {};
      if (!compatible) headers.authorization = `Bearer ${requireApiKey(name, apiKey, ['OPENAI_API_KEY'])}`;
      else if (apiKey !== undefined && apiKey !== '') headers.authorization = `Bearer ${apiKey}`;
      if (options.organization !== undefined) headers['openai-organization'] = options.organization;
      if (options.project !== undefined) headers['openai-project'] = options.project;
      return headers;
    },
  });

  function chatBody(modelId: string, call: GenerateOptions, stream: boolean): Record<string, unknown> {
    const messages = callMessages(call).map((message) => ({ role: message.role, content: message.content }));
    if (call.system !== undefined) messages.unshift({ role: 'system', content: call.system });
    return {
      model: modelId,
      messages,
      // OpenAI deprecated max_tokens for max_completion_tokens; compatible servers know max_tokens.
      ...(call.maxOutputTokens === undefined
        ? {}
        : compatible
          ? { max_tokens: call.maxOutputTokens }
          : { max_completion_tokens: call.maxOutputTokens }),
      ...(call.temperature === undefined ? {} : { temperature: call.temperature }),
      ...(call.stopSequences === undefined ? {} : { stop: [...call.stopSequences] }),
      ...(stream
        ? {
            stream: true,
            ...(options.includeStreamUsage === false ? {} : { stream_options: { include_usage: true } }),
          }
        : {}),
    };
  }

  function languageModel(modelId: string): LanguageModel {
    const model = `${name}:${modelId}`;
    return {
      specificationVersion: 'v1',
      provider: name,
      modelId,
      async generate(call: GenerateOptions): Promise<GenerateResult> {
        const response = await postJson(
          settings,
          modelId,
          '/chat/completions',
          chatBody(modelId, call, false),
          chatCompletionSchema,
          call,
        );
        const choice = response.choices[0]!;
        const text = choice.message.content ?? '';
        return {
          text,
          finishReason: openAIFinishReason(choice.finish_reason),
          model,
          usage: completeUsage(openAIUsage(response.usage), {
            input: () => estimateInputTokens(call),
            output: () => estimateTokens(text),
          }),
        };
      },
      async stream(call: GenerateOptions): Promise<LanguageModelStream> {
        const events = await postEventStream(
          settings,
          modelId,
          '/chat/completions',
          chatBody(modelId, call, true),
          call,
        );
        async function* parts(): AsyncGenerator<StreamPart> {
          let finished = false;
          for await (const event of events) {
            if (event.data === '[DONE]') return;
            const chunk = parseStreamChunk(name, modelId, event.data, chatChunkSchema);
            for (const choice of chunk.choices) {
              const text = choice.delta?.content;
              if (text !== undefined && text !== null) yield { type: 'text', text };
              if (choice.finish_reason !== undefined && choice.finish_reason !== null) {
                finished = true;
                yield { type: 'finish', finishReason: openAIFinishReason(choice.finish_reason) };
              }
            }
            if (chunk.usage !== undefined && chunk.usage !== null) {
              yield { type: 'usage', ...openAIUsage(chunk.usage) };
            }
          }
          // Some compatible servers omit [DONE]; a finish_reason still marks a complete answer.
          if (!finished) throw incompleteStreamError(name, modelId, 'no finish_reason, no [DONE]');
        }
        return createLanguageModelStream({ model, parts: parts(), cancel: events.cancel, options: call });
      },
    };
  }

  function embedding(modelId: string, embeddingOptions: OpenAIEmbeddingOptions = {}): EmbeddingModel {
    const known = KNOWN_EMBEDDING_DIMENSIONS[modelId];
    const dimensions = embeddingOptions.dimensions ?? known;
    if (dimensions === undefined) {
      throw new MtPaasError(
        'CONFIG_INVALID',
        `The vector length of ${name} embedding model "${modelId}" is not known; pass { dimensions } to embedding().`,
        { details: { provider: name, model: modelId } },
      );
    }
    const sendDimensions =
      embeddingOptions.dimensions !== undefined && modelId.startsWith('text-embedding-3')
        ? { dimensions: embeddingOptions.dimensions }
        : {};
    const perCall = options.maxEmbeddingsPerCall ?? 2048;
    return {
      specificationVersion: 'v1',
      provider: name,
      modelId,
      dimensions,
      embed: (texts: readonly string[], call: EmbedOptions = {}): Promise<EmbedResult> =>
        embedInBatches(name, modelId, texts, perCall, async (batch) => {
          const response = await postJson(
            settings,
            modelId,
            '/embeddings',
            { model: modelId, input: batch, encoding_format: 'float', ...sendDimensions },
            embeddingsSchema,
            call,
          );
          return {
            embeddings: [...response.data]
              .sort((left, right) => left.index - right.index)
              .map((item) => item.embedding),
            tokens: response.usage?.prompt_tokens,
          };
        }),
    };
  }

  const provider = ((modelId: string) => languageModel(modelId)) as OpenAIProvider;
  Object.defineProperties(provider, {
    name: { value: name },
    languageModel: { value: languageModel },
    embedding: { value: embedding },
  });
  return provider;
}

/**
 * The OpenAI provider: chat completions (also streamed, with `stream_options.include_usage`)
 * and embeddings. The key is read from `OPENAI_API_KEY` at call time when not given.
 *
 * @example
 * const openai = createOpenAI({ apiKey: process.env.OPENAI_API_KEY });
 * const { text, usage } = await openai('gpt-4o-mini').generate({ prompt: 'Hello' });
 */
export function createOpenAI(options: OpenAIProviderOptions = {}): OpenAIProvider {
  return createProvider(options, false);
}

/** Options of {@link createOpenAICompatible}: `baseURL` is required, the key optional. */
export interface OpenAICompatibleProviderOptions extends OpenAIProviderOptions {
  /** The server's OpenAI-compatible base, e.g. `http://127.0.0.1:11434/v1` (Ollama). */
  baseURL: string;
  /** Reported in `model` strings and errors (`vllm`, `ollama`, `lmstudio`). */
  name: string;
}

/**
 * An OpenAI-compatible server (vLLM, Ollama, LM Studio, LiteLLM …): the same wire format,
 * your `baseURL`, an optional key, and `max_tokens` instead of `max_completion_tokens`.
 *
 * @example
 * const ollama = createOpenAICompatible({ name: 'ollama', baseURL: 'http://127.0.0.1:11434/v1' });
 * const answer = await ollama('llama3.2').generate({ prompt: 'Hello' });
 */
export function createOpenAICompatible(options: OpenAICompatibleProviderOptions): OpenAIProvider {
  return createProvider(options, true);
}

/** The default OpenAI provider; reads `OPENAI_API_KEY` (and `OPENAI_BASE_URL`) when a call is made. */
export const openai: OpenAIProvider = createOpenAI();
