/**
 * The reference tutor's HTTP API as a user of one tenant sees it: log in, courses, documents, the
 * streamed chat (SSE, read with `eventsource-parser`), quiz. Every call carries the tenant's
 * `X-Tenant-ID` and, once logged in, the bearer token.
 */
import { createParser, type EventSourceMessage } from 'eventsource-parser';

/** A raw answer: status, headers and the parsed body (JSON when it is JSON). */
export interface TutorResponse {
  status: number;
  headers: Headers;
  // biome-ignore lint/suspicious/noExplicitAny: tests read answers loosely
  body: any;
}

/** The final (`done`) event of a chat stream. */
export interface ChatAnswer {
  answer: string;
  sources: Array<Record<string, unknown>>;
}

/**
 * A chat stream as received: every event, the text of the `token` events, the `done` event's answer and
 * an `error` event's (or a refused request's JSON) body.
 */
export interface ChatStream {
  status: number;
  headers: Headers;
  events: EventSourceMessage[];
  tokens: string[];
  final: ChatAnswer | undefined;
  // biome-ignore lint/suspicious/noExplicitAny: the error body of a refused stream
  error: any;
}

export type TutorClient = ReturnType<typeof tutorClient>;

/** A client for one tenant of the tutor at `baseUrl`. */
export function tutorClient(baseUrl: string, tenantId: string) {
  let token: string | undefined;
  const headers = (extra: Record<string, string> = {}) => ({
    'x-tenant-id': tenantId,
    ...(token === undefined ? {} : { authorization: `Bearer ${token}` }),
    ...extra,
  });

  async function request(method: string, path: string, body?: unknown): Promise<TutorResponse> {
    const response = await fetch(`${baseUrl}${path}`, {
      method,
      headers: headers(body === undefined ? {} : { 'content-type': 'application/json' }),
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await response.text();
    let parsed: unknown = text;
    try {
      parsed = text === '' ? undefined : JSON.parse(text);
    } catch {
      // not JSON: keep the text
    }
    return { status: response.status, headers: response.headers, body: parsed };
  }

  /**
   * `request`, throwing unless the status is `expected` (default: any 2xx). Like a polite client, it waits
   * out a `RATE_LIMITED` refusal for its `Retry-After` and asks again (the rate-limit step uses `request`).
   */
  async function ok(method: string, path: string, body?: unknown, expected?: number) {
    let response = await request(method, path, body);
    for (
      let attempt = 0;
      attempt < 30 &&
      expected !== 429 &&
      response.status === 429 &&
      (response.body as { error?: { code?: string } } | undefined)?.error?.code === 'RATE_LIMITED';
      attempt++
    ) {
      await new Promise((resolve) => setTimeout(resolve, Number(response.headers.get('retry-after')) * 1000));
      response = await request(method, path, body);
    }
    if (expected === undefined ? response.status >= 300 : response.status !== expected) {
      throw new Error(
        `${method} ${path} (tenant ${tenantId}) answered ${response.status}, expected ${expected ?? '2xx'}: ${JSON.stringify(response.body)}`,
      );
    }
    return response.body;
  }

  return {
    tenantId,
    baseUrl,
    request,
    ok,
    get token() {
      return token;
    },
    set token(value: string | undefined) {
      token = value;
    },
    async login(email: string, password: string) {
      const answer = await ok('POST', '/api/auth/login', { email, password });
      token = answer.token;
      return answer as { token: string; user: Record<string, unknown> };
    },
    createCourse: (course: Record<string, unknown>) => ok('POST', '/api/courses', course, 201),
    listCourses: () => ok('GET', '/api/courses'),
    uploadDocument: (courseId: string, document: Record<string, unknown>) =>
      ok('POST', `/api/courses/${courseId}/documents`, document, 201),
    listDocuments: (courseId: string) => ok('GET', `/api/courses/${courseId}/documents`),

    /** `POST /api/chat`, read to the end of the stream. */
    async chat(question: string, courseId?: string): Promise<ChatStream> {
      const response = await fetch(`${baseUrl}/api/chat`, {
        method: 'POST',
        headers: headers({ 'content-type': 'application/json', accept: 'text/event-stream' }),
        body: JSON.stringify({ question, ...(courseId === undefined ? {} : { courseId }) }),
      });
      const stream: ChatStream = {
        status: response.status,
        headers: response.headers,
        events: [],
        tokens: [],
        final: undefined,
        error: undefined,
      };
      if (!(response.headers.get('content-type') ?? '').startsWith('text/event-stream')) {
        const text = await response.text();
        try {
          stream.error = JSON.parse(text);
        } catch {
          stream.error = text;
        }
        return stream;
      }
      const parser = createParser({
        onEvent(event) {
          stream.events.push(event);
          let data: unknown;
          try {
            data = JSON.parse(event.data);
          } catch {
            data = event.data;
          }
          if (typeof data === 'object' && data !== null && 'answer' in data) {
            stream.final = data as ChatAnswer;
          } else if (typeof data === 'object' && data !== null && 'error' in data) {
            stream.error = data;
          } else if (event.event === 'token' && typeof data === 'object' && data !== null && 'text' in data) {
            stream.tokens.push(String((data as { text: unknown }).text));
          }
        },
      });
      const decoder = new TextDecoder();
      for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
        parser.feed(decoder.decode(chunk, { stream: true }));
      }
      return stream;
    },
    quiz: (courseId: string) => request('POST', `/api/courses/${courseId}/quiz`, {}),
  };
}
