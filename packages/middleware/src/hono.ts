import { isMtPaasError, MtPaasError, runWithTenant } from '@mt-paas/context';
import type { Context, ErrorHandler, MiddlewareHandler, NotFoundHandler } from 'hono';
import { assertFeature, assertPlan, DEFAULT_PLAN_ORDER } from './entitlements.js';
import { admissionForGate, assertRoles, normalizeFrameworkError, routeNotFoundError } from './guards.js';
import type { PipelineRequest, RoutePolicy } from './http-types.js';
import { metricsDisabledError } from './metrics.js';
import {
  createTenantPipeline,
  type PipelineAdmission,
  type TenantPipeline,
  type TenantPipelineOptions,
} from './pipeline.js';

/** Hono env of apps using the middleware: `c.get('tenant')`. */
export interface MtPaasHonoEnv {
  Variables: { tenant: PipelineAdmission };
}

/** Options of {@link mtPaasHono}: a pipeline, or the options to build one. */
export type HonoTenantOptions = { pipeline: TenantPipeline } | TenantPipelineOptions;

/** The Hono middleware, with its pipeline attached. */
export type HonoTenantMiddleware = MiddlewareHandler<MtPaasHonoEnv> & { pipeline: TenantPipeline };

function toPipelineRequest(c: Context): PipelineRequest {
  const headers: Record<string, string> = {};
  c.req.raw.headers.forEach((value, name) => {
    headers[name] = value;
  });
  const url = new URL(c.req.url);
  const incoming = (
    c.env as { incoming?: { socket?: { remoteAddress?: string }; rawHeaders?: string[] } } | undefined
  )?.incoming;
  return {
    method: c.req.method,
    path: url.pathname,
    url: url.pathname + url.search,
    // Hono's router runs on `c.req.path` (percent-decoded, strict / non-strict as the app is built).
    routePath: c.req.path,
    headers,
    ...(incoming?.socket?.remoteAddress === undefined ? {} : { ip: incoming.socket.remoteAddress }),
    ...(incoming?.rawHeaders === undefined ? {} : { rawHeaders: incoming.rawHeaders }),
  };
}

function errorResponse(pipeline: TenantPipeline, error: unknown, admission?: PipelineAdmission): Response {
  const result = pipeline.errorResponse(normalizeFrameworkError(error), admission);
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

const NO_BODY_METHODS = new Set(['GET', 'HEAD']);

/** Multipart bodies stay unread (Hono's form parser needs the stream with its boundary). */
function isMultipart(c: Context): boolean {
  return /^\s*multipart\//i.test(c.req.header('content-type') ?? '');
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
  const pipeline = 'pipeline' in options ? options.pipeline : createTenantPipeline(options);
  const started = pipeline.start();
  started.catch((error) => pipeline.logger.error({ err: error }, 'Tenant event subscription failed'));
  const middleware: MiddlewareHandler<MtPaasHonoEnv> = async (c, next) => {
    let admission: PipelineAdmission | undefined;
    try {
      await started;
      admission = await pipeline.admit(toPipelineRequest(c), policy);
      if (!NO_BODY_METHODS.has(c.req.method) && c.req.raw.body !== null && !isMultipart(c)) {
        // Read as text whatever the content type says: `c.req.json()` parses any body, and reads it
        // from Hono's body cache after this.
        const text = await c.req.text();
        let body: unknown = text;
        if (/json/i.test(c.req.header('content-type') ?? '') && text.trim() !== '') {
          try {
            body = JSON.parse(text);
          } catch (error) {
            throw new MtPaasError('INVALID_REQUEST', 'The JSON body could not be parsed; send valid JSON.', {
              cause: error,
            });
          }
        }
        await pipeline.checkBody(admission, body);
      }
    } catch (error) {
      const response = errorResponse(pipeline, error, admission);
      pipeline.finish(admission, { status: response.status, route: routeTemplate(c) });
      return response;
    }
    const admitted = admission;
    c.set('tenant', admitted);
    for (const [name, value] of Object.entries(admitted.headers)) c.header(name, value);
    if (admitted.context === undefined) await next();
    else await runWithTenant(admitted.context, () => next());
    for (const [name, value] of Object.entries(admitted.headers)) {
      if (c.res.headers.has(name)) continue;
      try {
        c.res.headers.set(name, value);
      } catch {
        // A handler may return a Response with immutable headers (a proxied fetch); leave it as it is.
      }
    }
    pipeline.finish(admitted, { status: c.res.status, route: routeTemplate(c) });
  };
  return Object.assign(middleware, { pipeline });
}

/** An `app.onError` handler answering every error with `{ error: { code, message } }`. */
export function mtPaasErrorHandler(pipeline: TenantPipeline): ErrorHandler<MtPaasHonoEnv> {
  return (error, c) => errorResponse(pipeline, error, c.get('tenant'));
}

/** An `app.notFound` handler answering `404 { error: { code: 'ROUTE_NOT_FOUND', message } }`. */
export function mtPaasNotFound(pipeline: TenantPipeline): NotFoundHandler<MtPaasHonoEnv> {
  return (c) => errorResponse(pipeline, routeNotFoundError(c.req.method), c.get('tenant'));
}

function gate(check: (admission: PipelineAdmission) => void): MiddlewareHandler<MtPaasHonoEnv> {
  return async (c, next) => {
    try {
      check(admissionForGate(c.get('tenant'), "mount mtPaasHono() before the route (app.use('*', …))"));
    } catch (error) {
      if (!isMtPaasError(error)) throw error;
      // Answered here, so the refusal has the JSON shape even without mtPaasErrorHandler.
      return new Response(JSON.stringify(error.toJSON()), {
        status: error.httpStatus,
        headers: { 'content-type': 'application/json; charset=utf-8' },
      });
    }
    await next();
  };
}

/** Refuses (403 `FEATURE_NOT_IN_PLAN`) tenants without the feature. */
export function requireFeature(feature: string): MiddlewareHandler<MtPaasHonoEnv> {
  return gate((admission) => assertFeature(admission.entitlements, feature));
}

/** Refuses tenants below the plan. */
export function requirePlan(
  plan: string,
  order: readonly string[] = DEFAULT_PLAN_ORDER,
): MiddlewareHandler<MtPaasHonoEnv> {
  return gate((admission) => assertPlan(admission.entitlements, plan, order));
}

/** Refuses users without one of the roles (401 / 403). */
export function requireRole(...roles: string[]): MiddlewareHandler<MtPaasHonoEnv> {
  return gate((admission) => assertRoles(admission.principal, roles));
}

/** A `/metrics` handler for the pipeline's prom-client registry. */
export function metricsHandler(pipeline: TenantPipeline): (c: Context) => Promise<Response> {
  return async (c) => {
    if (pipeline.metrics === undefined) {
      const error = metricsDisabledError();
      return c.json(error.toJSON(), 404);
    }
    const { contentType, body } = await pipeline.metrics.render();
    return c.body(body, 200, { 'content-type': contentType });
  };
}
