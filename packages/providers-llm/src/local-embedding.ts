import { MtPaasError } from '@mt-paas/context';
import type { EmbeddingModel, EmbedOptions, EmbedResult } from './spec.js';
import { fnv1a, tokenize } from './text.js';

/** Options of {@link createLocalEmbeddingModel}. */
export interface LocalEmbeddingModelOptions {
  /** Length of every vector. @default 256 */
  dimensions?: number;
  /** Reported as `modelId`. @default `hash-${dimensions}` */
  modelId?: string;
}

const SIGN_SEED = 0x9747b28c;

function addFeature(vector: Float64Array, feature: string, weight: number): void {
  const index = fnv1a(feature) % vector.length;
  const sign = (fnv1a(feature, SIGN_SEED) & 1) === 0 ? 1 : -1;
  vector[index] = (vector[index] ?? 0) + sign * weight;
}

/**
 * Embeds one text: feature hashing of its words (weight 1) and of the character trigrams of
 * each word (weight 0.5, so inflected forms such as "학교에서" / "학교" stay close), then
 * L2-normalised. An empty text maps to the first unit vector so cosine distance stays defined.
 */
export function hashEmbedding(text: string, dimensions: number): number[] {
  const vector = new Float64Array(dimensions);
  for (const word of tokenize(text)) {
    addFeature(vector, `w:${word}`, 1);
    const padded = `#${word}#`;
    const characters = Array.from(padded);
    for (let index = 0; index + 3 <= characters.length; index++) {
      addFeature(vector, `c:${characters.slice(index, index + 3).join('')}`, 0.5);
    }
  }
  let norm = 0;
  for (const value of vector) norm += value * value;
  norm = Math.sqrt(norm);
  if (norm === 0) {
    const unit = new Array<number>(dimensions).fill(0);
    unit[0] = 1;
    return unit;
  }
  return Array.from(vector, (value) => value / norm);
}

/**
 * A deterministic embedding model that runs in-process: the same text always gives the same
 * L2-normalised vector of `dimensions` numbers, texts sharing words and word pieces are close.
 * It needs no key and no network — the embedded default, and a stable model for tests.
 * Usage counts word tokens.
 *
 * @example
 * const model = createLocalEmbeddingModel({ dimensions: 384 });
 * const { embeddings } = await model.embed(['hello world']);
 */
export function createLocalEmbeddingModel(options: LocalEmbeddingModelOptions = {}): EmbeddingModel {
  const dimensions = options.dimensions ?? 256;
  if (!Number.isInteger(dimensions) || dimensions < 2 || dimensions > 65_536) {
    throw new MtPaasError(
      'CONFIG_INVALID',
      `Local embedding dimensions must be an integer between 2 and 65536, got ${String(dimensions)}; pick the dimension your vector store was created with.`,
    );
  }
  return {
    specificationVersion: 'v1',
    provider: 'local',
    modelId: options.modelId ?? `hash-${dimensions}`,
    dimensions,
    async embed(texts: readonly string[], callOptions: EmbedOptions = {}): Promise<EmbedResult> {
      callOptions.abortSignal?.throwIfAborted();
      let tokens = 0;
      const embeddings = texts.map((text) => {
        tokens += tokenize(text).length;
        return hashEmbedding(text, dimensions);
      });
      return { embeddings, usage: { tokens } };
    },
  };
}
