import { MtPaasError } from '@mt-paas/context';
import { z } from 'zod';
import {
  type HttpProviderOptions,
  httpSettings,
  incompleteStreamError,
  parseEventData,
  postEventStream,
  postJson,
  readEnv,
  requireApiKey,
  streamEventError,
} from './http.js';
import {
  callMessages,
  completeUsage,
  createLanguageModelStream,
  estimateInputTokens,
  type StreamPart,
} from './language-model-stream.js';
import type {
  FinishReason,
  GenerateOptions,
  GenerateResult,
  LanguageModel,
  LanguageModelStream,
} from './spec.js';
import { estimateTokens } from './text.js';

/** Options of {@link createAnthropic}. */
export interface AnthropicProviderOptions extends HttpProviderOptions {
  /** Sent as `x-api-key`. @default process.env.ANTHROPIC_API_KEY, read at call time */
  apiKey?: string;
  /** @default process.env.ANTHROPIC_BASE_URL ?? 'https://api.anthropic.com/v1' */
  baseURL?: string;
  /** Sent as `anthropic-version`. @default '2023-06-01' */
  version?: string;
  /** `max_tokens` when a call gives no `maxOutputTokens` (the Messages API requires one). @default 1024 */
  defaultMaxOutputTokens?: number;
}

/** The Anthropic provider: call it with a model id for a Messages API language model. */
export interface AnthropicProvider {
  (modelId: string): LanguageModel;
  readonly name: 'anthropic';
  languageModel(modelId: string): LanguageModel;
}

const usageSchema = z.object({
  input_tokens: z.number().int().nonnegative().nullish(),
  output_tokens: z.number().int().nonnegative().nullish(),
  cache_creation_input_tokens: z.number().int().nonnegative().nullish(),
  cache_read_input_tokens: z.number().int().nonnegative().nullish(),
});

const messageSchema = z.object({
  content: z.array(z.object({ type: z.string(), text: z.string().optional() })),
  stop_reason: z.string().nullish(),
  usage: usageSchema,
});

const streamEventSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('message_start'), message: z.object({ usage: usageSchema }) }),
  z.object({
    type: z.literal('content_block_delta'),
    delta: z.object({ type: z.string(), text: z.string().optional() }),
  }),
  z.object({
    type: z.literal('message_delta'),
    delta: z.object({ stop_reason: z.string().nullish() }),
    usage: usageSchema.nullish(),
  }),
  z.object({ type: z.literal('message_stop') }),
  z.object({ type: z.literal('error'), error: z.unknown() }),
  z.object({ type: z.literal('content_block_start') }),
  z.object({ type: z.literal('content_block_stop') }),
  z.object({ type: z.literal('ping') }),
]);

/** Maps an Anthropic `stop_reason`. */
export function anthropicFinishReason(reason: string | null | undefined): FinishReason {
  switch (reason) {
    case 'end_turn':
    case 'stop_sequence':
      return 'stop';
    case 'max_tokens':
    case 'model_context_window_exceeded':
      return 'length';
    case 'tool_use':
      return 'tool-calls';
    case 'refusal':
      return 'content-filter';
    default:
      return 'other';
  }
}

/** Input tokens including prompt-cache writes and reads (all are billed input). */
function inputTokens(usage: z.infer<typeof usageSchema>): number | undefined {
  if (usage.input_tokens === undefined || usage.input_tokens === null) return undefined;
  return usage.input_tokens + (usage.cache_creation_input_tokens ?? 0) + (usage.cache_read_input_tokens ?? 0);
}

/**
 * The Messages API wants alternating user/assistant turns starting with a user turn and the
 * system prompt apart: system messages join `system`, consecutive same-role turns are merged.
 */
function toAnthropicMessages(call: GenerateOptions): {
  system: string | undefined;
  messages: { role: 'user' | 'assistant'; content: string }[];
} {
  const systemParts = call.system === undefined ? [] : [call.system];
  const messages: { role: 'user' | 'assistant'; content: string }[] = [];
  for (const message of callMessages(call)) {
    if (message.role === 'system') {
      systemParts.push(message.content);
      continue;
    }
    const last = messages.at(-1);
    if (last !== undefined && last.role === message.role) last.content += `\n\n${message.content}`;
    else messages.push({ role: message.role, content: message.content });
  }
  return { system: systemParts.length === 0 ? undefined : systemParts.join('\n\n'), messages };
}

