/**
 * `POST /api/chat` — retrieval over the tenant's documents + the tenant's LLM, streamed as server-sent
 * events: `token` events (`{ text }`), then one `done` event (`{ answer, sources, model, usage }`), or
 * an `error` event (`{ error: { code, message } }`) if the model fails mid-stream. The framework's
 * providers meter the tokens on the tenant's `llm_tokens` quota (a broken stream too) and refuse a call
 * once it is used up; the question is logged as an activity. The SSE framing is `@fastify/sse`'s.
 */
import { isMtPaasError, MtPaasError } from '@mt-paas/context';
import type { LanguageModelStream } from '@mt-paas/providers-llm';
import { desc, eq } from 'drizzle-orm';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { contextPrompt, retrieve, type Source } from '../rag.js';
import { chatMessages, courses } from '../schema.js';
import type { Tutor, Tx } from '../tutor.js';
import { ErrorBody, text, userIdOf } from './common.js';

const INSTRUCTION = 'Answer the question from the numbered course excerpts above and cite them as [n].';

/** What the route's preHandler prepared for its handler: the started LLM stream and the retrieved sources. */
interface PreparedChat {
  stream: LanguageModelStream;
  sources: Source[];
  abort: AbortController;
}

const prepared = new WeakMap<FastifyRequest, PreparedChat>();

export async function chatRoutes(root: FastifyInstance, tutor: Tutor) {
  const app = root.withTypeProvider<ZodTypeProvider>();

  app.post(
    '/api/chat',
    {
      // @fastify/sse: `reply.sse` in the handler (framing, backpressure, heartbeat comments, close)
      sse: true,
      config: { mtPaas: { auth: 'jwt', features: ['ai_chat'] } },
      schema: {
        tags: ['chat'],
        summary:
          'Ask the tutor; answered as text/event-stream (token events, then a done event with answer and sources)',
        body: z.object({ question: text().trim().min(1).max(4000), courseId: z.uuid().optional() }),
        response: {
          200: z
            .string()
            .describe(
              'text/event-stream: `event: token` {text} …, then `event: done` {answer, sources:[{documentId,title,chunk,excerpt,score}], model, usage}',
            ),
          400: ErrorBody,
          403: ErrorBody,
          404: ErrorBody,
          429: ErrorBody,
        },
      },
      // Everything that can refuse the question (unknown course, quota, the provider refusing the call)
      // runs here, before @fastify/sse's handler: a refusal is answered as JSON by the error handler.
      preHandler: async (req, reply) => {
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
        // A client that goes away (the response closes before it finished) cancels the LLM call. The
        // response's `close`, not the request's: the request's fires once its body has been read.
        const abort = new AbortController();
        reply.raw.on('close', () => {
          if (!reply.raw.writableFinished) abort.abort(new Error('the client closed the connection'));
        });
        const stream = await ai.languageModel.stream({
          system: `${contextPrompt(sources)}\n\n${INSTRUCTION}`,
          prompt: question,
          abortSignal: abort.signal,
        });
        prepared.set(req, { stream, sources, abort });
        // @fastify/sse 0.4.0 streams only when `Accept` names text/event-stream, else it calls the handler
        // without `reply.sse`; this route has always answered SSE, whatever the client accepts.
        if (!(req.headers.accept ?? '').includes('text/event-stream'))
          req.headers.accept = 'text/event-stream';
      },
    },
    async (req, reply) => {
      const chat = prepared.get(req);
      if (chat === undefined) throw new Error('POST /api/chat: the preHandler did not prepare the answer');
      prepared.delete(req);
      const { stream, sources, abort } = chat;
      const { question, courseId } = req.body;
      const sse = reply.sse;
      // the pipeline's headers (rate limit, request id) are already on the reply: @fastify/sse sends them
      reply.header('content-type', 'text/event-stream; charset=utf-8');
      reply.header('cache-control', 'no-cache, no-transform');
      let answer = '';
      try {
        for await (const delta of stream) {
          if (abort.signal.aborted || !sse.isConnected) break;
          answer += delta;
          await sse.send({ event: 'token', data: { text: delta } });
        }
        if (abort.signal.aborted || !sse.isConnected) return;
        const { usage } = await stream.result;
        const cited = sources.map(({ documentId, title, chunk, excerpt, score }) => ({
          documentId,
          title,
          chunk,
          excerpt,
          score,
        }));
        await req.tenantDb((tx) =>
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
        if (sse.isConnected) {
          await sse.send({ event: 'done', data: { answer, sources: cited, model: stream.model, usage } });
        }
      } catch (error) {
        if (abort.signal.aborted || !sse.isConnected) return;
        const failure = isMtPaasError(error)
          ? error.toJSON()
          : { error: { code: 'PROVIDER_UNAVAILABLE', message: 'The tutor stopped answering; ask again.' } };
        if (!isMtPaasError(error)) req.log.error({ err: error }, 'chat stream failed');
        await sse.send({ event: 'error', data: failure });
      }
      // returning closes the stream (@fastify/sse ends the response unless keepAlive() was called)
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
