import { randomUUID } from 'node:crypto';
import {
  MtPaasError,
  type TenantId,
  tryCurrentTenant,
  type UsageRecord,
  type UsageSink,
} from '@mt-paas/context';
import type {
  EmbeddingModel,
  EmbedOptions,
  EmbedResult,
  GenerateOptions,
  GenerateResult,
  LanguageModel,
  LanguageModelStream,
} from './spec.js';

/**
 * Remaining `llm_tokens` of a tenant: a number (0 or less means exhausted), or `null` /
 * `undefined` for unlimited. Either a function or an object with `remaining()` — for example
 * a wrapper over the catalog's usage ledger and the plan's quota.
 */
export type TokenBudget =
  | ((tenantId: TenantId) => Promise<number | null | undefined> | number | null | undefined)
  | { remaining(tenantId: TenantId): Promise<number | null | undefined> | number | null | undefined };

/** Options of {@link withTokenMetering} and {@link withEmbeddingMetering}. */
export interface MeteringOptions {
  /** The tenant that pays. */
  tenantId: TenantId;
  /** Receives one usage record per call. Calls are not metered when omitted. */
  usageSink?: UsageSink;
  /** Meter name. @default 'llm_tokens' */
  meter?: string;
  /** Checked before every call; an exhausted budget refuses the call with `QUOTA_EXCEEDED`. */
  budget?: TokenBudget;
  /**
   * Answers instead when the budget is exhausted (a cheaper model, or the local provider)
   * rather than refusing. Language models only.
   */
  budgetFallback?: LanguageModel;
  /**
   * Called when the usage sink fails. The answer is still returned (the tokens are spent).
   * @default logs a warning with the record (console.warn)
   */
  onMeteringError?: (error: unknown, records: readonly UsageRecord[]) => void;
}

async function remainingTokens(budget: TokenBudget, tenantId: TenantId): Promise<number | null | undefined> {
  return typeof budget === 'function' ? budget(tenantId) : budget.remaining(tenantId);
}

/** `QUOTA_EXCEEDED` when the tenant's budget is used up; otherwise nothing. */
async function checkBudget(options: MeteringOptions): Promise<'ok' | 'exhausted'> {
  if (options.budget === undefined) return 'ok';
  const remaining = await remainingTokens(options.budget, options.tenantId);
  if (remaining === null || remaining === undefined || remaining > 0) return 'ok';
  return 'exhausted';
}

function quotaExceeded(options: MeteringOptions): MtPaasError {
  const meter = options.meter ?? 'llm_tokens';
  return new MtPaasError(
    'QUOTA_EXCEEDED',
    `Tenant "${options.tenantId}" has used up its ${meter} budget; wait for the next quota period or upgrade the plan.`,
    { details: { tenantId: options.tenantId, meter } },
  );
}

async function record(
  options: MeteringOptions,
  quantity: number,
  idempotencyKey: string | undefined,
  attributes: Record<string, string>,
): Promise<void> {
  if (options.usageSink === undefined || quantity <= 0) return;
  const meter = options.meter ?? 'llm_tokens';
  const requestId = tryCurrentTenant()?.requestId;
  const records: UsageRecord[] = [
    {
      tenantId: options.tenantId,
      meter,
      quantity,
      at: new Date(),
      idempotencyKey: `${meter}:${options.tenantId}:${idempotencyKey ?? `${requestId ?? 'call'}:${randomUUID()}`}`,
      attributes,
    },
  ];
  try {
    await options.usageSink.record(records);
  } catch (error) {
    if (options.onMeteringError !== undefined) options.onMeteringError(error, records);
    else console.warn('[@mt-paas/providers-llm] usage could not be recorded', records, error);
  }
}

function resultAttributes(
  result: Pick<GenerateResult, 'model' | 'usage'>,
  operation: string,
): Record<string, string> {
  const colon = result.model.indexOf(':');
  return {
    provider: colon === -1 ? result.model : result.model.slice(0, colon),
    model: colon === -1 ? result.model : result.model.slice(colon + 1),
    operation,
    ...(result.usage.estimated === true ? { estimated: 'true' } : {}),
  };
}

/**
 * Wraps a language model for one tenant: checks the token budget before each call
 * (`QUOTA_EXCEEDED`, or `budgetFallback` answers) and records `totalTokens` on the
 * `llm_tokens` meter after each call, with an idempotency key per call
 * (`GenerateOptions.idempotencyKey` when given). A stream is metered when it completes.
 */
export function withTokenMetering(model: LanguageModel, options: MeteringOptions): LanguageModel {
  async function pick(): Promise<LanguageModel> {
    if ((await checkBudget(options)) === 'ok') return model;
    if (options.budgetFallback !== undefined) return options.budgetFallback;
    throw quotaExceeded(options);
  }
  return {
    specificationVersion: 'v1',
    provider: model.provider,
    modelId: model.modelId,
    async generate(call: GenerateOptions): Promise<GenerateResult> {
      const chosen = await pick();
      const result = await chosen.generate(call);
      await record(
        options,
        result.usage.totalTokens,
        call.idempotencyKey,
        resultAttributes(result, 'generate'),
      );
      return result;
    },
    async stream(call: GenerateOptions): Promise<LanguageModelStream> {
      const chosen = await pick();
      const inner = await chosen.stream(call);
      const result = inner.result.then(
        async (completed) => {
          await record(
            options,
            completed.usage.totalTokens,
            call.idempotencyKey,
            resultAttributes(completed, 'stream'),
          );
          return completed;
        },
        async (error: unknown) => {
          // The provider billed what it sent before the break-off (or the consumer's abort).
          const usage = inner.usageSoFar();
          await record(options, usage.totalTokens, call.idempotencyKey, {
            ...resultAttributes({ model: inner.model, usage }, 'stream'),
            incomplete: 'true',
          });
          throw error;
        },
      );
      result.catch(() => {});
      return {
        model: inner.model,
        result,
        usageSoFar: () => inner.usageSoFar(),
        [Symbol.asyncIterator]: () => inner[Symbol.asyncIterator](),
      };
    },
  };
}

/** Like {@link withTokenMetering}, for an embedding model (`usage.tokens` on the same meter). */
export function withEmbeddingMetering(model: EmbeddingModel, options: MeteringOptions): EmbeddingModel {
  return {
    specificationVersion: 'v1',
    provider: model.provider,
    modelId: model.modelId,
    dimensions: model.dimensions,
    async embed(texts: readonly string[], call: EmbedOptions = {}): Promise<EmbedResult> {
      if ((await checkBudget(options)) === 'exhausted') throw quotaExceeded(options);
      const result = await model.embed(texts, call);
      await record(options, result.usage.tokens, call.idempotencyKey, {
        provider: model.provider,
        model: model.modelId,
        operation: 'embed',
        ...(result.usage.estimated === true ? { estimated: 'true' } : {}),
      });
      return result;
    },
  };
}
