import { MtPaasError } from '@mt-paas/context';
import { describe, expect, it } from 'vitest';
import { chunkText } from './chunker.js';

const sentence = (index: number) => `Sentence number ${index} talks about topic ${index}.`;

describe('chunkText', () => {
  it('keeps every chunk within chunk_size and ends chunks on sentence boundaries', () => {
    const text = Array.from({ length: 40 }, (_, index) => sentence(index)).join(' ');
    const chunks = chunkText(text, { chunkSize: 200, overlap: 60 });
    expect(chunks.length).toBeGreaterThan(5);
    for (const chunk of chunks) {
      expect(chunk.length).toBeLessThanOrEqual(200);
      expect(chunk.endsWith('.')).toBe(true);
    }
    // every sentence is somewhere, in order
    const joined = chunks.join(' ');
    for (let index = 0; index < 40; index += 1) expect(joined).toContain(sentence(index));
  });

  it('repeats the end of each chunk at the start of the next (overlap)', () => {
    const text = Array.from({ length: 20 }, (_, index) => sentence(index)).join(' ');
    const chunks = chunkText(text, { chunkSize: 150, overlap: 60 });
    for (let index = 1; index < chunks.length; index += 1) {
      const previousLast = chunks[index - 1]!.split(/(?<=\.) /).at(-1)!;
      expect(chunks[index]!.startsWith(previousLast)).toBe(true);
    }
  });

  it('without overlap, no sentence appears twice', () => {
    const text = Array.from({ length: 20 }, (_, index) => sentence(index)).join(' ');
    const chunks = chunkText(text, { chunkSize: 150, overlap: 0 });
    const all = chunks.join(' ');
    for (let index = 0; index < 20; index += 1) {
      expect(all.split(sentence(index)).length - 1).toBe(1);
    }
  });

  it('cuts a sentence longer than a chunk at word boundaries', () => {
    const long = `${'word '.repeat(100).trim()}.`;
    const chunks = chunkText(long, { chunkSize: 60, overlap: 10 });
    expect(chunks.length).toBeGreaterThan(5);
    for (const chunk of chunks) {
      expect(chunk.length).toBeLessThanOrEqual(60);
      expect(chunk).not.toMatch(/wor$|^ord/);
    }
  });

  it('drops markdown markup and keeps headings as sentences', () => {
    const markdown =
      '# Photosynthesis\n\n**Plants** turn [light](https://x.test) into sugar.\n\n- Chlorophyll is green.\n\n```\ncode\n```';
    const [chunk] = chunkText(markdown, { chunkSize: 500, overlap: 50 });
    expect(chunk).toBe('Photosynthesis. Plants turn light into sugar. Chlorophyll is green. code');
  });

  it('segments Korean sentences', () => {
    const text = '한림대학교 도서관은 오전 9시에 엽니다. 열람실은 24시간 운영합니다. 대출은 2주입니다.';
    const chunks = chunkText(text, { chunkSize: 40, overlap: 0 });
    expect(chunks).toEqual([
      '한림대학교 도서관은 오전 9시에 엽니다. 열람실은 24시간 운영합니다.',
      '대출은 2주입니다.',
    ]);
  });

  it('gives nothing for empty text and refuses bad sizes', () => {
    expect(chunkText('  \n\n ', { chunkSize: 100, overlap: 10 })).toEqual([]);
    expect(() => chunkText('a', { chunkSize: 0, overlap: 0 })).toThrow(MtPaasError);
    expect(() => chunkText('a', { chunkSize: 10, overlap: 10 })).toThrow(/overlap/);
  });
});
