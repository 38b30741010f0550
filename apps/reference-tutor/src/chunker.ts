/**
 * Splits an uploaded text or markdown document into overlapping chunks for retrieval, sized by
 * `custom.rag.chunk_size` / `custom.rag.overlap` (characters, as in seed 001's config: 500 / 50).
 *
 * Chunks end on sentence boundaries where they can (`Intl.Segmenter`, which also segments Korean), a
 * sentence longer than a chunk is cut at a word boundary, and each chunk after the first starts with
 * the last `overlap` characters of the one before (whole sentences when they fit), so a fact split by a
 * boundary is still found whole in one chunk.
 */
import { MtPaasError } from '@mt-paas/context';

export interface ChunkOptions {
  /** Largest chunk, in characters. */
  chunkSize: number;
  /** Characters repeated from the end of the previous chunk. Must be smaller than `chunkSize`. */
  overlap: number;
}

/** Markdown markup that carries no meaning for retrieval: fences, emphasis, link targets, images. */
function plainText(markdown: string): string {
  return markdown
    .replace(/\r\n?/g, '\n')
    .replace(/^```.*$/gm, '')
    .replace(/!\[([^\]]*)\]\([^)]*\)/g, '$1')
    .replace(/\[([^\]]*)\]\([^)]*\)/g, '$1')
    .replace(/^\s{0,3}#{1,6}\s+(.*)$/gm, '$1.')
    .replace(/^\s{0,3}(?:[-*+]|\d+[.)])\s+/gm, '')
    .replace(/^\s{0,3}>\s?/gm, '')
    .replace(/(\*\*|__|\*|_|`)(?=\S)([^\n]*?\S)\1/g, '$2')
    .replace(/\.\.+$/gm, '.');
}

const segmenter = new Intl.Segmenter(undefined, { granularity: 'sentence' });

function sentencesOf(text: string): string[] {
  const sentences: string[] = [];
  for (const paragraph of text.split(/\n\s*\n/)) {
    const flat = paragraph.replace(/\s+/g, ' ').trim();
    if (flat === '') continue;
    for (const { segment } of segmenter.segment(flat)) {
      const sentence = segment.trim();
      if (sentence !== '') sentences.push(sentence);
    }
  }
  return sentences;
}

/** Cuts a too-long sentence into pieces of at most `size` characters, at spaces when there are any. */
function cutLong(sentence: string, size: number): string[] {
  const pieces: string[] = [];
  let rest = sentence;
  while (rest.length > size) {
    const space = rest.lastIndexOf(' ', size);
    const at = space > size / 2 ? space : size;
    pieces.push(rest.slice(0, at).trim());
    rest = rest.slice(at).trim();
  }
  if (rest !== '') pieces.push(rest);
  return pieces;
}

/** The tail of a chunk to repeat: whole trailing sentences within `overlap`, else its last characters. */
function overlapTail(parts: string[], overlap: number): string[] {
  if (overlap === 0) return [];
  const tail: string[] = [];
  let length = 0;
  for (let index = parts.length - 1; index >= 0; index -= 1) {
    const part = parts[index]!;
    if (length + part.length + (tail.length > 0 ? 1 : 0) > overlap) break;
    tail.unshift(part);
    length += part.length + (tail.length > 1 ? 1 : 0);
  }
  if (tail.length > 0) return tail;
  const last = parts[parts.length - 1] ?? '';
  const cut = last.slice(-overlap);
  const space = cut.indexOf(' ');
  return [(space >= 0 && space < cut.length - 1 ? cut.slice(space + 1) : cut).trim()].filter(
    (part) => part !== '',
  );
}

/**
 * Splits `text` (plain text or markdown) into chunks of at most `chunkSize` characters, each after the
 * first beginning with up to `overlap` characters of the previous one. Empty text → no chunks.
 */
export function chunkText(text: string, options: ChunkOptions): string[] {
  const { chunkSize, overlap } = options;
  if (!Number.isInteger(chunkSize) || chunkSize < 1) {
    throw new MtPaasError('CONFIG_INVALID', `chunkSize must be a whole number ≥ 1, got ${chunkSize}.`);
  }
  if (!Number.isInteger(overlap) || overlap < 0 || overlap >= chunkSize) {
    throw new MtPaasError(
      'CONFIG_INVALID',
      `overlap must be a whole number from 0 to chunkSize - 1, got ${overlap}.`,
    );
  }
  const pieces = sentencesOf(plainText(text)).flatMap((sentence) => cutLong(sentence, chunkSize));
  const chunks: string[] = [];
  let current: string[] = [];
  let fresh = 0; // pieces of `current` not yet emitted in a chunk
  const lengthOf = (parts: string[]) =>
    parts.reduce((sum, part) => sum + part.length, 0) + Math.max(0, parts.length - 1);

  for (const piece of pieces) {
    if (current.length > 0 && lengthOf([...current, piece]) > chunkSize) {
      if (fresh > 0) chunks.push(current.join(' '));
      current = overlapTail(current, overlap);
      while (current.length > 0 && lengthOf([...current, piece]) > chunkSize) current.shift();
      fresh = 0;
    }
    current.push(piece);
    fresh += 1;
  }
  if (fresh > 0) chunks.push(current.join(' '));
  return chunks;
}
