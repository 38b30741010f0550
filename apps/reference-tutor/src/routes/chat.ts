/**
 * `POST /api/chat` — retrieval over the tenant's documents + the tenant's LLM, streamed as server-sent
 * events: `token` events (`{ text }`), then one `done` event (`{ answer, sources, model, usage }`), or
 * an `error` event (`{ error: { code, message } }`) if the model fails mid-stream. The framework's
 * providers meter the tokens on the tenant's `llm_tokens` quota (a broken stream too) and refuse a call
 * once it is used up; the question is logged as an activity.
 */
import { isMtPaasError, MtPaasError } from '@mt-paas/context';
import { desc, eq } from 'drizzle-orm';
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { contextPrompt, retrieve } from '../rag.js';
import { chatMessages, courses } from '../schema.js';
import { sseEvent, startSse } from '../sse.js';
import type { Tutor, Tx } from '../tutor.js';
import { ErrorBody, userIdOf } from './common.js';

const INSTRUCTION = 'Answer the question from the numbered course excerpts above and cite them as [n].';

export async function chatRoutes(root: FastifyInstance, tutor: Tutor) {
  const app = root.withTypeProvider<ZodTypeProvider>();

  app.post(
    '/api/chat',
    {
      config: { mtPaas: { auth: 'jwt', features: ['ai_chat'] } },
      schema: {
        tags: ['chat'],
        summary:
          'Ask the tutor; answered as text/event-stream (token events, then a done event with answer and sources)',
        body: z.object({ question: z.string().trim().min(1).max(4000), courseId: z.uuid().optional() }),
        response: {
          200: z
            .string()
            .describe(
              'text/event-stream: `event: token` {text} …, then `event: done` {answer, sources:[{documentId,title,chunk,excerpt,score}], model, usage}',
            ),
          400: ErrorBody,
          403: ErrorBody,
          429: ErrorBody,
        },
      },
    },
    async (req, reply) => {
      const { question, courseId } = req.body;
      const run = <T>(fn: (tx: Tx) => T | Promise<T>) => req.tenantDb(fn);
      if (courseId !== undefined) {
        const [course] = await run((tx) =>
          tx.select({ id: courses.id }).from(courses).where(eq(courses.id, courseId)),
        );
        if (course === undefined)
          throw new MtPaasError('ROUTE_NOT_FOUND', 'No such course in this institution.', {
            httpStatus: 404,
          });
      }
      const ai = await tutor.ai(req);
      const sources = await retrieve(run, ai, question, { courseId, topK: tutor.rag.topK });
      const abort = new AbortController();
      req.raw.on('close', () => {
        if (!reply.raw.writableEnded) abort.abort();
      });
      // Errors up to here (quota, provider refusing the request) are answered as JSON by the error handler.
      const stream = await ai.languageModel.stream({
        system: `${contextPrompt(sources)}\n\n${INSTRUCTION}`,
        prompt: question,
        abortSignal: abort.signal,
      });

      reply.hijack();
      startSse(reply.raw, reply.getHeaders() as Record<string, string>);
      let answer = '';
      try {
        for await (const delta of stream) {
          answer += delta;
          reply.raw.write(sseEvent('token', { text: delta }));
        }
        const { usage } = await stream.result;
        const cited = sources.map(({ documentId, title, chunk, excerpt, score }) => ({
          documentId,
          title,
          chunk,
          excerpt,
          score,
        }));
        await run((tx) =>
          tx.insert(chatMessages).values({
            userId: userIdOf(req),
            courseId: courseId ?? null,
            question,
            answer,
            sources: cited.map(({ documentId, title, chunk }) => ({ documentId, title, chunk })),
            model: stream.model,
            totalTokens: usage.totalTokens,
          }),
        );
        tutor.activity('asked', 'ai_tutor', {
          question_length: question.length,
          sources: cited.length,
          tokens: usage.totalTokens,
        });
        reply.raw.write(sseEvent('done', { answer, sources: cited, model: stream.model, usage }));
      } catch (error) {
        if (!abort.signal.aborted) {
          const failure = isMtPaasError(error)
            ? error.toJSON()
            : { error: { code: 'PROVIDER_UNAVAILABLE', message: 'The tutor stopped answering; ask again.' } };
          if (!isMtPaasError(error)) req.log.error({ err: error }, 'chat stream failed');
          reply.raw.write(sseEvent('error', failure));
        }
      } finally {
        reply.raw.end();
      }
    },
  );

  app.get(
    '/api/chat/history',
    {
      config: { mtPaas: { auth: 'jwt' } },
      schema: {
        tags: ['chat'],
        summary: 'Your latest questions and answers',
        querystring: z.object({ limit: z.coerce.number().int().min(1).max(100).default(20) }),
        response: {
          200: z.array(
            z.object({
              id: z.string(),
              courseId: z.string().nullable(),
              question: z.string(),
              answer: z.string(),
              sources: z.array(z.object({ documentId: z.string(), title: z.string(), chunk: z.number() })),
              createdAt: z.string(),
            }),
          ),
        },
      },
    },
    async (req) => {
      const userId = userIdOf(req);
      const rows = await req.tenantDb((tx) =>
        tx
          .select()
          .from(chatMessages)
          .where(userId === null ? undefined : eq(chatMessages.userId, userId))
          .orderBy(desc(chatMessages.createdAt))
          .limit(req.query.limit),
      );
      return rows.map((row) => ({
        id: row.id,
        courseId: row.courseId,
        question: row.question,
        answer: row.answer,
        sources: row.sources,
        createdAt: row.createdAt.toISOString(),
      }));
    },
  );
}