/**
 * The Anthropic provider (Messages API, `x-api-key` + `anthropic-version`), with streaming over
 * its SSE events. Anthropic has no embeddings endpoint.
 *
 * @example
 * const anthropic = createAnthropic({ apiKey: process.env.ANTHROPIC_API_KEY });
 * const { text } = await anthropic('claude-3-5-haiku-latest').generate({ prompt: 'Hello' });
 */
export function createAnthropic(options: AnthropicProviderOptions = {}): AnthropicProvider {
  const name = 'anthropic';
  const settings = httpSettings(options, {
    name,
    baseURLEnv: 'ANTHROPIC_BASE_URL',
    defaultBaseURL: 'https://api.anthropic.com/v1',
    authHeaders: () => ({
      'x-api-key': requireApiKey(name, options.apiKey ?? readEnv(['ANTHROPIC_API_KEY']), [
        'ANTHROPIC_API_KEY',
      ]),
      'anthropic-version': options.version ?? '2023-06-01',
    }),
  });

  function body(modelId: string, call: GenerateOptions, stream: boolean): Record<string, unknown> {
    const { system, messages } = toAnthropicMessages(call);
    if (messages.length === 0) {
      throw new MtPaasError(
        'INVALID_REQUEST',
        'An Anthropic call needs a prompt or at least one user message.',
      );
    }
    return {
      model: modelId,
      max_tokens: call.maxOutputTokens ?? options.defaultMaxOutputTokens ?? 1024,
      messages,
      ...(system === undefined ? {} : { system }),
      ...(call.temperature === undefined ? {} : { temperature: call.temperature }),
      ...(call.stopSequences === undefined ? {} : { stop_sequences: [...call.stopSequences] }),
      ...(stream ? { stream: true } : {}),
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
          '/messages',
          body(modelId, call, false),
          messageSchema,
          call,
        );
        const text = response.content
          .filter((block) => block.type === 'text')
          .map((block) => block.text ?? '')
          .join('');
        const outputTokens = response.usage.output_tokens ?? undefined;
        const input = inputTokens(response.usage);
        return {
          text,
          finishReason: anthropicFinishReason(response.stop_reason),
          model,
          usage: completeUsage(
            {
              ...(input === undefined ? {} : { inputTokens: input }),
              ...(outputTokens === undefined ? {} : { outputTokens }),
            },
            { input: () => estimateInputTokens(call), output: () => estimateTokens(text) },
          ),
        };
      },
      async stream(call: GenerateOptions): Promise<LanguageModelStream> {
        const events = await postEventStream(settings, modelId, '/messages', body(modelId, call, true), call);
        async function* parts(): AsyncGenerator<StreamPart> {
          for await (const event of events) {
            const parsed = streamEventSchema.safeParse(parseEventData(name, modelId, event.data));
            // Unknown event types are allowed by Anthropic's versioning policy: skip them.
            if (!parsed.success) continue;
            const data = parsed.data;
            switch (data.type) {
              case 'message_start': {
                const input = inputTokens(data.message.usage);
                const output = data.message.usage.output_tokens ?? undefined;
                yield {
                  type: 'usage',
                  ...(input === undefined ? {} : { inputTokens: input }),
                  ...(output === undefined ? {} : { outputTokens: output }),
                };
                break;
              }
              case 'content_block_delta':
                if (data.delta.type === 'text_delta' && data.delta.text !== undefined) {
                  yield { type: 'text', text: data.delta.text };
                }
                break;
              case 'message_delta': {
                // Usage in message_delta is cumulative: it replaces, never adds.
                const output = data.usage?.output_tokens ?? undefined;
                const input =
                  data.usage === null || data.usage === undefined ? undefined : inputTokens(data.usage);
                yield {
                  type: 'usage',
                  ...(input === undefined ? {} : { inputTokens: input }),
                  ...(output === undefined ? {} : { outputTokens: output }),
                };
                if (data.delta.stop_reason !== undefined && data.delta.stop_reason !== null) {
                  yield { type: 'finish', finishReason: anthropicFinishReason(data.delta.stop_reason) };
                }
                break;
              }
              case 'message_stop':
                return;
              case 'error':
                throw streamEventError(name, modelId, data);
              default:
                break;
            }
          }
          throw incompleteStreamError(name, modelId, 'no message_stop');
        }
        return createLanguageModelStream({ model, parts: parts(), cancel: events.cancel, options: call });
      },
    };
  }

  const provider = ((modelId: string) => languageModel(modelId)) as AnthropicProvider;
  Object.defineProperties(provider, { name: { value: name }, languageModel: { value: languageModel } });
  return provider;
}

/** The default Anthropic provider; reads `ANTHROPIC_API_KEY` when a call is made. */
export const anthropic: AnthropicProvider = createAnthropic();
