import { MtPaasError, runWithTenant } from '@mt-paas/context';
import type { Context, ErrorHandler, MiddlewareHandler, NotFoundHandler } from 'hono';
import {
  type AdapterPipelineOptions,
  errorResponseFor,
  featureGate,
  type GateCheck,
  metricsResponse,
  notFoundResponse,
  pipelineOf,
  planGate,
  roleGate,
  runGate,
  startInBackground,
} from './adapter-kit.js';
import { DEFAULT_PLAN_ORDER } from './entitlements.js';
import type { ErrorResponse, PipelineRequest, RoutePolicy } from './http-types.js';
import type { AdmitOutcome, TenantPipeline } from './pipeline.js';
import type { TenantAdmission } from './pipeline-options.js';

/** Hono env of apps using the middleware: `c.get('tenant')`, and `c.get('mtPaas')` (the pipeline). */
export interface MtPaasHonoEnv {
  Variables: { tenant: TenantAdmission; mtPaas: TenantPipeline };
}

/** Options of {@link mtPaasHono}: a pipeline, or the options to build one. */
export type HonoTenantOptions = AdapterPipelineOptions;

/** The Hono middleware, with its pipeline attached. */
export type HonoTenantMiddleware = MiddlewareHandler<MtPaasHonoEnv> & { pipeline: TenantPipeline };

type NodeIncoming = {
  socket?: { remoteAddress?: string };
  headers?: Record<string, string | string[] | undefined>;
  rawHeaders?: string[];
};

function toPipelineRequest(c: Context): PipelineRequest {
  const incoming = (c.env as { incoming?: NodeIncoming } | undefined)?.incoming;
  // On @hono/node-server the Node request's own header object is there: the same one the Fastify and
  // Express adapters read (so the same headers win), without building a `Headers` and copying it.
  // Elsewhere (Bun, Deno, `app.request()`), the fetch `Headers` copied into a record.
  let headers = incoming?.headers;
  if (headers === undefined) {
    const copied: Record<string, string> = {};
    c.req.raw.headers.forEach((value, name) => {
      copied[name] = value;
    });
    headers = copied;
  }
  // `c.req.url` is already a serialised WHATWG URL: its path and query are the text after the origin
  // (what `new URL(c.req.url)` would give again, without parsing it a second time).
  const hash = c.req.url.indexOf('#');
  const full = hash === -1 ? c.req.url : c.req.url.slice(0, hash);
  const pathStart = full.indexOf('/', full.indexOf('//') + 2);
  const url = pathStart === -1 ? '/' : full.slice(pathStart);
  const queryIndex = url.indexOf('?');
  return {
    method: c.req.method,
    path: queryIndex === -1 ? url : url.slice(0, queryIndex),
    url,
    // Hono's router runs on `c.req.path` (percent-decoded, strict / non-strict as the app is built).
    routePath: c.req.path,
    headers,
    ip: incoming?.socket?.remoteAddress,
    rawHeaders: incoming?.rawHeaders,
  };
}

function toResponse(result: ErrorResponse): Response {
  return new Response(JSON.stringify(result.body), { status: result.status, headers: result.headers });
}

function routeTemplate(c: Context): string | undefined {
  const routes = c.req.matchedRoutes;
  for (let index = routes.length - 1; index >= 0; index--) {
    const route = routes[index];
    if (route !== undefined && route.method !== 'ALL') return route.path;
  }
  return undefined;
}

const JSON_TYPE = /json/i;

function hasNoBody(c: Context): boolean {
  return c.req.method === 'GET' || c.req.method === 'HEAD';
}
const MULTIPART_TYPE = /^\s*multipart\//i;

/**
 * The body as the app will read it, for the body guard: `undefined` for GET / HEAD, no body, and multipart
 * (Hono's form parser needs the stream with its boundary). Read as text whatever the content type says
 * (`c.req.json()` parses any body, and reads it from Hono's body cache after this); JSON types parsed.
 */
async function bodyOf(c: Context): Promise<unknown> {
  if (hasNoBody(c) || c.req.raw.body === null) return undefined;
  const type = c.req.header('content-type') ?? '';
  if (MULTIPART_TYPE.test(type)) return undefined;
  const text = await c.req.text();
  if (!JSON_TYPE.test(type) || text.trim() === '') return text;
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw new MtPaasError('INVALID_REQUEST', 'The JSON body could not be parsed; send valid JSON.', {
      cause: error,
    });
  }
}

