/**
 * Makes a running tutor's LLM answer like a vendor that stalls: one token, then nothing until the call is
 * aborted. For tests of a client leaving in the middle of a streamed answer.
 */
import type { ServiceFramework } from '@mt-paas/framework';
import type { GenerateOptions, LanguageModelStream } from '@mt-paas/providers-llm';

export interface StallingModel {
  /** The abort signal of every stream call, in order. */
  readonly signals: AbortSignal[];
  /** Puts the tutor's own providers back. */
  restore(): void;
}

export const FIRST_TOKEN = 'The first words';

export function stallModel(mt: ServiceFramework): StallingModel {
  const target = mt as { providersFor: ServiceFramework['providersFor'] };
  const original = target.providersFor;
  const signals: AbortSignal[] = [];
  target.providersFor = async (tenantId) => {
    const ai = await original.call(mt, tenantId);
    return {
      ...ai,
      languageModel: {
        ...ai.languageModel,
        async stream(call: GenerateOptions): Promise<LanguageModelStream> {
          const signal = call.abortSignal ?? new AbortController().signal;
          signals.push(signal);
          const aborted = new Promise<never>((_, reject) => {
            if (signal.aborted) reject(signal.reason);
            signal.addEventListener('abort', () => reject(signal.reason), { once: true });
          });
          aborted.catch(() => {});
          const usage = { inputTokens: 10, outputTokens: 1, totalTokens: 11 };
          return {
            model: 'stalling:test',
            result: aborted,
            usageSoFar: () => usage,
            async *[Symbol.asyncIterator]() {
              yield FIRST_TOKEN;
              await aborted;
            },
          };
        },
      },
    };
  };
  return {
    signals,
    restore() {
      target.providersFor = original;
    },
  };
}

/** Starts a chat, reads until the first `token` event, then leaves (aborts the request). */
export async function chatAndLeave(url: string, tenant: string, token: string, question: string) {
  const leave = new AbortController();
  const response = await fetch(`${url}/api/chat`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-tenant-id': tenant, authorization: `Bearer ${token}` },
    body: JSON.stringify({ question }),
    signal: leave.signal,
  });
  const reader = response.body!.getReader();
  let received = '';
  while (!received.includes('event: token')) {
    const { value, done } = await reader.read();
    if (done) break;
    received += new TextDecoder().decode(value);
  }
  return {
    status: response.status,
    received,
    leave: () => leave.abort(),
  };
}
