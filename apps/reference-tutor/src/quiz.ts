/**
 * Quiz generation from a course's documents: cloze questions (a sentence with its key term blanked
 * out, the term among three distractors taken from the same course). Deterministic and grounded in
 * the documents, so it works with any LLM configuration, including the local one.
 */
import type { QuizQuestion } from './schema.js';

export interface QuizChunk {
  documentId: string;
  title: string;
  chunkIndex: number;
  content: string;
}

const segmenter = new Intl.Segmenter(undefined, { granularity: 'sentence' });
const WORD = /[\p{L}\p{N}][\p{L}\p{N}'-]*/gu;

function termsOf(sentence: string): string[] {
  return [...sentence.matchAll(WORD)]
    .map((match) => match[0])
    .filter((word) => word.length >= 4 && !/^\d+$/.test(word));
}

/** A stable pseudo-random order (FNV-1a of the seed) so a quiz can be reproduced from its inputs. */
function hash(text: string): number {
  let value = 0x811c9dc5;
  for (let index = 0; index < text.length; index += 1) {
    value ^= text.charCodeAt(index);
    value = Math.imul(value, 0x01000193) >>> 0;
  }
  return value;
}

export function generateQuiz(chunks: QuizChunk[], count: number, seed: string): QuizQuestion[] {
  const frequency = new Map<string, number>();
  const candidates: { sentence: string; chunk: QuizChunk }[] = [];
  const seen = new Set<string>();
  for (const chunk of chunks) {
    for (const { segment } of segmenter.segment(chunk.content)) {
      const sentence = segment.trim();
      if (sentence.length < 20 || sentence.length > 300 || seen.has(sentence)) continue;
      seen.add(sentence);
      candidates.push({ sentence, chunk });
      for (const term of new Set(termsOf(sentence).map((term) => term.toLowerCase()))) {
        frequency.set(term, (frequency.get(term) ?? 0) + 1);
      }
    }
  }
  const vocabulary = [...frequency.keys()];
  const questions: QuizQuestion[] = [];
  const ordered = candidates
    .map((candidate) => ({ candidate, order: hash(`${seed}:${candidate.sentence}`) }))
    .sort((a, b) => a.order - b.order);
  for (const { candidate } of ordered) {
    if (questions.length >= count) break;
    const terms = termsOf(candidate.sentence);
    if (terms.length === 0) continue;
    // the rarest, then longest term of the sentence is its key term
    const key = [...terms].sort(
      (a, b) =>
        (frequency.get(a.toLowerCase()) ?? 0) - (frequency.get(b.toLowerCase()) ?? 0) || b.length - a.length,
    )[0]!;
    const distractors = vocabulary
      .filter((term) => term !== key.toLowerCase() && !candidate.sentence.toLowerCase().includes(term))
      .sort(
        (a, b) =>
          Math.abs(a.length - key.length) - Math.abs(b.length - key.length) ||
          hash(`${seed}:${a}`) - hash(`${seed}:${b}`),
      )
      .slice(0, 3);
    if (distractors.length < 3) continue;
    const choices = [key, ...distractors];
    const rotation = hash(`${seed}:${key}`) % choices.length;
    const rotated = [...choices.slice(rotation), ...choices.slice(0, rotation)];
    questions.push({
      prompt: candidate.sentence.replace(key, '_____'),
      choices: rotated,
      answerIndex: rotated.indexOf(key),
      source: {
        documentId: candidate.chunk.documentId,
        title: candidate.chunk.title,
        chunk: candidate.chunk.chunkIndex,
      },
    });
  }
  return questions;
}
