/** Courses CRUD, document upload (chunked, embedded, stored in the tenant's vector store) and quizzes. */
import { MtPaasError } from '@mt-paas/context';
import { and, asc, desc, eq, sql } from 'drizzle-orm';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { generateQuiz } from '../quiz.js';
import { chunksWithTitles, deleteVectors, indexDocument } from '../rag.js';
import { chatMessages, courses, documentChunks, documents, quizzes } from '../schema.js';
import { type Tutor, VERBS } from '../tutor.js';
import { ErrorBody, IdParams, userIdOf } from './common.js';

const Course = z.object({
  id: z.string(),
  title: z.string(),
  description: z.string(),
  createdAt: z.string(),
  updatedAt: z.string(),
});
const DocumentOut = z.object({
  id: z.string(),
  courseId: z.string(),
  title: z.string(),
  contentType: z.string(),
  chunkCount: z.number(),
  createdAt: z.string(),
});

const courseOut = (row: typeof courses.$inferSelect) => ({
  id: row.id,
  title: row.title,
  description: row.description,
  createdAt: row.createdAt.toISOString(),
  updatedAt: row.updatedAt.toISOString(),
});
const documentOut = (row: typeof documents.$inferSelect) => ({
  id: row.id,
  courseId: row.courseId,
  title: row.title,
  contentType: row.contentType,
  chunkCount: row.chunkCount,
  createdAt: row.createdAt.toISOString(),
});

const EDITORS = ['admin', 'instructor'];
const MAX_DOCUMENT_BYTES = 2 * 1024 * 1024;

function courseNotFound(): MtPaasError {
  return new MtPaasError(
    'ROUTE_NOT_FOUND',
    'No such course in this institution; list them with GET /api/courses.',
    { httpStatus: 404 },
  );
}

