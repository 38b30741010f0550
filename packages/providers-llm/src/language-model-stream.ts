import type {
  FinishReason,
  GenerateOptions,
  GenerateResult,
  LanguageModelStream,
  LanguageModelUsage,
  Message,
} from './spec.js';
import { estimateTokens } from './text.js';

/** What a stream adapter yields to {@link createLanguageModelStream} (for custom providers). */
export type StreamPart =
  | { type: 'text'; text: string }
  /** Usage so far; a later part replaces the fields it carries (usage numbers are cumulative). */
  | { type: 'usage'; inputTokens?: number; outputTokens?: number; totalTokens?: number }
  | { type: 'finish'; finishReason: FinishReason };

/** The messages of a call, the prompt appended as a user message. */
export function callMessages(options: GenerateOptions): Message[] {
  const messages = [...(options.messages ?? [])];
  if (options.prompt !== undefined) messages.push({ role: 'user', content: options.prompt });
  return messages;
}

/** Rough input size of a call, for providers that do not report usage. */
export function estimateInputTokens(options: GenerateOptions): number {
  let tokens = estimateTokens(options.system ?? '');
  for (const message of callMessages(options)) tokens += estimateTokens(message.content) + 4;
  return tokens;
}

/** Completes usage: fills what the provider did not report with an estimate, flagged as such. */
export function completeUsage(
  reported: { inputTokens?: number; outputTokens?: number; totalTokens?: number },
  estimate: { input: () => number; output: () => number },
): LanguageModelUsage {
  const estimated = reported.inputTokens === undefined || reported.outputTokens === undefined;
  const inputTokens = reported.inputTokens ?? estimate.input();
  const outputTokens = reported.outputTokens ?? estimate.output();
  return {
    inputTokens,
    outputTokens,
    totalTokens: estimated
      ? inputTokens + outputTokens
      : (reported.totalTokens ?? inputTokens + outputTokens),
    ...(estimated ? { estimated: true as const } : {}),
  };
}

/**
 * Builds a {@link LanguageModelStream} over vendor stream parts — the helper a custom provider
 * (registered through `providersFor`'s `providers` option) uses to implement `stream()`. The
 * parts are pulled eagerly (so `result` settles even when nobody iterates); iteration replays
 * the deltas in order; `cancel` is called when the consumer stops early. `parts` must throw
 * when the vendor stream ended without its terminal event.
 */
export function createLanguageModelStream(input: {
  model: string;
  parts: AsyncIterable<StreamPart>;
  cancel: (reason?: unknown) => void;
  options: GenerateOptions;
}): LanguageModelStream {
  const queue: string[] = [];
  let done = false;
  let failure: { error: unknown } | undefined;
  let wake: (() => void) | undefined;
  let iterated = false;

  let text = '';
  const usage: { inputTokens?: number; outputTokens?: number; totalTokens?: number } = {};
  const usageSoFar = (): LanguageModelUsage =>
    completeUsage(usage, {
      input: () => estimateInputTokens(input.options),
      output: () => estimateTokens(text),
    });

  const result = (async (): Promise<GenerateResult> => {
    let finishReason: FinishReason = 'other';
    try {
      for await (const part of input.parts) {
        if (part.type === 'text') {
          if (part.text === '') continue;
          text += part.text;
          queue.push(part.text);
          wake?.();
        } else if (part.type === 'usage') {
          if (part.inputTokens !== undefined) usage.inputTokens = part.inputTokens;
          if (part.outputTokens !== undefined) usage.outputTokens = part.outputTokens;
          if (part.totalTokens !== undefined) usage.totalTokens = part.totalTokens;
        } else {
          finishReason = part.finishReason;
        }
      }
    } catch (error) {
      failure = { error };
      wake?.();
      throw error;
    }
    done = true;
    wake?.();
    return { text, finishReason, model: input.model, usage: usageSoFar() };
  })();
  // The rejection is also thrown to the iterating caller; this keeps an unawaited `result` quiet.
  result.catch(() => {});

  async function* iterate(): AsyncGenerator<string> {
    if (iterated) throw new TypeError('A LanguageModelStream can be iterated only once.');
    iterated = true;
    try {
      while (true) {
        // A caller's abort wins over deltas already buffered.
        input.options.abortSignal?.throwIfAborted();
        const next = queue.shift();
        if (next !== undefined) {
          yield next;
          continue;
        }
        if (failure !== undefined) throw failure.error;
        if (done) return;
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
        wake = undefined;
      }
    } finally {
      if (!done && failure === undefined) {
        input.cancel(
          new DOMException('The stream was closed by its consumer before it ended.', 'AbortError'),
        );
      }
    }
  }

  return {
    model: input.model,
    result,
    usageSoFar,
    [Symbol.asyncIterator]: iterate,
  };
}
