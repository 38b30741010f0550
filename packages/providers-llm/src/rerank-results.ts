import { MtPaasError } from '@mt-paas/context';
import type { RerankResult } from './spec.js';

/** `INVALID_REQUEST` unless `topN` is omitted or a positive integer. */
export function checkTopN(topN: number | undefined): void {
  if (topN !== undefined && (!Number.isInteger(topN) || topN < 1)) {
    throw new MtPaasError(
      'INVALID_REQUEST',
      `topN must be a positive integer, got ${String(topN)}; omit it to get every document ranked.`,
    );
  }
}

/** Most relevant first (ties keep input order), cut to `topN` when given. */
export function rankResults(results: RerankResult[], topN: number | undefined): RerankResult[] {
  results.sort((left, right) => right.score - left.score || left.index - right.index);
  return topN === undefined ? results : results.slice(0, topN);
}
