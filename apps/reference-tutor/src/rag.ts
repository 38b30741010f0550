/**
 * Retrieval-augmented generation over a tenant's documents: chunks are stored in the tenant's tables
 * (`document_chunks`) and their vectors in the tenant's vector store under the chunk id; a question is
 * embedded, matched, and answered from the matching chunks.
 */
import { MtPaasError } from '@mt-paas/context';
import { and, count, eq, inArray, type SQL } from 'drizzle-orm';
import { chunkText } from './chunker.js';
import { documentChunks, documents } from './schema.js';
import type { RagSettings, TenantAi, Tx } from './tutor.js';

/** A source cited by an answer. */
export interface Source {
  documentId: string;
  title: string;
  /** Index of the chunk in its document. */
  chunk: number;
  excerpt: string;
  score: number;
}

type RunUnit = <T>(fn: (tx: Tx) => T | Promise<T>) => Promise<T>;

const EMBED_BATCH = 64;

async function embedAll(ai: TenantAi, texts: string[]): Promise<number[][]> {
  const vectors: number[][] = [];
  for (let start = 0; start < texts.length; start += EMBED_BATCH) {
    const { embeddings } = await ai.embeddingModel.embed(texts.slice(start, start + EMBED_BATCH));
    vectors.push(...embeddings);
  }
  return vectors;
}

export interface NewDocument {
  courseId: string;
  title: string;
  contentType: string;
  content: string;
  createdBy: string | null;
}

/** Chunks, stores and embeds a document; on an embedding failure nothing stays behind. */
export async function indexDocument(run: RunUnit, ai: TenantAi, settings: RagSettings, input: NewDocument) {
  const chunks = chunkText(input.content, { chunkSize: settings.chunkSize, overlap: settings.overlap });
  if (chunks.length === 0) {
    throw new MtPaasError(
      'INVALID_REQUEST',
      'The document has no text: upload a non-empty text or markdown file.',
    );
  }
  const embeddings = await embedAll(ai, chunks);
  const { document, rows } = await run(async (tx) => {
    const [document] = await tx
      .insert(documents)
      .values({ ...input, chunkCount: chunks.length })
      .returning();
    const rows = await tx
      .insert(documentChunks)
      .values(
        chunks.map((content, chunkIndex) => ({
          documentId: document!.id,
          courseId: input.courseId,
          chunkIndex,
          content,
        })),
      )
      .returning({ id: documentChunks.id, chunkIndex: documentChunks.chunkIndex });
    return { document: document!, rows };
  });
  try {
    await upsertVectors(ai, document, rows, embeddings);
  } catch (error) {
    await run(async (tx) => {
      await tx.delete(documentChunks).where(eq(documentChunks.documentId, document.id));
      await tx.delete(documents).where(eq(documents.id, document.id));
    });
    throw error;
  }
  return document;
}

async function upsertVectors(
  ai: TenantAi,
  document: { id: string; courseId: string; title: string },
  rows: { id: string; chunkIndex: number }[],
  embeddings: number[][],
) {
  for (let start = 0; start < rows.length; start += 500) {
    await ai.vectorStore.upsert(
      rows.slice(start, start + 500).map((row) => ({
        id: row.id,
        vector: embeddings[row.chunkIndex]!,
        metadata: { documentId: document.id, courseId: document.courseId, chunk: row.chunkIndex },
      })),
    );
  }
}

/**
 * Rebuilds the tenant's vectors from the stored chunks when the store holds fewer than there are chunks
 * (an in-memory store after a restart, or on another instance; a new store configured): the chunk table
 * is the source of truth. Upserts are idempotent, so a concurrent rebuild is harmless.
 */
export async function ensureIndexed(run: RunUnit, ai: TenantAi): Promise<number> {
  const [stored, indexed] = await Promise.all([
    run((tx) => tx.select({ value: count() }).from(documentChunks)),
    ai.vectorStore.count(),
  ]);
  if (indexed >= (stored[0]?.value ?? 0)) return 0;
  const rows = await run((tx) =>
    tx
      .select({
        id: documentChunks.id,
        documentId: documentChunks.documentId,
        courseId: documentChunks.courseId,
        chunkIndex: documentChunks.chunkIndex,
        content: documentChunks.content,
      })
      .from(documentChunks),
  );
  const embeddings = await embedAll(
    ai,
    rows.map((row) => row.content),
  );
  for (let start = 0; start < rows.length; start += 500) {
    await ai.vectorStore.upsert(
      rows.slice(start, start + 500).map((row, offset) => ({
        id: row.id,
        vector: embeddings[start + offset]!,
        metadata: { documentId: row.documentId, courseId: row.courseId, chunk: row.chunkIndex },
      })),
    );
  }
  return rows.length;
}

/** Chunks with the title of their document (joined on both keys: `tenant_id` and id). */
export function chunksWithTitles(tx: Tx, where: SQL | undefined) {
  return tx
    .select({
      id: documentChunks.id,
      documentId: documentChunks.documentId,
      chunkIndex: documentChunks.chunkIndex,
      content: documentChunks.content,
      title: documents.title,
    })
    .from(documentChunks)
    .innerJoin(
      documents,
      and(eq(documents.id, documentChunks.documentId), eq(documents.tenantId, documentChunks.tenantId)),
    )
    .where(where);
}

/** The chunks closest to the question (of one course, or of all the tenant's courses). */
export async function retrieve(
  run: RunUnit,
  ai: TenantAi,
  question: string,
  options: { courseId?: string | undefined; topK: number },
): Promise<Source[]> {
  await ensureIndexed(run, ai);
  const { embeddings } = await ai.embeddingModel.embed([question]);
  const matches = await ai.vectorStore.query({
    vector: embeddings[0]!,
    topK: options.topK,
    ...(options.courseId === undefined ? {} : { filter: { courseId: options.courseId } }),
  });
  if (matches.length === 0) return [];
  const ids = matches.map((match) => match.id);
  // The chunk rows are read in the tenant's unit of work: a vector whose chunk is gone (deleted
  // document) or not the tenant's is dropped here.
  const rows = await run((tx) => chunksWithTitles(tx, inArray(documentChunks.id, ids)));
  const byId = new Map(rows.map((row) => [row.id, row]));
  return matches.flatMap((match) => {
    const row = byId.get(match.id);
    return row === undefined
      ? []
      : [
          {
            documentId: row.documentId,
            title: row.title,
            chunk: row.chunkIndex,
            excerpt: row.content,
            score: match.score,
          },
        ];
  });
}

/** The system prompt: numbered excerpts, then one short instruction. */
export function contextPrompt(sources: Source[]): string {
  if (sources.length === 0)
    return 'No course documents match this question. Say that you could not find it in the course documents.';
  // the marker on its own line, so an extractive model never quotes it as part of a sentence
  return sources.map((source, index) => `[${index + 1}] (${source.title})\n${source.excerpt}`).join('\n\n');
}

/** Deletes the vectors of the given chunks (a deleted document or course). */
export async function deleteVectors(ai: TenantAi, chunkIds: string[]) {
  for (let start = 0; start < chunkIds.length; start += 500) {
    await ai.vectorStore.delete({ ids: chunkIds.slice(start, start + 500) });
  }
}
