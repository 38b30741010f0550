import { callMessages, createLanguageModelStream, type StreamPart } from './language-model-stream.js';
import { createLocalEmbeddingModel } from './local-embedding.js';
import { checkTopN, rankResults } from './rerank-results.js';
import type {
  CallOptions,
  EmbeddingModel,
  GenerateOptions,
  GenerateResult,
  LanguageModel,
  LanguageModelStream,
  RerankingModel,
  RerankResponse,
} from './spec.js';
import { splitSentences, tokenize } from './text.js';

/** Options of {@link createLocalProvider}. */
export interface LocalProviderOptions {
  /** Vector length of the local embedding model. @default 256 */
  dimensions?: number;
  /** Most sentences the extractive answerer returns. @default 3 */
  maxSentences?: number;
  /** The answer when no sentence of the context matches the question. */
  noAnswerText?: string;
}

/** The local provider: an extractive answerer, hash embeddings and a lexical reranker, all in-process. */
export interface LocalProvider {
  (modelId?: string): LanguageModel;
  readonly name: 'local';
  /** The extractive answerer (any model id; `extractive` by convention). */
  languageModel(modelId?: string): LanguageModel;
  /** The hash embedding model (see `createLocalEmbeddingModel`). */
  embedding(modelId?: string, options?: { dimensions?: number }): EmbeddingModel;
  /** A lexical reranker (the same scoring as the answerer). */
  reranker(modelId?: string): RerankingModel;
}

const STOPWORDS = new Set(
  'a an and are as at be but by can could did do does for from had has have how i if in into is it its me my of on or our so than that the their them then there these they this to was we were what when where which who whom why will with would you your'.split(
    ' ',
  ),
);

const QUESTION_MARKER = /^\s*(?:question|q|질문|문제)\s*[:：]\s*/imu;

function contentWords(text: string): string[] {
  return tokenize(text).filter((word) => !STOPWORDS.has(word));
}

function trigrams(word: string): Set<string> {
  const characters = Array.from(`#${word}#`);
  const result = new Set<string>();
  for (let index = 0; index + 3 <= characters.length; index++) {
    result.add(characters.slice(index, index + 3).join(''));
  }
  return result;
}

/**
 * How well two words match, 0..1: 1 when equal; the length ratio when one starts the other
 * ("tenant"/"tenants", "도서관"/"도서관은"); else the Dice coefficient of their character
 * trigrams. Below 0.5 counts as no match.
 */
function wordSimilarity(left: string, right: string): number {
  if (left === right) return 1;
  const [shorter, longer] = left.length <= right.length ? [left, right] : [right, left];
  const minimum = /^[a-z0-9]+$/.test(shorter) ? 3 : 2;
  let similarity = 0;
  if (Array.from(shorter).length >= minimum && longer.startsWith(shorter)) {
    similarity = Array.from(shorter).length / Array.from(longer).length;
  } else {
    const leftGrams = trigrams(left);
    const rightGrams = trigrams(right);
    let shared = 0;
    for (const gram of leftGrams) if (rightGrams.has(gram)) shared++;
    similarity = (2 * shared) / (leftGrams.size + rightGrams.size);
  }
  return similarity >= 0.5 ? similarity : 0;
}

interface PassageMatch {
  score: number;
  /** Query words this passage matches. */
  matched: Set<string>;
}

function matchPassages(query: string, passages: readonly string[]): PassageMatch[] {
  const queryWords = [...new Set(contentWords(query))];
  const passageWords = passages.map((passage) => [...new Set(contentWords(passage))]);
  const similarities = passageWords.map((words) =>
    queryWords.map((queryWord) => Math.max(0, ...words.map((word) => wordSimilarity(queryWord, word)))),
  );
  const count = passages.length;
  const idf = queryWords.map((_, position) => {
    const frequency = similarities.filter((row) => (row[position] ?? 0) > 0).length;
    return Math.log((count + 1) / (frequency + 0.5));
  });
  return similarities.map((row) => {
    let score = 0;
    const matched = new Set<string>();
    row.forEach((similarity, position) => {
      if (similarity === 0) return;
      score += similarity * idf[position]!;
      matched.add(queryWords[position]!);
    });
    return { score, matched };
  });
}

/**
 * Scores each passage against the query: the query's content words found in the passage
 * (exactly, as a prefix, or by character trigrams), weighted by how rare they are among the
 * passages. Deterministic; 0 when nothing matches.
 */
export function lexicalScores(query: string, passages: readonly string[]): number[] {
  return matchPassages(query, passages).map((match) => match.score);
}

/** Splits a call into the question and the context to answer from. */
function questionAndContext(call: GenerateOptions): { question: string; context: string } {
  const messages = callMessages(call);
  let lastUser = -1;
  for (let index = messages.length - 1; index >= 0; index--) {
    if (messages[index]!.role === 'user') {
      lastUser = index;
      break;
    }
  }
  const contextParts = call.system === undefined ? [] : [call.system];
  let question = '';
  messages.forEach((message, index) => {
    if (index !== lastUser) {
      contextParts.push(message.content);
      return;
    }
    const marker = QUESTION_MARKER.exec(message.content);
    if (marker === null) {
      question = message.content;
      return;
    }
    contextParts.push(message.content.slice(0, marker.index));
    question = message.content.slice(marker.index + marker[0].length);
  });
  return { question, context: contextParts.join('\n') };
}

