import { MtPaasError } from '@mt-paas/context';
import { FetchError, ofetch } from 'ofetch';
import type { z } from 'zod';

/** Options shared by the HTTP stores. */
export interface HttpClientOptions {
  /** Provider name in error messages. */
  provider: string;
  /** Base URL of the server. */
  url: string;
  /** Extra headers on every request (auth). */
  headers: Record<string, string>;
  /** Per-request timeout in milliseconds. @default 30000 */
  timeoutMs?: number | undefined;
  /** Retries of idempotent failures (network errors, timeouts, 429, 5xx). @default 2 */
  retries?: number | undefined;
  /** Reads the server's error message out of an error body. */
  errorMessage: (body: unknown) => string | undefined;
}

/**
 * Checks the naming options the Qdrant and Chroma stores share: `layout` (one of `layouts`, the
 * first is the default) and `collectionPrefix` (letters, digits, `_`, `-`; default `mt_paas_`).
 */
export function remoteStoreNaming<Layout extends string>(
  provider: string,
  options: { layout?: Layout | undefined; collectionPrefix?: string | undefined },
  layouts: readonly [Layout, ...Layout[]],
): { layout: Layout; prefix: string } {
  const layout = options.layout ?? layouts[0];
  if (!layouts.includes(layout)) {
    throw new MtPaasError(
      'CONFIG_INVALID',
      `${provider} layout must be ${layouts.map((name) => `"${name}"`).join(' or ')}, not "${layout}".`,
    );
  }
  const prefix = options.collectionPrefix ?? 'mt_paas_';
  if (!/^[A-Za-z0-9_-]*$/.test(prefix)) {
    throw new MtPaasError(
      'CONFIG_INVALID',
      `${provider} collectionPrefix may hold only letters, digits, "_" and "-"; got "${prefix}".`,
    );
  }
  return { layout, prefix };
}

/**
 * Runs `setup` once per key (creating a collection, a tenant …) and shares the promise; a failed
 * setup is forgotten so the next call tries again.
 */
export function oncePerKey<Key, Value>(
  setup: (key: Key) => Promise<Value>,
): { get(key: Key): Promise<Value>; forget(key: Key): void } {
  const started = new Map<Key, Promise<Value>>();
  return {
    get(key) {
      let promise = started.get(key);
      if (promise === undefined) {
        promise = setup(key);
        promise.catch(() => started.delete(key));
        started.set(key, promise);
      }
      return promise;
    },
    forget(key) {
      started.delete(key);
    },
  };
}

/** One request. */
export interface HttpRequest<T> {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  path: string;
  query?: Record<string, string>;
  body?: unknown;
  /** zod schema of the success body. */
  schema: z.ZodType<T>;
  /** Answer `undefined` instead of throwing on 404. */
  allowNotFound?: boolean;
  /** Answer `undefined` instead of throwing on 409 (already exists). */
  allowConflict?: boolean;
}

/** A small JSON client over ofetch that maps failures to `MtPaasError`. */
export interface HttpClient {
  request<T>(request: HttpRequest<T>): Promise<T | undefined>;
}

/** Creates the JSON client the Qdrant and Chroma stores use. */
export function createHttpClient(options: HttpClientOptions): HttpClient {
  const base = options.url.replace(/\/+$/, '');
  const timeoutMs = options.timeoutMs ?? 30_000;
  const fetcher = ofetch.create({
    baseURL: base,
    headers: options.headers,
    // Not ofetch's `timeout`: its retry reuses the first attempt's signal, whose timer is already
    // cleared, so a retried request (after a 503) could wait forever. A fresh signal per attempt
    // also covers reading the body.
    onRequest(context) {
      context.options.signal = AbortSignal.timeout(timeoutMs);
    },
    retry: options.retries ?? 2,
    retryDelay: 200,
    retryStatusCodes: [408, 429, 500, 502, 503, 504],
  });
  return {
    async request<T>(request: HttpRequest<T>): Promise<T | undefined> {
      let data: unknown;
      try {
        data = await fetcher(request.path, {
          method: request.method,
          ...(request.query === undefined ? {} : { query: request.query }),
          ...(request.body === undefined ? {} : { body: request.body as Record<string, unknown> }),
          responseType: 'json',
          // Only idempotent reads and our idempotent writes are retried; all of ours are.
        });
      } catch (error) {
        if (!(error instanceof FetchError)) throw error;
        const status = error.statusCode ?? error.response?.status;
        if (status === 404 && request.allowNotFound) return undefined;
        if (status === 409 && request.allowConflict) return undefined;
        throw toProviderError(options, request, error, status);
      }
      const parsed = request.schema.safeParse(data);
      if (!parsed.success) {
        throw new MtPaasError(
          'PROVIDER_ERROR',
          `${options.provider} answered ${request.method} ${request.path} with an unexpected body; check that ${base} is a ${options.provider} server of a supported version.`,
          {
            details: {
              provider: options.provider,
              path: request.path,
              issues: parsed.error.issues.slice(0, 5),
            },
          },
        );
      }
      return parsed.data;
    },
  };
}

function toProviderError(
  options: HttpClientOptions,
  request: HttpRequest<unknown>,
  error: FetchError,
  status: number | undefined,
): MtPaasError {
  const where = `${options.provider} (${request.method} ${request.path})`;
  if (status === undefined) {
    const timedOut = error.name === 'TimeoutError' || /timeout|aborted/i.test(error.message);
    return new MtPaasError(
      timedOut ? 'TIMEOUT' : 'PROVIDER_UNAVAILABLE',
      timedOut
        ? `${where} did not answer within ${options.timeoutMs ?? 30_000} ms; check the server's load or raise timeoutMs.`
        : `${options.provider} at ${options.url} is unreachable (${error.cause instanceof Error ? error.cause.message : error.message}); check the url and that the server is running.`,
      { details: { provider: options.provider }, cause: error },
    );
  }
  const serverMessage = options.errorMessage(error.data);
  const details = { provider: options.provider, status, path: request.path, serverMessage };
  if (status === 401 || status === 403) {
    return new MtPaasError(
      'PROVIDER_ERROR',
      `${where} refused the credentials (${status}); check the apiKey.`,
      {
        details,
        cause: error,
      },
    );
  }
  if (status === 429 || status >= 500) {
    const retryAfter = Number(error.response?.headers.get('retry-after'));
    return new MtPaasError(
      'PROVIDER_UNAVAILABLE',
      `${where} failed with ${status}${serverMessage ? `: ${serverMessage}` : ''}; retry later.`,
      {
        details,
        cause: error,
        ...(Number.isFinite(retryAfter) && retryAfter > 0 ? { retryAfterSeconds: retryAfter } : {}),
      },
    );
  }
  return new MtPaasError(
    'PROVIDER_ERROR',
    `${where} rejected the request with ${status}${serverMessage ? `: ${serverMessage}` : ''}; check that the server version is supported and that the store options (dimensions, model, collectionPrefix) match the existing collections.`,
    { details, cause: error },
  );
}
