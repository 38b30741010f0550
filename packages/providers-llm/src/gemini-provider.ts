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

/** Options of {@link createGemini}. */
export interface GeminiProviderOptions extends HttpProviderOptions {
  /**
   * Sent as `x-goog-api-key`.
   * @default process.env.GEMINI_API_KEY ?? process.env.GOOGLE_GENERATIVE_AI_API_KEY, read at call time
   */
  apiKey?: string;
  /** @default process.env.GEMINI_BASE_URL ?? 'https://generativelanguage.googleapis.com/v1beta' */
  baseURL?: string;
  /** Texts per `batchEmbedContents` request (the API takes at most 100). @default 100 */
  maxEmbeddingsPerCall?: number;
}

/** Options of {@link GeminiProvider.embedding}. */
export interface GeminiEmbeddingOptions {
  /** Vector length; sent as `outputDimensionality`. @default 768 for text-embedding-004, 3072 for gemini-embedding-001 */
  dimensions?: number;
  /** `RETRIEVAL_DOCUMENT`, `RETRIEVAL_QUERY`, `SEMANTIC_SIMILARITY` … */
  taskType?: string;
}

/** The Gemini provider: call it with a model id for a language model. */
export interface GeminiProvider {
  (modelId: string): LanguageModel;
  readonly name: 'gemini';
  languageModel(modelId: string): LanguageModel;
  embedding(modelId: string, options?: GeminiEmbeddingOptions): EmbeddingModel;
}

const ENV_KEYS = ['GEMINI_API_KEY', 'GOOGLE_GENERATIVE_AI_API_KEY'] as const;

const KNOWN_EMBEDDING_DIMENSIONS: Record<string, number> = {
  'text-embedding-004': 768,
  'gemini-embedding-001': 3072,
  'embedding-001': 768,
};

const usageSchema = z
  .object({
    promptTokenCount: z.number().int().nonnegative().optional(),
    candidatesTokenCount: z.number().int().nonnegative().optional(),
    thoughtsTokenCount: z.number().int().nonnegative().optional(),
    totalTokenCount: z.number().int().nonnegative().optional(),
  })
  .optional();

const responseSchema = z.object({
  candidates: z
    .array(
      z.object({
        content: z
          .object({
            parts: z
              .array(z.object({ text: z.string().optional(), thought: z.boolean().optional() }))
              .optional(),
          })
          .optional(),
        finishReason: z.string().optional(),
      }),
    )
    .optional(),
  promptFeedback: z.object({ blockReason: z.string().optional() }).optional(),
  usageMetadata: usageSchema,
});

const batchEmbedSchema = z.object({ embeddings: z.array(z.object({ values: z.array(z.number()) })) });

/** Maps a Gemini `finishReason`. */
export function geminiFinishReason(reason: string | undefined): FinishReason {
  switch (reason) {
    case 'STOP':
      return 'stop';
    case 'MAX_TOKENS':
      return 'length';
    case 'SAFETY':
    case 'RECITATION':
    case 'BLOCKLIST':
    case 'PROHIBITED_CONTENT':
    case 'SPII':
      return 'content-filter';
    case 'MALFORMED_FUNCTION_CALL':
      return 'error';
    default:
      return 'other';
  }
}

function geminiUsage(usage: z.infer<typeof usageSchema>): {
  inputTokens?: number;
  outputTokens?: number;
  totalTokens?: number;
} {
  if (usage === undefined || usage.promptTokenCount === undefined) return {};
  // Thinking tokens are billed as output.
  const outputTokens = (usage.candidatesTokenCount ?? 0) + (usage.thoughtsTokenCount ?? 0);
  return {
    inputTokens: usage.promptTokenCount,
    outputTokens,
    totalTokens: usage.totalTokenCount ?? usage.promptTokenCount + outputTokens,
  };
}

function candidateText(response: z.infer<typeof responseSchema>): string {
  const parts = response.candidates?.[0]?.content?.parts ?? [];
  return parts
    .filter((part) => part.thought !== true)
    .map((part) => part.text ?? '')
    .join('');
}

function modelPath(modelId: string): string {
  return modelId.startsWith('models/') ? modelId.slice('models/'.length) : modelId;
}

/**
 * The Gemini provider (Generative Language API): `generateContent`,
 * `streamGenerateContent?alt=sse` and `batchEmbedContents`. `batchEmbedContents` reports no
 * token counts, so embedding usage is an estimate (flagged `estimated`).
 *
 * @example
 * const gemini = createGemini({ apiKey: process.env.GEMINI_API_KEY });
 * const { text } = await gemini('gemini-2.0-flash').generate({ prompt: 'Hello' });
 */
