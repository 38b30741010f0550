import { MtPaasError } from '@mt-paas/context';
import type { EmbedResult } from './spec.js';
import { estimateTokens } from './text.js';

/**
 * Embeds `texts` in requests of at most `perCall` texts and joins the answers in input order.
 * `embedBatch` returns the batch's vectors (in batch order) and the tokens the provider reported,
 * or `undefined` when it reports none — those are estimated and the usage flagged `estimated`.
 * A provider that answers with another number of vectors than it was sent is a `PROVIDER_ERROR`.
 */
export async function embedInBatches(
  provider: string,
  model: string,
  texts: readonly string[],
  perCall: number,
  embedBatch: (batch: readonly string[]) => Promise<{ embeddings: number[][]; tokens: number | undefined }>,
): Promise<EmbedResult> {
  const embeddings: number[][] = [];
  let tokens = 0;
  let estimated = false;
  for (let start = 0; start < texts.length; start += perCall) {
    const batch = texts.slice(start, start + perCall);
    const answer = await embedBatch(batch);
    if (answer.embeddings.length !== batch.length) {
      throw new MtPaasError(
        'PROVIDER_ERROR',
        `${provider} returned ${answer.embeddings.length} embeddings for ${batch.length} texts; retry, or check the model "${model}".`,
        { details: { provider, model } },
      );
    }
    embeddings.push(...answer.embeddings);
    if (answer.tokens === undefined) {
      estimated = true;
      for (const text of batch) tokens += estimateTokens(text);
    } else tokens += answer.tokens;
  }
  return { embeddings, usage: { tokens, ...(estimated ? { estimated: true as const } : {}) } };
}
