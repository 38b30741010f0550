import { type ErrorCode, MtPaasError } from '@mt-paas/context';
import { createParser, type EventSourceMessage } from 'eventsource-parser';
import { type FetchContext, FetchError, ofetch } from 'ofetch';
import type { z } from 'zod';
import type { CallOptions } from './spec.js';

/** Transport options every HTTP provider accepts. */
export interface HttpProviderOptions {
  /** Extra headers sent with every request. */
  headers?: Record<string, string>;
  /**
   * Retries of one request on 408/409/425/429/5xx/529 and network errors, with exponential
   * backoff, or the server's `Retry-After` / `retry-after-ms` when it sends one. @default 2
   */
  maxRetries?: number;
  /**
   * A `Retry-After` longer than this is not waited for: the call fails at once with
   * `RATE_LIMITED` (carrying `retryAfterSeconds`) so a fallback model can answer. @default 10000
   */
  maxRetryDelayMs?: number;
  /** Base of the exponential backoff between retries. @default 500 */
  retryBaseDelayMs?: number;
  /**
   * Time allowed for one call, retries included: until the full JSON body arrived, or for a
   * stream until its first byte; after that, the longest pause between two chunks. @default 60000
   */
  timeoutMs?: number;
  /** A `fetch` implementation (a proxy agent, a test double). @default globalThis.fetch */
  fetch?: typeof globalThis.fetch;
}

/** Internal: what the shared HTTP layer needs from a provider. */
export interface HttpSettings extends HttpProviderOptions {
  /** Provider name used in errors (`openai`, `anthropic` …). */
  provider: string;
  baseURL: string;
  /** Builds auth and version headers at call time (reads API keys lazily). */
  authHeaders: () => Record<string, string>;
}

const RETRY_STATUS_CODES = [408, 409, 425, 429, 500, 502, 503, 504, 529];

/**
 * The {@link HttpSettings} of a provider factory. The base URL (`options.baseURL`, else the
 * `baseURLEnv` variable, else `defaultBaseURL`) and the auth headers are read at call time, so a
 * default instance sees variables set after import.
 */
export function httpSettings(
  options: HttpProviderOptions & { baseURL?: string | undefined },
  provider: {
    name: string;
    baseURLEnv: string;
    defaultBaseURL: string;
    authHeaders: () => Record<string, string>;
  },
): HttpSettings {
  return {
    ...options,
    provider: provider.name,
    get baseURL() {
      return withoutTrailingSlash(
        options.baseURL ?? readEnv([provider.baseURLEnv]) ?? provider.defaultBaseURL,
      );
    },
    authHeaders: provider.authHeaders,
  };
}