export async function courseRoutes(root: FastifyInstance, tutor: Tutor) {
  const app = root.withTypeProvider<ZodTypeProvider>();

  // text/plain and text/markdown uploads arrive as a string body
  root.addContentTypeParser(
    ['text/markdown', 'text/x-markdown'],
    { parseAs: 'string', bodyLimit: MAX_DOCUMENT_BYTES },
    (_req, body, done) => done(null, body),
  );

  async function requireCourse(req: FastifyRequest, id: string) {
    const [course] = await req.tenantDb((tx) => tx.select().from(courses).where(eq(courses.id, id)));
    if (course === undefined) throw courseNotFound();
    return course;
  }

  app.get(
    '/api/courses',
    {
      config: { mtPaas: { auth: 'jwt' } },
      schema: { tags: ['courses'], summary: "The tenant's courses", response: { 200: z.array(Course) } },
    },
    async (req) =>
      (await req.tenantDb((tx) => tx.select().from(courses).orderBy(asc(courses.createdAt)))).map(courseOut),
  );

  app.post(
    '/api/courses',
    {
      config: { mtPaas: { auth: 'jwt', roles: EDITORS } },
      schema: {
        tags: ['courses'],
        summary: 'Create a course (admin, instructor)',
        body: z.object({
          title: z.string().trim().min(1).max(200),
          description: z.string().max(5000).default(''),
        }),
        response: { 201: Course, 403: ErrorBody },
      },
    },
    async (req, reply) => {
      const [course] = await req.tenantDb((tx) =>
        tx
          .insert(courses)
          .values({ title: req.body.title, description: req.body.description, createdBy: userIdOf(req) })
          .returning(),
      );
      tutor.activity(VERBS.created, 'course');
      reply.code(201);
      return courseOut(course!);
    },
  );

  app.get(
    '/api/courses/:id',
    {
      config: { mtPaas: { auth: 'jwt' } },
      schema: { tags: ['courses'], params: IdParams, response: { 200: Course, 404: ErrorBody } },
    },
    async (req) => courseOut(await requireCourse(req, req.params.id)),
  );

  app.patch(
    '/api/courses/:id',
    {
      config: { mtPaas: { auth: 'jwt', roles: EDITORS } },
      schema: {
        tags: ['courses'],
        params: IdParams,
        body: z
          .object({
            title: z.string().trim().min(1).max(200).optional(),
            description: z.string().max(5000).optional(),
          })
          .refine((body) => body.title !== undefined || body.description !== undefined, {
            message: 'give title and/or description',
          }),
        response: { 200: Course, 404: ErrorBody },
      },
    },
    async (req) => {
      const [course] = await req.tenantDb((tx) =>
        tx
          .update(courses)
          .set({ ...req.body, updatedAt: sql`now()` })
          .where(eq(courses.id, req.params.id))
          .returning(),
      );
      if (course === undefined) throw courseNotFound();
      return courseOut(course);
    },
  );

  app.delete(
    '/api/courses/:id',
    {
      config: { mtPaas: { auth: 'jwt', roles: EDITORS } },
      schema: {
        tags: ['courses'],
        summary: 'Delete a course with its documents, vectors and chat history',
        params: IdParams,
        response: { 204: z.null(), 404: ErrorBody },
      },
    },
    async (req, reply) => {
      const chunkIds = await req.tenantDb(async (tx) => {
        const [course] = await tx
          .delete(courses)
          .where(eq(courses.id, req.params.id))
          .returning({ id: courses.id });
        if (course === undefined) return undefined;
        const chunks = await tx
          .delete(documentChunks)
          .where(eq(documentChunks.courseId, course.id))
          .returning({ id: documentChunks.id });
        await tx.delete(documents).where(eq(documents.courseId, course.id));
        await tx.delete(quizzes).where(eq(quizzes.courseId, course.id));
        await tx.delete(chatMessages).where(eq(chatMessages.courseId, course.id));
        return chunks.map((chunk) => chunk.id);
      });
      if (chunkIds === undefined) throw courseNotFound();
      const ai = await tutor.ai(req);
      await deleteVectors(ai, chunkIds);
      reply.code(204);
      return null;
    },
  );

  app.post(
    '/api/courses/:id/documents',
    {
      bodyLimit: MAX_DOCUMENT_BYTES,
      config: { mtPaas: { auth: 'jwt', roles: EDITORS, features: ['file_upload'] } },
      schema: {
        tags: ['documents'],
        summary:
          'Upload a text or markdown document: JSON {title, content}, or the raw text/plain or text/markdown body with ?title=',
        params: IdParams,
        querystring: z.object({ title: z.string().trim().min(1).max(300).optional() }),
        body: z.union([
          z.object({
            title: z.string().trim().min(1).max(300),
            content: z.string().min(1),
            contentType: z.enum(['text/plain', 'text/markdown']).default('text/markdown'),
          }),
          z.string().min(1),
        ]),
        response: { 201: DocumentOut, 404: ErrorBody },
      },
    },
    async (req, reply) => {
      const course = await requireCourse(req, req.params.id);
      const raw = typeof req.body === 'string';
      const content = raw ? (req.body as string) : (req.body as { content: string }).content;
      const mediaType = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
      const contentType = raw
        ? mediaType.includes('markdown')
          ? 'text/markdown'
          : 'text/plain'
        : (req.body as { contentType: string }).contentType;
      const title = raw
        ? (req.query.title ?? /^\s*#\s+(.+)$/m.exec(content)?.[1]?.trim() ?? 'Untitled document')
        : (req.body as { title: string }).title;
      const ai = await tutor.ai(req);
      const document = await indexDocument((fn) => req.tenantDb(fn), ai, tutor.rag, {
        courseId: course.id,
        title: title.slice(0, 300),
        contentType,
        content,
        createdBy: userIdOf(req),
      });
      tutor.activity(VERBS.uploaded, 'document', { chunks: document.chunkCount });
      reply.code(201);
      return documentOut(document);
    },
  );

  app.get(
    '/api/courses/:id/documents',
    {
      config: { mtPaas: { auth: 'jwt' } },
      schema: {
        tags: ['documents'],
        params: IdParams,
        response: { 200: z.array(DocumentOut), 404: ErrorBody },
      },
    },
    async (req) => {
      await requireCourse(req, req.params.id);
      const rows = await req.tenantDb((tx) =>
        tx
          .select()
          .from(documents)
          .where(eq(documents.courseId, req.params.id))
          .orderBy(desc(documents.createdAt)),
      );
      return rows.map(documentOut);
    },
  );

  app.delete(
    '/api/courses/:id/documents/:documentId',
    {
      config: { mtPaas: { auth: 'jwt', roles: EDITORS } },
      schema: {
        tags: ['documents'],
        params: z.object({ id: z.uuid(), documentId: z.uuid() }),
        response: { 204: z.null(), 404: ErrorBody },
      },
    },
    async (req, reply) => {
      const chunkIds = await req.tenantDb(async (tx) => {
        const [document] = await tx
          .delete(documents)
          .where(and(eq(documents.id, req.params.documentId), eq(documents.courseId, req.params.id)))
          .returning({ id: documents.id });
        if (document === undefined) return undefined;
        const chunks = await tx
          .delete(documentChunks)
          .where(eq(documentChunks.documentId, document.id))
          .returning({ id: documentChunks.id });
        return chunks.map((chunk) => chunk.id);
      });
      if (chunkIds === undefined)
        throw new MtPaasError('ROUTE_NOT_FOUND', 'No such document in this course.', { httpStatus: 404 });
      await deleteVectors(await tutor.ai(req), chunkIds);
      reply.code(204);
      return null;
    },
  );

  const Question = z.object({
    prompt: z.string(),
    choices: z.array(z.string()),
    answerIndex: z.number(),
    source: z.object({ documentId: z.string(), title: z.string(), chunk: z.number() }),
  });

  app.post(
    '/api/courses/:id/quiz',
    {
      config: { mtPaas: { auth: 'jwt', features: ['quiz'] } },
      schema: {
        tags: ['quiz'],
        summary:
          "Generate a quiz from the course's documents (feature `quiz`; 403 FEATURE_NOT_IN_PLAN otherwise)",
        params: IdParams,
        body: z.object({ count: z.number().int().min(1).max(20).default(5) }).default({ count: 5 }),
        response: {
          201: z.object({ id: z.string(), courseId: z.string(), questions: z.array(Question) }),
          403: ErrorBody,
          404: ErrorBody,
        },
      },
    },
    async (req, reply) => {
      await requireCourse(req, req.params.id);
      const chunks = await req.tenantDb((tx) =>
        chunksWithTitles(tx, eq(documentChunks.courseId, req.params.id)),
      );
      const questions = generateQuiz(chunks, req.body.count, `${req.params.id}:${Date.now()}`);
      if (questions.length === 0) {
        throw new MtPaasError(
          'INVALID_REQUEST',
          'This course has too little text for a quiz (it needs several sentences with distinct terms): upload more course material.',
        );
      }
      const [quiz] = await req.tenantDb((tx) =>
        tx
          .insert(quizzes)
          .values({ courseId: req.params.id, questions, createdBy: userIdOf(req) })
          .returning(),
      );
      tutor.activity(VERBS.created, 'quiz', { questions: questions.length });
      reply.code(201);
      return { id: quiz!.id, courseId: quiz!.courseId, questions };
    },
  );
}
