import { describe, expect, it } from 'vitest';
import { createLocalEmbeddingModel } from './local-embedding.js';

function cosine(left: number[], right: number[]): number {
  let dot = 0;
  for (let index = 0; index < left.length; index++) dot += left[index]! * right[index]!;
  return dot;
}

describe('createLocalEmbeddingModel', () => {
  const model = createLocalEmbeddingModel({ dimensions: 128 });

  it('returns one L2-normalised vector of the configured length per text', async () => {
    const { embeddings, usage } = await model.embed([
      'the cat sat on the mat',
      '고양이가 매트 위에 앉았다',
      '',
    ]);
    expect(model.dimensions).toBe(128);
    expect(model.specificationVersion).toBe('v1');
    expect(embeddings).toHaveLength(3);
    for (const vector of embeddings) {
      expect(vector).toHaveLength(128);
      expect(Math.hypot(...vector)).toBeCloseTo(1, 10);
    }
    expect(usage.tokens).toBe(10);
  });

  it('is deterministic across instances', async () => {
    const other = createLocalEmbeddingModel({ dimensions: 128 });
    const [first] = (await model.embed(['multi-tenant platform'])).embeddings;
    const [second] = (await other.embed(['multi-tenant platform'])).embeddings;
    expect(first).toEqual(second);
  });

  it('places texts sharing words closer than unrelated texts', async () => {
    const { embeddings } = await model.embed([
      'How do I reset my password?',
      'To reset your password open the account page.',
      'The cafeteria serves lunch at noon.',
    ]);
    const [question, related, unrelated] = embeddings as [number[], number[], number[]];
    expect(cosine(question, related)).toBeGreaterThan(cosine(question, unrelated));
  });

  it('keeps inflected Korean forms close through character trigrams', async () => {
    const { embeddings } = await model.embed([
      '도서관에서 공부합니다',
      '도서관 운영 시간',
      '주차장 요금 안내',
    ]);
    const [query, related, unrelated] = embeddings as [number[], number[], number[]];
    expect(cosine(query, related)).toBeGreaterThan(cosine(query, unrelated));
  });

  it('rejects an invalid dimension with CONFIG_INVALID', () => {
    expect(() => createLocalEmbeddingModel({ dimensions: 1.5 })).toThrow(
      expect.objectContaining({ code: 'CONFIG_INVALID' }),
    );
  });

  it('honours an aborted signal', async () => {
    const controller = new AbortController();
    controller.abort();
    await expect(model.embed(['x'], { abortSignal: controller.signal })).rejects.toThrow();
  });
});
