/** Text helpers shared by the local provider and usage estimation. */

const WORD = /[\p{L}\p{N}]+/gu;

/** Lower-cased, NFKC-normalised word tokens (letters and digits of any script). */
export function tokenize(text: string): string[] {
  return text.normalize('NFKC').toLowerCase().match(WORD) ?? [];
}

/**
 * A rough token count for providers that do not report usage: about four characters per token
 * for Latin text, one per character for CJK and Hangul. Never less than one for non-empty text.
 */
export function estimateTokens(text: string): number {
  if (text.length === 0) return 0;
  let wide = 0;
  for (const character of text) {
    const code = character.codePointAt(0)!;
    if (code >= 0x1100) wide += 1;
  }
  const narrow = text.length - wide;
  return Math.max(1, Math.ceil(narrow / 4) + wide);
}

/** 32-bit FNV-1a over the UTF-16 code units of `text`, mixed with `seed`. */
export function fnv1a(text: string, seed = 0x811c9dc5): number {
  let hash = seed >>> 0;
  for (let index = 0; index < text.length; index++) {
    hash ^= text.charCodeAt(index);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}

/**
 * Splits text into sentences: at `.`, `!`, `?`, `。` and friends followed by white space, and at
 * line breaks. Keeps the punctuation; drops empty pieces.
 */
export function splitSentences(text: string): string[] {
  return text
    .split(/(?<=[.!?。！？])\s+|\n+/u)
    .map((sentence) => sentence.trim())
    .filter((sentence) => sentence.length > 0);
}