/**
 * The mt-paas Hono middleware: resolves and admits the tenant, guards a JSON body (parsed once and
 * cached by Hono, so handlers can still call `c.req.json()`), sets `c.get('tenant')`, and runs the
 * rest inside `runWithTenant`. Policy: the `policy` argument, else the pipeline's `routes`.
 *
 * @example
 * app.use('*', mtPaasHono({ directory, strategies: [{ type: 'header' }] }));
 */
export function mtPaasHono(options: HonoTenantOptions, policy?: RoutePolicy): HonoTenantMiddleware {
  const { pipeline } = pipelineOf(options);
  const started = startInBackground(pipeline);
  let ready = false;
  started.then(
    () => {
      ready = true;
    },
    () => {},
  );
  const middleware: MiddlewareHandler<MtPaasHonoEnv> = async (c, next) => {
    c.set('mtPaas', pipeline);
    let outcome: AdmitOutcome;
    try {
      if (!ready) await started;
      const admitting = pipeline.admitOrRefuse(toPipelineRequest(c), policy);
      outcome = admitting instanceof Promise ? await admitting : admitting;
    } catch (error) {
      outcome = { admitted: false, response: errorResponseFor(pipeline, error) };
    }
    if (!outcome.admitted) {
      pipeline.finish(undefined, { status: outcome.response.status, route: routeTemplate(c) });
      return toResponse(outcome.response);
    }
    const { admission } = outcome;
    try {
      // GET and HEAD carry no body the app reads: no read, no await.
      const body = hasNoBody(c) ? undefined : await bodyOf(c);
      if (body !== undefined) await pipeline.checkBody(admission, body);
    } catch (error) {
      const response = toResponse(errorResponseFor(pipeline, error, admission));
      pipeline.finish(admission, { status: response.status, route: routeTemplate(c) });
      return response;
    }
    c.set('tenant', admission);
    for (const name in admission.headers) c.header(name, admission.headers[name]);
    if (admission.context === undefined) await next();
    else await runWithTenant(admission.context, next);
    for (const name in admission.headers) {
      if (c.res.headers.has(name)) continue;
      try {
        c.res.headers.set(name, admission.headers[name] as string);
      } catch {
        // A handler may return a Response with immutable headers (a proxied fetch); leave it as it is.
      }
    }
    pipeline.finish(admission, { status: c.res.status, route: routeTemplate(c) });
  };
  return Object.assign(middleware, { pipeline });
}

/** An `app.onError` handler answering every error with `{ error: { code, message } }`. */
export function mtPaasErrorHandler(pipeline: TenantPipeline): ErrorHandler<MtPaasHonoEnv> {
  return (error, c) => toResponse(errorResponseFor(pipeline, error, c.get('tenant')));
}

/** An `app.notFound` handler answering `404 { error: { code: 'ROUTE_NOT_FOUND', message } }`. */
export function mtPaasNotFound(pipeline: TenantPipeline): NotFoundHandler<MtPaasHonoEnv> {
  return (c) => toResponse(notFoundResponse(pipeline, c.req.method, c.get('tenant')));
}

function gate(check: GateCheck): MiddlewareHandler<MtPaasHonoEnv> {
  return async (c, next) => {
    const refusal = runGate(
      check,
      c.get('mtPaas'),
      c.get('tenant'),
      "mount mtPaasHono() before the route (app.use('*', …))",
    );
    // Answered here, so the refusal has the JSON shape even without mtPaasErrorHandler.
    if (refusal !== undefined) return toResponse(refusal);
    await next();
  };
}

/** Refuses (403 `FEATURE_NOT_IN_PLAN`) tenants without the feature. */
export function requireFeature(feature: string): MiddlewareHandler<MtPaasHonoEnv> {
  return gate(featureGate(feature));
}

/** Refuses tenants below the plan. */
export function requirePlan(
  plan: string,
  order: readonly string[] = DEFAULT_PLAN_ORDER,
): MiddlewareHandler<MtPaasHonoEnv> {
  return gate(planGate(plan, order));
}

/** Refuses users without one of the roles (401 / 403). */
export function requireRole(...roles: string[]): MiddlewareHandler<MtPaasHonoEnv> {
  return gate(roleGate(roles));
}

/** A `/metrics` handler for the pipeline's prom-client registry (404 `{ error }` when metrics are off). */
export function metricsHandler(pipeline: TenantPipeline): (c: Context) => Promise<Response> {
  return async () => {
    const result = await metricsResponse(pipeline);
    return new Response(result.body, { status: result.status, headers: result.headers });
  };
}