/** Reads `retry-after-ms` (OpenAI) or `Retry-After` (seconds or HTTP date) in milliseconds. */
export function retryAfterMs(headers: Headers | undefined, now = Date.now()): number | undefined {
  if (headers === undefined) return undefined;
  const milliseconds = headers.get('retry-after-ms');
  if (milliseconds !== null && Number.isFinite(Number(milliseconds)))
    return Math.max(0, Number(milliseconds));
  const value = headers.get('retry-after');
  if (value === null || value.trim() === '') return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

/**
 * Reads Google's `google.rpc.RetryInfo` (`error.details[].retryDelay`, e.g. `"42s"` or
 * `"0.5s"`) out of an error body, in milliseconds: Gemini says how long to wait there, not in a
 * `Retry-After` header.
 */
export function retryDelayFromBody(data: unknown): number | undefined {
  const error = typeof data === 'object' && data !== null ? (data as { error?: unknown }).error : undefined;
  const details =
    typeof error === 'object' && error !== null ? (error as { details?: unknown }).details : undefined;
  if (!Array.isArray(details)) return undefined;
  for (const detail of details) {
    const delay =
      typeof detail === 'object' && detail !== null
        ? (detail as { retryDelay?: unknown }).retryDelay
        : undefined;
    const match = typeof delay === 'string' ? /^(\d+(?:\.\d+)?)s$/.exec(delay) : null;
    if (match !== null) return Math.round(Number(match[1]) * 1000);
  }
  return undefined;
}

/** How long the server asked to wait: `Retry-After` / `retry-after-ms`, else a body's RetryInfo. */
function serverWaitMs(headers: Headers | undefined, data: unknown): number | undefined {
  return retryAfterMs(headers) ?? retryDelayFromBody(data);
}

/** Masks anything that looks like an API key in a vendor message (some echo the key back). */
export function redactSecrets(text: string): string {
  return text.replace(/\b(?:sk|pk|rk|key|AIza|co)[-_A-Za-z0-9*]{12,}/g, '[redacted]');
}

/** Pulls a human message out of the common vendor error bodies. */
function providerMessage(data: unknown): { message?: string; type?: string } {
  const found = rawProviderMessage(data);
  return found.message === undefined ? found : { ...found, message: redactSecrets(found.message) };
}

function rawProviderMessage(data: unknown): { message?: string; type?: string } {
  if (typeof data === 'string') return data.trim() === '' ? {} : { message: data.slice(0, 500) };
  if (typeof data !== 'object' || data === null) return {};
  const record = data as Record<string, unknown>;
  const error = record.error;
  if (typeof error === 'object' && error !== null) {
    const inner = error as Record<string, unknown>;
    const type = [inner.type, inner.status, inner.code].find((value) => typeof value === 'string') as
      | string
      | undefined;
    return {
      ...(typeof inner.message === 'string' ? { message: inner.message } : {}),
      ...(type === undefined ? {} : { type }),
    };
  }
  if (typeof error === 'string') {
    return { message: error, ...(typeof record.error_type === 'string' ? { type: record.error_type } : {}) };
  }
  if (typeof record.message === 'string') return { message: record.message };
  return {};
}

/** Maps an HTTP status (and the vendor's error body) to an `MtPaasError`. */
export function httpError(
  provider: string,
  model: string,
  status: number,
  data: unknown,
  headers?: Headers,
): MtPaasError {
  const { message, type } = providerMessage(data);
  const said = message === undefined ? '' : `: ${message}`;
  const waitMs = serverWaitMs(headers, data);
  const retryAfterSeconds = waitMs === undefined ? undefined : Math.ceil(waitMs / 1000);
  const details = {
    provider,
    model,
    status,
    ...(type === undefined ? {} : { providerErrorType: type }),
    ...(message === undefined ? {} : { providerMessage: message }),
  };
  let code: ErrorCode;
  let next: string;
  if (status === 429) {
    code = 'RATE_LIMITED';
    next =
      retryAfterSeconds === undefined
        ? 'retry later or configure a fallback model'
        : `retry after ${retryAfterSeconds}s or configure a fallback model`;
  } else if (status === 408 || status === 504) {
    code = 'TIMEOUT';
    next = 'retry, or raise timeoutMs';
  } else if (status >= 500) {
    code = 'PROVIDER_UNAVAILABLE';
    next = 'retry later or configure a fallback model';
  } else if (status === 401 || status === 403) {
    code = 'PROVIDER_ERROR';
    next = 'check the API key (or the tenant’s own key) and its permissions';
  } else if (status === 404) {
    code = 'PROVIDER_ERROR';
    next = 'check the model name and the base URL';
  } else {
    code = 'PROVIDER_ERROR';
    next = 'check the request options';
  }
  return new MtPaasError(
    code,
    `${provider} rejected the call to "${model}" with HTTP ${status}${said}; ${next}.`,
    {
      details,
      ...(retryAfterSeconds === undefined ? {} : { retryAfterSeconds }),
    },
  );
}

/** Maps an in-stream error event (Anthropic `error`, OpenAI `{ error }` chunk) to an `MtPaasError`. */
export function streamEventError(provider: string, model: string, data: unknown): MtPaasError {
  const { message, type } = providerMessage(data);
  const retryable = /overload|rate_limit|unavailable|internal|server|api_error|exhausted|timeout/i.test(
    type ?? '',
  );
  const code: ErrorCode = /rate_limit|exhausted/i.test(type ?? '')
    ? 'RATE_LIMITED'
    : retryable
      ? 'PROVIDER_UNAVAILABLE'
      : 'PROVIDER_ERROR';
  return new MtPaasError(
    code,
    `${provider} stopped the stream of "${model}" with an error${type === undefined ? '' : ` (${type})`}: ${message ?? 'no message'}; retry the request${retryable ? ' or configure a fallback model' : ''}.`,
    { details: { provider, model, ...(type === undefined ? {} : { providerErrorType: type }) } },
  );
}

/** An `AbortError` for a caller's abort without a reason. */
function abortError(signal: AbortSignal): unknown {
  return signal.reason ?? new DOMException('The operation was aborted.', 'AbortError');
}

interface CallScope {
  signal: AbortSignal;
  /** Arms (or re-arms) the timeout. */
  arm(ms: number, what: string): void;
  disarm(): void;
  /** Aborts the request (a consumer that stopped reading). */
  cancel(reason?: unknown): void;
  /** The error to throw when the scope was aborted: the caller's reason or `TIMEOUT`. */
  abortReason(): unknown;
  dispose(): void;
}

function callScope(settings: HttpSettings, model: string, callerSignal: AbortSignal | undefined): CallScope {
  const controller = new AbortController();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const onCallerAbort = () => controller.abort(abortError(callerSignal!));
  if (callerSignal?.aborted) onCallerAbort();
  else callerSignal?.addEventListener('abort', onCallerAbort, { once: true });
  const scope: CallScope = {
    signal: controller.signal,
    arm(ms, what) {
      if (timer !== undefined) clearTimeout(timer);
      timer = setTimeout(() => {
        controller.abort(
          new MtPaasError(
            'TIMEOUT',
            `${settings.provider} did not ${what} for "${model}" within ${ms}ms; retry, raise timeoutMs, or configure a fallback model.`,
            { details: { provider: settings.provider, model, timeoutMs: ms } },
          ),
        );
      }, ms);
    },
    disarm() {
      if (timer !== undefined) clearTimeout(timer);
      timer = undefined;
    },
    cancel(reason) {
      controller.abort(reason ?? new DOMException('The stream was closed by its consumer.', 'AbortError'));
    },
    abortReason() {
      return controller.signal.reason;
    },
    dispose() {
      scope.disarm();
      callerSignal?.removeEventListener('abort', onCallerAbort);
    },
  };
  return scope;
}

async function readErrorBody(data: unknown): Promise<unknown> {
  if (data instanceof ReadableStream) {
    try {
      const text = await new Response(data).text();
      try {
        return JSON.parse(text);
      } catch {
        return text;
      }
    } catch {
      return undefined;
    }
  }
  return data;
}

/** Turns whatever ofetch threw into an `MtPaasError` (or the caller's abort reason). */
function toProviderError(settings: HttpSettings, model: string, scope: CallScope, error: unknown): unknown {
  if (scope.signal.aborted) return scope.abortReason();
  if (MtPaasError.isInstance(error)) return error;
  if (error instanceof FetchError && error.response !== undefined) {
    return httpError(settings.provider, model, error.response.status, error.data, error.response.headers);
  }
  return new MtPaasError(
    'PROVIDER_UNAVAILABLE',
    `Could not reach ${settings.provider} at ${settings.baseURL} for "${model}"; check the base URL and the network, or configure a fallback model.`,
    { details: { provider: settings.provider, model }, cause: error },
  );
}

async function send(
  settings: HttpSettings,
  path: string,
  body: unknown,
  call: CallOptions,
  scope: CallScope,
  responseType: 'json' | 'stream',
): Promise<Response> {
  const maxRetries = settings.maxRetries ?? 2;
  const maxRetryDelayMs = settings.maxRetryDelayMs ?? 10_000;
  const baseDelayMs = settings.retryBaseDelayMs ?? 500;
  const $fetch = settings.fetch === undefined ? ofetch : ofetch.create({}, { fetch: settings.fetch });
  return $fetch.raw(path, {
    baseURL: settings.baseURL,
    method: 'POST',
    body: body as Record<string, unknown>,
    headers: {
      ...settings.headers,
      ...settings.authHeaders(),
      ...call.headers,
      accept: responseType === 'stream' ? 'text/event-stream' : 'application/json',
    },
    responseType,
    signal: scope.signal,
    retry: maxRetries,
    retryStatusCodes: RETRY_STATUS_CODES,
    retryDelay(context: FetchContext) {
      const attempt = maxRetries - (typeof context.options.retry === 'number' ? context.options.retry : 0);
      const told = serverWaitMs(context.response?.headers, context.response?._data);
      if (told !== undefined) return told;
      return baseDelayMs * 2 ** attempt * (0.5 + Math.random() / 2);
    },
    async onRequestError(context) {
      // A caller's abort or our timeout is final: ofetch would otherwise retry non-AbortError reasons.
      if (scope.signal.aborted) context.options.retry = false;
    },
    async onResponseError(context) {
      context.response._data = await readErrorBody(context.response._data);
      const told = serverWaitMs(context.response.headers, context.response._data);
      // Do not sleep through a long Retry-After: fail now so a fallback model can answer.
      if (told !== undefined && told > maxRetryDelayMs) context.options.retry = false;
    },
  });
}

/** POSTs JSON and validates the JSON answer with `schema`. */
export async function postJson<Schema extends z.ZodType>(
  settings: HttpSettings,
  model: string,
  path: string,
  body: unknown,
  schema: Schema,
  call: CallOptions = {},
): Promise<z.infer<Schema>> {
  const scope = callScope(settings, model, call.abortSignal);
  scope.arm(settings.timeoutMs ?? 60_000, 'answer');
  let data: unknown;
  try {
    const response = await send(settings, path, body, call, scope, 'json');
    data = (response as Response & { _data?: unknown })._data;
  } catch (error) {
    throw toProviderError(settings, model, scope, error);
  } finally {
    scope.dispose();
  }
  const parsed = schema.safeParse(data);
  if (!parsed.success) {
    throw new MtPaasError(
      'PROVIDER_ERROR',
      `${settings.provider} answered "${model}" with an unexpected body; check that the base URL points at a ${settings.provider}-compatible API.`,
      { details: { provider: settings.provider, model, issues: parsed.error.issues.slice(0, 5) } },
    );
  }
  return parsed.data;
}

/** A server-sent event stream of one call. */
export interface EventStream extends AsyncIterable<EventSourceMessage> {
  /** Stops the HTTP request. */
  cancel(reason?: unknown): void;
}

/**
 * POSTs JSON and opens the answer as server-sent events (parsed by eventsource-parser).
 * Resolves once the response headers arrived with a 2xx status; HTTP errors reject here.
 * Iterating throws `PROVIDER_UNAVAILABLE` when the connection breaks, `TIMEOUT` when the
 * server stalls, and the caller's abort reason when the caller aborts.
 */
export async function postEventStream(
  settings: HttpSettings,
  model: string,
  path: string,
  body: unknown,
  call: CallOptions = {},
): Promise<EventStream> {
  const timeoutMs = settings.timeoutMs ?? 60_000;
  const scope = callScope(settings, model, call.abortSignal);
  scope.arm(timeoutMs, 'start answering');
  let response: Response;
  try {
    response = await send(settings, path, body, call, scope, 'stream');
  } catch (error) {
    scope.dispose();
    throw toProviderError(settings, model, scope, error);
  }
  scope.disarm();
  const stream = (response as Response & { _data?: unknown })._data;
  if (!(stream instanceof ReadableStream)) {
    scope.dispose();
    throw new MtPaasError(
      'PROVIDER_ERROR',
      `${settings.provider} answered the stream request for "${model}" without a body; check the base URL.`,
      { details: { provider: settings.provider, model } },
    );
  }
  const reader = (stream as ReadableStream<Uint8Array>).getReader();
  const onAbort = () => {
    reader.cancel(scope.abortReason()).catch(() => {});
  };
  scope.signal.addEventListener('abort', onAbort, { once: true });

  async function* events(): AsyncGenerator<EventSourceMessage> {
    const pending: EventSourceMessage[] = [];
    const parser = createParser({ onEvent: (event) => pending.push(event) });
    const decoder = new TextDecoder();
    try {
      while (true) {
        scope.arm(timeoutMs, 'send the next part of the stream');
        let chunk: Awaited<ReturnType<typeof reader.read>>;
        try {
          chunk = await reader.read();
        } catch (error) {
          if (scope.signal.aborted) throw scope.abortReason();
          throw new MtPaasError(
            'PROVIDER_UNAVAILABLE',
            `The ${settings.provider} stream of "${model}" broke off before it ended; retry the request or configure a fallback model.`,
            { details: { provider: settings.provider, model }, cause: error },
          );
        }
        if (scope.signal.aborted) throw scope.abortReason();
        if (chunk.done) {
          parser.feed(decoder.decode());
          parser.reset({ consume: true });
          yield* pending.splice(0);
          return;
        }
        parser.feed(decoder.decode(chunk.value, { stream: true }));
        yield* pending.splice(0);
      }
    } finally {
      scope.signal.removeEventListener('abort', onAbort);
      if (!scope.signal.aborted) reader.cancel().catch(() => {});
      scope.dispose();
    }
  }

  const iterator = events();
  return {
    [Symbol.asyncIterator]: () => iterator,
    cancel(reason) {
      scope.cancel(reason);
      scope.dispose();
    },
  };
}

/**
 * Parses the JSON data of one server-sent event, and validates it when a schema is given;
 * a malformed event is a `PROVIDER_ERROR`, never a bare `SyntaxError`.
 */
export function parseEventData<Schema extends z.ZodType = z.ZodUnknown>(
  provider: string,
  model: string,
  data: string,
  schema?: Schema,
): z.infer<Schema> {
  let json: unknown;
  try {
    json = JSON.parse(data);
  } catch (error) {
    throw new MtPaasError(
      'PROVIDER_ERROR',
      `The ${provider} stream of "${model}" sent an event that is not JSON; check that the base URL points at a ${provider}-compatible API.`,
      { details: { provider, model }, cause: error },
    );
  }
  if (schema === undefined) return json as z.infer<Schema>;
  const parsed = schema.safeParse(json);
  if (!parsed.success) {
    throw new MtPaasError(
      'PROVIDER_ERROR',
      `The ${provider} stream of "${model}" sent an event of an unexpected shape; check that the base URL points at a ${provider}-compatible API.`,
      { details: { provider, model, issues: parsed.error.issues.slice(0, 5) } },
    );
  }
  return parsed.data;
}

/**
 * Parses one event of a streamed answer: an `{ error }` object (OpenAI-compatible servers and
 * Gemini send one mid-stream) becomes the matching `MtPaasError`; anything else is validated.
 */
export function parseStreamChunk<Schema extends z.ZodType>(
  provider: string,
  model: string,
  data: string,
  schema: Schema,
): z.infer<Schema> {
  const json: unknown = parseEventData(provider, model, data);
  if (typeof json === 'object' && json !== null && 'error' in json) {
    throw streamEventError(provider, model, json);
  }
  return parseEventData(provider, model, data, schema);
}

/** `PROVIDER_UNAVAILABLE` for a stream that ended without its terminal event (`missing`). */
export function incompleteStreamError(provider: string, model: string, missing: string): MtPaasError {
  return new MtPaasError(
    'PROVIDER_UNAVAILABLE',
    `The ${provider} stream of "${model}" ended before the answer was complete (${missing}); retry the request or configure a fallback model.`,
    { details: { provider, model } },
  );
}

/** Throws `CONFIG_INVALID` when a required API key is missing. */
export function requireApiKey(
  provider: string,
  apiKey: string | undefined,
  envNames: readonly string[],
): string {
  if (apiKey === undefined || apiKey === '') {
    throw new MtPaasError(
      'CONFIG_INVALID',
      `No ${provider} API key: set ${envNames.join(' or ')}, pass apiKey to the provider factory, or store a tenant key.`,
      { details: { provider } },
    );
  }
  return apiKey;
}

/** Reads the first non-empty environment variable of `names`. */
export function readEnv(names: readonly string[]): string | undefined {
  for (const name of names) {
    const value = process.env[name];
    if (value !== undefined && value !== '') return value;
  }
  return undefined;
}

/** Joins a base URL and a path without doubling slashes. */
export function withoutTrailingSlash(url: string): string {
  return url.replace(/\/+$/, '');
}
