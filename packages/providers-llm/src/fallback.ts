import { MtPaasError } from '@mt-paas/context';
import type { GenerateOptions, LanguageModel, LanguageModelStream } from './spec.js';

/** Remembers which models failed recently, so a fallback chain skips them for a while. */
export interface CooldownTracker {
  /** True while `key` is cooling down. */
  isCoolingDown(key: string): boolean;
  /** When `key`'s cooldown ends (epoch ms), or `undefined`. */
  cooldownUntil(key: string): number | undefined;
  /** Starts (or extends) a cooldown of `milliseconds` for `key`. */
  coolDown(key: string, milliseconds: number): void;
  /** Ends `key`'s cooldown (after a success). */
  clear(key: string): void;
}

/** Options of {@link createCooldownTracker}. */
export interface CooldownTrackerOptions {
  /** The clock, for tests. @default Date.now */
  now?: () => number;
}

/** An in-process {@link CooldownTracker}. */
export function createCooldownTracker(options: CooldownTrackerOptions = {}): CooldownTracker {
  const now = options.now ?? Date.now;
  const until = new Map<string, number>();
  return {
    isCoolingDown(key) {
      const end = until.get(key);
      if (end === undefined) return false;
      if (end <= now()) {
        until.delete(key);
        return false;
      }
      return true;
    },
    cooldownUntil(key) {
      const end = until.get(key);
      return end !== undefined && end > now() ? end : undefined;
    },
    coolDown(key, milliseconds) {
      const end = now() + milliseconds;
      until.set(key, Math.max(until.get(key) ?? 0, end));
    },
    clear(key) {
      until.delete(key);
    },
  };
}

/** What {@link FallbackOptions.onFallback} hears. */
export interface FallbackEvent {
  /** `provider:modelId` that failed or was skipped. */
  from: string;
  /** The model tried next, if any. */
  to: string | undefined;
  /** Why: the error, or `'cooldown'` when the model was skipped. */
  reason: MtPaasError | 'cooldown';
}

/** Options of {@link createFallbackLanguageModel}. */
export interface FallbackOptions {
  /** How long a model that failed is skipped. A longer `Retry-After` wins. @default 30000 */
  cooldownMs?: number;
  /** Shared cooldown state (share one tracker across tenants and requests). @default a new tracker */
  cooldowns?: CooldownTracker;
  /** Cooldown key of a model. @default `provider:modelId` */
  cooldownKey?: (model: LanguageModel) => string;
  /**
   * Whether an error moves on to the next model.
   * @default `RATE_LIMITED`, `PROVIDER_UNAVAILABLE` and `TIMEOUT` (429, 5xx, timeouts, broken connections)
   */
  shouldFallback?: (error: unknown) => boolean;
  /** Called when a model is skipped or fails over (for logs and metrics). */
  onFallback?: (event: FallbackEvent) => void;
}

const FALLBACK_CODES = new Set(['RATE_LIMITED', 'PROVIDER_UNAVAILABLE', 'TIMEOUT']);

/** The default {@link FallbackOptions.shouldFallback}. */
export function isFallbackError(error: unknown): boolean {
  return MtPaasError.isInstance(error) && FALLBACK_CODES.has(error.code);
}

function modelName(model: LanguageModel): string {
  return `${model.provider}:${model.modelId}`;
}

/**
 * Tries `models` in order: when one fails with a 429, a 5xx, a timeout or a broken connection,
 * the next answers and the failed one is skipped for `cooldownMs` (or its `Retry-After`).
 * Other errors (a bad request, a wrong key, the caller's abort) are thrown at once. A stream
 * fails over only before its first delta (HTTP errors arrive before any text).
 *
 * @example
 * const model = createFallbackLanguageModel([openai('gpt-4o-mini'), anthropic('claude-3-5-haiku-latest')]);
 */
export function createFallbackLanguageModel(
  models: readonly LanguageModel[],
  options: FallbackOptions = {},
): LanguageModel {
  if (models.length === 0) {
    throw new MtPaasError(
      'CONFIG_INVALID',
      'A fallback chain needs at least one model; pass the models to try, in order.',
    );
  }
  const cooldowns = options.cooldowns ?? createCooldownTracker();
  const cooldownMs = options.cooldownMs ?? 30_000;
  const keyOf = options.cooldownKey ?? modelName;
  const shouldFallback = options.shouldFallback ?? isFallbackError;

  async function attempt<T>(run: (model: LanguageModel) => Promise<T>): Promise<T> {
    const available = models.filter((model) => !cooldowns.isCoolingDown(keyOf(model)));
    // Every model cooling down: try them anyway, the one that recovers first leading.
    const order =
      available.length > 0
        ? available
        : [...models].sort(
            (left, right) =>
              (cooldowns.cooldownUntil(keyOf(left)) ?? 0) - (cooldowns.cooldownUntil(keyOf(right)) ?? 0),
          );
    for (const model of models) {
      if (!order.includes(model)) {
        options.onFallback?.({ from: modelName(model), to: undefined, reason: 'cooldown' });
      }
    }
    const failures: { model: string; error: MtPaasError }[] = [];
    for (const [index, model] of order.entries()) {
      try {
        const result = await run(model);
        cooldowns.clear(keyOf(model));
        return result;
      } catch (error) {
        if (!shouldFallback(error) || !MtPaasError.isInstance(error)) throw error;
        const retryAfterMs = (error.retryAfterSeconds ?? 0) * 1000;
        cooldowns.coolDown(keyOf(model), Math.max(cooldownMs, retryAfterMs));
        failures.push({ model: modelName(model), error });
        const next = order[index + 1];
        options.onFallback?.({
          from: modelName(model),
          to: next === undefined ? undefined : modelName(next),
          reason: error,
        });
      }
    }
    const last = failures.at(-1)!.error;
    if (failures.length === 1) throw last;
    const retryAfters = failures
      .map((failure) => failure.error.retryAfterSeconds)
      .filter((value): value is number => value !== undefined);
    throw new MtPaasError(
      last.code,
      `All ${failures.length} models failed (${failures.map((failure) => `${failure.model}: ${failure.error.code}`).join(', ')}); retry later or add another fallback model. Last error: ${last.message}`,
      {
        details: {
          attempts: failures.map((failure) => ({ model: failure.model, code: failure.error.code })),
        },
        cause: last,
        ...(retryAfters.length === 0 ? {} : { retryAfterSeconds: Math.min(...retryAfters) }),
      },
    );
  }

  const first = models[0]!;
  return {
    specificationVersion: 'v1',
    provider: first.provider,
    modelId: first.modelId,
    generate: (call: GenerateOptions) => attempt((model) => model.generate(call)),
    async stream(call: GenerateOptions): Promise<LanguageModelStream> {
      let answering: LanguageModel | undefined;
      const stream = await attempt((model) => {
        answering = model;
        return model.stream(call);
      });
      // A stream that breaks off after it started cannot fail over, but its model cools down.
      stream.result.catch((error: unknown) => {
        if (answering !== undefined && shouldFallback(error) && MtPaasError.isInstance(error)) {
          cooldowns.coolDown(keyOf(answering), Math.max(cooldownMs, (error.retryAfterSeconds ?? 0) * 1000));
        }
      });
      return stream;
    },
  };
}