/**
 * The deterministic local provider — the embedded default when no LLM key is configured.
 * Its language model is an extractive answerer: it answers from the context supplied in the
 * call (system prompt, earlier messages, or text before a `Question:` / `질문:` line) with the
 * sentences that best match the question, in their original order. It never invents text.
 *
 * @example
 * const local = createLocalProvider();
 * const { text } = await local().generate({
 *   system: 'Row mode shares tables. Schema mode gives each tenant a schema.',
 *   prompt: 'What does schema mode give each tenant?',
 * }); // 'Schema mode gives each tenant a schema.'
 */
export function createLocalProvider(options: LocalProviderOptions = {}): LocalProvider {
  const maxSentences = options.maxSentences ?? 3;
  const noAnswer = options.noAnswerText ?? 'The provided context does not answer this question.';

  function answer(call: GenerateOptions): { sentences: string[]; inputTokens: number } {
    const { question, context } = questionAndContext(call);
    const inputTokens = tokenize(`${context}\n${question}`).length;
    const sentences = splitSentences(context);
    const matches = matchPassages(question, sentences);
    const ranked = matches
      .map((match, index) => ({ ...match, index }))
      .filter((entry) => entry.score > 0)
      .sort((left, right) => right.score - left.score || left.index - right.index);
    const best = ranked[0];
    if (best === undefined) return { sentences: [noAnswer], inputTokens };
    // The best sentence, then others only when they are nearly as good and cover question words it missed.
    const picked = [best];
    const covered = new Set(best.matched);
    for (const entry of ranked.slice(1)) {
      if (picked.length >= maxSentences || entry.score < best.score * 0.5) break;
      const adds = [...entry.matched].some((word) => !covered.has(word));
      if (!adds) continue;
      picked.push(entry);
      for (const word of entry.matched) covered.add(word);
    }
    const chosen = picked
      .sort((left, right) => left.index - right.index)
      .map((entry) => sentences[entry.index]!);
    return { sentences: chosen, inputTokens };
  }

  function languageModel(modelId = 'extractive'): LanguageModel {
    const model = `local:${modelId}`;
    return {
      specificationVersion: 'v1',
      provider: 'local',
      modelId,
      async generate(call: GenerateOptions): Promise<GenerateResult> {
        call.abortSignal?.throwIfAborted();
        const { sentences, inputTokens } = answer(call);
        const text = sentences.join(' ');
        const outputTokens = tokenize(text).length;
        return {
          text,
          finishReason: 'stop',
          model,
          usage: { inputTokens, outputTokens, totalTokens: inputTokens + outputTokens },
        };
      },
      async stream(call: GenerateOptions): Promise<LanguageModelStream> {
        call.abortSignal?.throwIfAborted();
        const { sentences, inputTokens } = answer(call);
        const controller = new AbortController();
        const signals = [controller.signal, ...(call.abortSignal === undefined ? [] : [call.abortSignal])];
        const signal = AbortSignal.any(signals);
        async function* parts(): AsyncGenerator<StreamPart> {
          let outputTokens = 0;
          for (const [index, sentence] of sentences.entries()) {
            await new Promise<void>((resolve) => setImmediate(resolve));
            signal.throwIfAborted();
            outputTokens += tokenize(sentence).length;
            yield { type: 'text', text: index === 0 ? sentence : ` ${sentence}` };
          }
          yield { type: 'usage', inputTokens, outputTokens, totalTokens: inputTokens + outputTokens };
          yield { type: 'finish', finishReason: 'stop' };
        }
        return createLanguageModelStream({
          model,
          parts: parts(),
          cancel: (reason) => controller.abort(reason),
          options: call,
        });
      },
    };
  }

  function reranker(modelId = 'lexical'): RerankingModel {
    return {
      specificationVersion: 'v1',
      provider: 'local',
      modelId,
      async rerank(
        query: string,
        documents: readonly string[],
        topN?: number,
        call: CallOptions = {},
      ): Promise<RerankResponse> {
        call.abortSignal?.throwIfAborted();
        checkTopN(topN);
        const scores = lexicalScores(query, documents);
        const results = documents.map((document, index) => ({ index, score: scores[index]!, document }));
        return { results: rankResults(results, topN), usage: {} };
      },
    };
  }

  const provider = ((modelId?: string) => languageModel(modelId)) as LocalProvider;
  Object.defineProperties(provider, {
    name: { value: 'local' },
    languageModel: { value: languageModel },
    embedding: {
      value: (modelId?: string, embeddingOptions: { dimensions?: number } = {}) =>
        createLocalEmbeddingModel({
          dimensions: embeddingOptions.dimensions ?? options.dimensions ?? 256,
          ...(modelId === undefined || modelId === 'hash' ? {} : { modelId }),
        }),
    },
    reranker: { value: reranker },
  });
  return provider;
}

/** The default local provider (256-dimension embeddings, three-sentence answers). */
export const local: LocalProvider = createLocalProvider();
