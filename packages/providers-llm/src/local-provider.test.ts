import { describe, expect, it } from 'vitest';
import { createLocalProvider, lexicalScores } from './local-provider.js';

const handbook = [
  'Row mode keeps every tenant in shared tables guarded by row-level security.',
  'Schema mode gives each tenant its own Postgres schema.',
  'Database mode places each tenant in a separate database.',
  'The cafeteria opens at eight.',
].join(' ');

describe('local extractive answerer', () => {
  const local = createLocalProvider();

  it('answers with the context sentences that best match the question', async () => {
    const result = await local().generate({
      system: handbook,
      prompt: 'What does schema mode give each tenant?',
    });
    expect(result.text).toBe('Schema mode gives each tenant its own Postgres schema.');
    expect(result.model).toBe('local:extractive');
    expect(result.finishReason).toBe('stop');
    expect(result.usage.outputTokens).toBe(9);
    expect(result.usage.totalTokens).toBe(result.usage.inputTokens + result.usage.outputTokens);
  });

  it('reads the context before a "Question:" line of the user message', async () => {
    const result = await local().generate({
      prompt: `Context:\n${handbook}\n\nQuestion: When does the cafeteria open?`,
    });
    expect(result.text).toBe('The cafeteria opens at eight.');
  });

  it('answers Korean questions from Korean context (word pieces match inflected forms)', async () => {
    const result = await local().generate({
      system:
        '도서관은 오전 9시에 문을 엽니다. 주차장은 지하 2층에 있습니다. 식당은 정오에 점심을 제공합니다.',
      prompt: '질문: 도서관은 몇 시에 열어요?',
    });
    expect(result.text).toBe('도서관은 오전 9시에 문을 엽니다.');
  });

  it('says so when the context does not answer', async () => {
    const result = await local().generate({ system: handbook, prompt: 'xylophone quantum?' });
    expect(result.text).toBe('The provided context does not answer this question.');
  });

  it('is deterministic and streams the same answer it generates', async () => {
    const call = { system: handbook, prompt: 'Which mode uses a separate database or a schema?' };
    const generated = await local().generate(call);
    expect(generated.text).toBe(
      'Schema mode gives each tenant its own Postgres schema. Database mode places each tenant in a separate database.',
    );
    const again = await createLocalProvider().languageModel().generate(call);
    expect(again).toEqual(generated);
    const stream = await local().stream(call);
    let text = '';
    for await (const delta of stream) text += delta;
    expect(text).toBe(generated.text);
    expect((await stream.result).usage).toEqual(generated.usage);
  });

  it('honours an aborted signal', async () => {
    const controller = new AbortController();
    controller.abort();
    await expect(local().generate({ prompt: 'x', abortSignal: controller.signal })).rejects.toMatchObject({
      name: 'AbortError',
    });
  });

  it('ranks documents with the lexical reranker', async () => {
    const documents = [
      'Parking is underground.',
      'Tenants are isolated by row-level security.',
      'Lunch at noon.',
    ];
    const { results } = await local.reranker().rerank('how is a tenant isolated', documents, 1);
    expect(results).toEqual([{ index: 1, score: expect.any(Number), document: documents[1] }]);
    expect(results[0]!.score).toBeGreaterThan(0);
  });

  it('scores nothing shared as zero', () => {
    expect(lexicalScores('alpha', ['beta gamma'])).toEqual([0]);
  });

  it('embeds with the configured dimension', async () => {
    const model = createLocalProvider({ dimensions: 64 }).embedding();
    expect(model.dimensions).toBe(64);
    expect((await model.embed(['a b'])).embeddings[0]).toHaveLength(64);
  });
});
