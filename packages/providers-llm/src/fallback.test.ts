import { MtPaasError } from '@mt-paas/context';
import { describe, expect, it } from 'vitest';
import { createCooldownTracker, createFallbackLanguageModel, type FallbackEvent } from './fallback.js';
import { createLocalProvider } from './local-provider.js';
import type { GenerateOptions, LanguageModel } from './spec.js';

/** A model double that fails with the queued errors, then answers. */
function scripted(name: string, failures: unknown[]): LanguageModel & { calls: number } {
  const answer = createLocalProvider().languageModel(name);
  const model = {
    specificationVersion: 'v1' as const,
    provider: 'test',
    modelId: name,
    calls: 0,
    async generate(call: GenerateOptions) {
      model.calls++;
      const failure = failures.shift();
      if (failure !== undefined) throw failure;
      return { ...(await answer.generate(call)), model: `test:${name}` };
    },
    async stream(call: GenerateOptions) {
      model.calls++;
      const failure = failures.shift();
      if (failure !== undefined) throw failure;
      return answer.stream(call);
    },
  };
  return model;
}

const rateLimited = () => new MtPaasError('RATE_LIMITED', 'slow down', { retryAfterSeconds: 90 });
const unavailable = () => new MtPaasError('PROVIDER_UNAVAILABLE', 'down');

describe('createFallbackLanguageModel', () => {
  it('answers with the next model on 429 / 5xx / timeout and reports the fallback', async () => {
    const primary = scripted('primary', [rateLimited()]);
    const secondary = scripted('secondary', []);
    const events: FallbackEvent[] = [];
    const chain = createFallbackLanguageModel([primary, secondary], {
      onFallback: (event) => events.push(event),
    });
    const result = await chain.generate({ prompt: 'hi' });
    expect(result.model).toBe('test:secondary');
    expect(events).toEqual([
      {
        from: 'test:primary',
        to: 'test:secondary',
        reason: expect.objectContaining({ code: 'RATE_LIMITED' }),
      },
    ]);
  });

  it('skips a failed model during its cooldown (the longer Retry-After wins), then tries it again', async () => {
    let now = 1_000_000;
    const cooldowns = createCooldownTracker({ now: () => now });
    const primary = scripted('primary', [rateLimited()]);
    const secondary = scripted('secondary', []);
    const chain = createFallbackLanguageModel([primary, secondary], { cooldowns, cooldownMs: 30_000 });
    await chain.generate({ prompt: 'hi' });
    await chain.generate({ prompt: 'hi' });
    expect(primary.calls).toBe(1);
    now += 60_000;
    await chain.generate({ prompt: 'hi' });
    expect(primary.calls).toBe(1);
    now += 31_000;
    const result = await chain.generate({ prompt: 'hi' });
    expect(primary.calls).toBe(2);
    expect(result.model).toBe('test:primary');
  });

  it('throws other errors at once (bad request, wrong key, caller abort)', async () => {
    const primary = scripted('primary', [new MtPaasError('PROVIDER_ERROR', 'bad key')]);
    const secondary = scripted('secondary', []);
    const chain = createFallbackLanguageModel([primary, secondary]);
    await expect(chain.generate({ prompt: 'hi' })).rejects.toMatchObject({ code: 'PROVIDER_ERROR' });
    expect(secondary.calls).toBe(0);
    const abort = new DOMException('aborted', 'AbortError');
    const aborted = createFallbackLanguageModel([scripted('a', [abort]), secondary]);
    await expect(aborted.generate({ prompt: 'hi' })).rejects.toBe(abort);
    expect(secondary.calls).toBe(0);
  });

  it('reports every attempt when all models fail', async () => {
    const chain = createFallbackLanguageModel([
      scripted('a', [rateLimited()]),
      scripted('b', [unavailable()]),
    ]);
    const error = await chain.generate({ prompt: 'hi' }).catch((caught: unknown) => caught);
    expect(error).toMatchObject({
      code: 'PROVIDER_UNAVAILABLE',
      retryAfterSeconds: 90,
      details: {
        attempts: [
          { model: 'test:a', code: 'RATE_LIMITED' },
          { model: 'test:b', code: 'PROVIDER_UNAVAILABLE' },
        ],
      },
    });
  });

  it('when every model is cooling down, still tries them (soonest recovery first)', async () => {
    const cooldowns = createCooldownTracker();
    const first = scripted('first', []);
    const second = scripted('second', []);
    cooldowns.coolDown('test:first', 60_000);
    cooldowns.coolDown('test:second', 10_000);
    const chain = createFallbackLanguageModel([first, second], { cooldowns });
    const result = await chain.generate({ prompt: 'hi' });
    expect(result.model).toBe('test:second');
  });

  it('fails a stream over before its first delta', async () => {
    const chain = createFallbackLanguageModel([scripted('a', [unavailable()]), scripted('b', [])]);
    const stream = await chain.stream({ system: 'Tenants are isolated.', prompt: 'Are tenants isolated?' });
    let text = '';
    for await (const delta of stream) text += delta;
    expect(text).toBe('Tenants are isolated.');
  });

  it('cools down a model whose stream broke off after it started', async () => {
    const cooldowns = createCooldownTracker();
    const broken: LanguageModel = {
      specificationVersion: 'v1',
      provider: 'test',
      modelId: 'broken',
      generate: async () => {
        throw new Error('unused');
      },
      stream: async () => {
        const result = Promise.reject(unavailable());
        result.catch(() => {});
        return {
          model: 'test:broken',
          result,
          usageSoFar: () => ({ inputTokens: 1, outputTokens: 1, totalTokens: 2, estimated: true as const }),
          async *[Symbol.asyncIterator]() {
            yield 'partial';
            throw await result.catch((error: unknown) => error);
          },
        };
      },
    };
    const chain = createFallbackLanguageModel([broken, scripted('b', [])], { cooldowns });
    const stream = await chain.stream({ prompt: 'hi' });
    await expect(stream.result).rejects.toMatchObject({ code: 'PROVIDER_UNAVAILABLE' });
    await new Promise((resolve) => setImmediate(resolve));
    expect(cooldowns.isCoolingDown('test:broken')).toBe(true);
  });
});
