import { describe, expect, it } from 'vitest';
import { generateQuiz } from './quiz.js';

const chunks = [
  {
    documentId: 'd1',
    title: 'Biology',
    chunkIndex: 0,
    content:
      'Photosynthesis converts light energy into chemical energy. Chlorophyll absorbs mostly blue and red light. ' +
      'Mitochondria release energy from glucose during respiration. Stomata regulate the exchange of gases in leaves.',
  },
  {
    documentId: 'd2',
    title: 'History',
    chunkIndex: 3,
    content:
      'The French Revolution began in 1789 in Paris. Napoleon crowned himself emperor in 1804 at Notre-Dame.',
  },
];

describe('generateQuiz', () => {
  it('blanks a term of a document sentence and offers it among three distractors', () => {
    const questions = generateQuiz(chunks, 4, 'seed');
    expect(questions.length).toBe(4);
    for (const question of questions) {
      expect(question.prompt).toContain('_____');
      expect(question.choices).toHaveLength(4);
      expect(new Set(question.choices).size).toBe(4);
      const answer = question.choices[question.answerIndex]!;
      const source = chunks.find((chunk) => chunk.documentId === question.source.documentId)!;
      expect(source.content).toContain(question.prompt.replace('_____', answer));
    }
  });

  it('is reproducible from its seed and never asks for more than the documents hold', () => {
    expect(generateQuiz(chunks, 3, 'a')).toEqual(generateQuiz(chunks, 3, 'a'));
    expect(generateQuiz(chunks, 50, 'a').length).toBeLessThanOrEqual(6);
    expect(generateQuiz([], 5, 'a')).toEqual([]);
  });
});
