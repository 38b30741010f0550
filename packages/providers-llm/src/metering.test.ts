import { MtPaasError, parseTenantId, runWithTenant, type UsageRecord } from '@mt-paas/context';
import { describe, expect, it } from 'vitest';
import { createLanguageModelStream, type StreamPart } from './language-model-stream.js';
import { createLocalProvider } from './local-provider.js';
import { withEmbeddingMetering, withTokenMetering } from './metering.js';

const tenantId = parseTenantId('univ_8');
const local = createLocalProvider();
const call = { system: 'The library opens at nine.', prompt: 'When does the library open?' };

function sink() {
  const records: UsageRecord[] = [];
  return { records, record: async (batch: readonly UsageRecord[]) => void records.push(...batch) };
}

describe('withTokenMetering', () => {
  it('records totalTokens on llm_tokens with an idempotency key per call', async () => {
    const usageSink = sink();
    const model = withTokenMetering(local(), { tenantId, usageSink });
    const first = await model.generate(call);
    await model.generate(call);
    expect(usageSink.records).toHaveLength(2);
    expect(usageSink.records[0]).toMatchObject({
      tenantId,
      meter: 'llm_tokens',
      quantity: first.usage.totalTokens,
      attributes: { provider: 'local', model: 'extractive', operation: 'generate' },
    });
    expect(usageSink.records[0]?.idempotencyKey).not.toBe(usageSink.records[1]?.idempotencyKey);
  });

  it('uses the caller idempotency key and the request id of the tenant context', async () => {
    const usageSink = sink();
    const model = withTokenMetering(local(), { tenantId, usageSink });
    await model.generate({ ...call, idempotencyKey: 'job-42' });
    expect(usageSink.records[0]?.idempotencyKey).toBe('llm_tokens:univ_8:job-42');
    await runWithTenant({ tenantId: 'univ_8', requestId: 'req-7' }, () => model.generate(call));
    expect(usageSink.records[1]?.idempotencyKey).toMatch(/^llm_tokens:univ_8:req-7:/);
  });

  it('meters a stream once it completes', async () => {
    const usageSink = sink();
    const stream = await withTokenMetering(local(), { tenantId, usageSink }).stream(call);
    for await (const _delta of stream) {
    }
    const result = await stream.result;
    expect(usageSink.records).toEqual([
      expect.objectContaining({
        quantity: result.usage.totalTokens,
        attributes: expect.objectContaining({ operation: 'stream' }),
      }),
    ]);
  });

  it('meters what a broken stream consumed (reported input, estimated output), flagged incomplete', async () => {
    const usageSink = sink();
    const breaking = {
      ...local('breaking'),
      async stream(options: Parameters<ReturnType<typeof local>['stream']>[0]) {
        async function* parts(): AsyncGenerator<StreamPart> {
          yield { type: 'usage', inputTokens: 40 };
          yield { type: 'text', text: 'Half an answer that' };
          throw new MtPaasError('PROVIDER_UNAVAILABLE', 'cut');
        }
        return createLanguageModelStream({
          model: 'test:breaking',
          parts: parts(),
          cancel: () => {},
          options,
        });
      },
    };
    const stream = await withTokenMetering(breaking, { tenantId, usageSink }).stream(call);
    await expect(stream.result).rejects.toMatchObject({ code: 'PROVIDER_UNAVAILABLE' });
    expect(stream.usageSoFar()).toMatchObject({ inputTokens: 40, estimated: true });
    expect(usageSink.records).toEqual([
      expect.objectContaining({
        quantity: stream.usageSoFar().totalTokens,
        attributes: expect.objectContaining({ incomplete: 'true', estimated: 'true', operation: 'stream' }),
      }),
    ]);
    expect(stream.usageSoFar().outputTokens).toBeGreaterThan(0);
  });

  it('refuses with QUOTA_EXCEEDED when the budget is used up, before calling the model', async () => {
    const usageSink = sink();
    const model = withTokenMetering(local(), { tenantId, usageSink, budget: async () => 0 });
    await expect(model.generate(call)).rejects.toMatchObject({ code: 'QUOTA_EXCEEDED', httpStatus: 429 });
    expect(usageSink.records).toHaveLength(0);
  });

  it('accepts a budget object, and null as unlimited', async () => {
    const asked: string[] = [];
    const model = withTokenMetering(local(), {
      tenantId,
      budget: {
        remaining: (id) => {
          asked.push(id);
          return null;
        },
      },
    });
    await expect(model.generate(call)).resolves.toMatchObject({ text: 'The library opens at nine.' });
    expect(asked).toEqual(['univ_8']);
  });

  it('answers with the budget fallback model instead of refusing', async () => {
    const expensive = {
      ...local('expensive'),
      generate: async () => {
        throw new Error('must not be called');
      },
    };
    const model = withTokenMetering(expensive, {
      tenantId,
      budget: () => -5,
      budgetFallback: local('cheap'),
    });
    expect((await model.generate(call)).model).toBe('local:cheap');
  });

  it('still returns the answer when the usage sink fails, and reports it', async () => {
    const failures: unknown[] = [];
    const model = withTokenMetering(local(), {
      tenantId,
      usageSink: {
        record: async () => {
          throw new Error('ledger down');
        },
      },
      onMeteringError: (error) => failures.push(error),
    });
    await expect(model.generate(call)).resolves.toMatchObject({ finishReason: 'stop' });
    expect(failures).toHaveLength(1);
  });
});

describe('withEmbeddingMetering', () => {
  it('records embedding tokens and checks the budget', async () => {
    const usageSink = sink();
    const model = withEmbeddingMetering(local.embedding(), { tenantId, usageSink });
    await model.embed(['one two three']);
    expect(usageSink.records[0]).toMatchObject({ quantity: 3, attributes: { operation: 'embed' } });
    const exhausted = withEmbeddingMetering(local.embedding(), { tenantId, budget: () => 0 });
    await expect(exhausted.embed(['x'])).rejects.toMatchObject({ code: 'QUOTA_EXCEEDED' });
  });
});