export function createGemini(options: GeminiProviderOptions = {}): GeminiProvider {
  const name = 'gemini';
  const settings = httpSettings(options, {
    name,
    baseURLEnv: 'GEMINI_BASE_URL',
    defaultBaseURL: 'https://generativelanguage.googleapis.com/v1beta',
    authHeaders: () => ({
      'x-goog-api-key': requireApiKey(name, options.apiKey ?? readEnv(ENV_KEYS), ENV_KEYS),
    }),
  });

  function body(call: GenerateOptions): Record<string, unknown> {
    const systemParts = call.system === undefined ? [] : [call.system];
    const contents: { role: 'user' | 'model'; parts: { text: string }[] }[] = [];
    for (const message of callMessages(call)) {
      if (message.role === 'system') {
        systemParts.push(message.content);
        continue;
      }
      contents.push({
        role: message.role === 'assistant' ? 'model' : 'user',
        parts: [{ text: message.content }],
      });
    }
    if (contents.length === 0) {
      throw new MtPaasError('INVALID_REQUEST', 'A Gemini call needs a prompt or at least one user message.');
    }
    const generationConfig = {
      ...(call.maxOutputTokens === undefined ? {} : { maxOutputTokens: call.maxOutputTokens }),
      ...(call.temperature === undefined ? {} : { temperature: call.temperature }),
      ...(call.stopSequences === undefined ? {} : { stopSequences: [...call.stopSequences] }),
    };
    return {
      contents,
      ...(systemParts.length === 0
        ? {}
        : { systemInstruction: { parts: [{ text: systemParts.join('\n\n') }] } }),
      ...(Object.keys(generationConfig).length === 0 ? {} : { generationConfig }),
    };
  }

  function languageModel(modelId: string): LanguageModel {
    const id = modelPath(modelId);
    const model = `${name}:${id}`;
    return {
      specificationVersion: 'v1',
      provider: name,
      modelId: id,
      async generate(call: GenerateOptions): Promise<GenerateResult> {
        const response = await postJson(
          settings,
          id,
          `/models/${encodeURIComponent(id)}:generateContent`,
          body(call),
          responseSchema,
          call,
        );
        const text = candidateText(response);
        const blocked = response.promptFeedback?.blockReason !== undefined;
        return {
          text,
          finishReason: blocked
            ? 'content-filter'
            : geminiFinishReason(response.candidates?.[0]?.finishReason),
          model,
          usage: completeUsage(geminiUsage(response.usageMetadata), {
            input: () => estimateInputTokens(call),
            output: () => estimateTokens(text),
          }),
        };
      },
      async stream(call: GenerateOptions): Promise<LanguageModelStream> {
        const events = await postEventStream(
          settings,
          id,
          `/models/${encodeURIComponent(id)}:streamGenerateContent?alt=sse`,
          body(call),
          call,
        );
        async function* parts(): AsyncGenerator<StreamPart> {
          let finished = false;
          for await (const event of events) {
            const chunk = parseStreamChunk(name, id, event.data, responseSchema);
            const text = candidateText(chunk);
            if (text !== '') yield { type: 'text', text };
            const usage = geminiUsage(chunk.usageMetadata);
            if (usage.inputTokens !== undefined) yield { type: 'usage', ...usage };
            const reason = chunk.candidates?.[0]?.finishReason;
            if (chunk.promptFeedback?.blockReason !== undefined) {
              finished = true;
              yield { type: 'finish', finishReason: 'content-filter' };
            } else if (reason !== undefined) {
              finished = true;
              yield { type: 'finish', finishReason: geminiFinishReason(reason) };
            }
          }
          if (!finished) throw incompleteStreamError(name, id, 'no finishReason');
        }
        return createLanguageModelStream({ model, parts: parts(), cancel: events.cancel, options: call });
      },
    };
  }

  function embedding(modelId: string, embeddingOptions: GeminiEmbeddingOptions = {}): EmbeddingModel {
    const id = modelPath(modelId);
    const dimensions = embeddingOptions.dimensions ?? KNOWN_EMBEDDING_DIMENSIONS[id];
    if (dimensions === undefined) {
      throw new MtPaasError(
        'CONFIG_INVALID',
        `The vector length of gemini embedding model "${id}" is not known; pass { dimensions } to embedding().`,
        { details: { provider: name, model: id } },
      );
    }
    const perCall = options.maxEmbeddingsPerCall ?? 100;
    return {
      specificationVersion: 'v1',
      provider: name,
      modelId: id,
      dimensions,
      // batchEmbedContents reports no token counts: the usage is estimated.
      embed: (texts: readonly string[], call: EmbedOptions = {}): Promise<EmbedResult> =>
        embedInBatches(name, id, texts, perCall, async (batch) => {
          const response = await postJson(
            settings,
            id,
            `/models/${encodeURIComponent(id)}:batchEmbedContents`,
            {
              requests: batch.map((text) => ({
                model: `models/${id}`,
                content: { parts: [{ text }] },
                ...(embeddingOptions.taskType === undefined ? {} : { taskType: embeddingOptions.taskType }),
                ...(embeddingOptions.dimensions === undefined
                  ? {}
                  : { outputDimensionality: embeddingOptions.dimensions }),
              })),
            },
            batchEmbedSchema,
            call,
          );
          return { embeddings: response.embeddings.map((item) => item.values), tokens: undefined };
        }),
    };
  }

  const provider = ((modelId: string) => languageModel(modelId)) as GeminiProvider;
  Object.defineProperties(provider, {
    name: { value: name },
    languageModel: { value: languageModel },
    embedding: { value: embedding },
  });
  return provider;
}

/** The default Gemini provider; reads `GEMINI_API_KEY` when a call is made. */
export const gemini: GeminiProvider = createGemini();
