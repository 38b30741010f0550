import { isMtPaasError, runWithTenant } from '@mt-paas/context';
import type { ErrorRequestHandler, NextFunction, Request, RequestHandler, Response } from 'express';
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

declare global {
  namespace Express {
    interface Request {
      /** What the mt-paas pipeline admitted (tenant, entitlements, principal). */
      tenant?: PipelineAdmission;
    }
  }
}

/** Options of {@link mtPaasExpress}: a pipeline, or the options to build one. */
export type ExpressTenantOptions = { pipeline: TenantPipeline } | TenantPipelineOptions;

/** The Express middleware, with its pipeline attached. */
export type ExpressTenantMiddleware = RequestHandler & { pipeline: TenantPipeline };

function toPipelineRequest(request: Request): PipelineRequest {
  const url = request.originalUrl ?? request.url;
  const queryIndex = url.indexOf('?');
  return {
    method: request.method,
    path: queryIndex === -1 ? url : url.slice(0, queryIndex),
    url,
    headers: request.headers,
    rawHeaders: request.rawHeaders,
    // What Express routes on: parseurl's pathname (absolute-form reduced to its path, no decoding),
    // compared case-insensitively and with an optional trailing slash unless the app says otherwise.
    routePath: `${request.baseUrl}${request.path}`,
    routeMatching: {
      caseSensitive: request.app.get('case sensitive routing') === true,
      strictTrailingSlash: request.app.get('strict routing') === true,
    },
    ...(request.ip === undefined ? {} : { ip: request.ip }),
  };
}

function sendError(
  pipeline: TenantPipeline,
  response: Response,
  error: unknown,
  admission?: PipelineAdmission,
) {
  const result = pipeline.errorResponse(normalizeFrameworkError(error), admission);
  response.status(result.status).set(result.headers).send(JSON.stringify(result.body));
}

function routeTemplate(request: Request): string | undefined {
  const path = (request.route as { path?: unknown } | undefined)?.path;
  return typeof path === 'string' ? `${request.baseUrl}${path}` : undefined;
}

/**
 * The mt-paas Express middleware: resolves and admits the tenant, guards an already parsed body
 * (mount it after `express.json()`), sets `req.tenant`, and runs the rest of the chain inside
 * `runWithTenant`. Policy: the `policy` argument, else the pipeline's `routes`, else tenant required.
 *
 * @example
 * app.use(express.json(), mtPaasExpress({ directory, strategies: [{ type: 'header' }] }));
 */
export function mtPaasExpress(options: ExpressTenantOptions, policy?: RoutePolicy): ExpressTenantMiddleware {
  const pipeline = 'pipeline' in options ? options.pipeline : createTenantPipeline(options);
  const started = pipeline.start();
  started.catch((error) => pipeline.logger.error({ err: error }, 'Tenant event subscription failed'));
  const middleware = (request: Request, response: Response, next: NextFunction) => {
    const pipelineRequest = toPipelineRequest(request);
    let admission: PipelineAdmission | undefined;
    response.on('finish', () => {
      pipeline.finish(admission, { status: response.statusCode, route: routeTemplate(request) });
    });
    started
      .then(() => pipeline.admit(pipelineRequest, policy))
      .then(async (admitted) => {
        admission = admitted;
        request.tenant = admitted;
        response.set(admitted.headers);
        if (request.body !== undefined) await pipeline.checkBody(admitted, request.body);
        if (admitted.context === undefined) next();
        else runWithTenant(admitted.context, () => next());
      })
      .catch((error: unknown) => sendError(pipeline, response, error, admission));
  };
  return Object.assign(middleware, { pipeline });
}

/**
 * An Express error handler answering every error with `{ error: { code, message } }` (an
 * `MtPaasError` with its own status; anything else as a 500 without internals). Mount it last.
 */
export function mtPaasErrorHandler(pipeline: TenantPipeline): ErrorRequestHandler {
  return (error, request, response, next) => {
    if (response.headersSent) return next(error);
    sendError(pipeline, response, error, request.tenant);
  };
}

/**
 * Answers a request no route matched with `404 { error: { code: 'ROUTE_NOT_FOUND', message } }` (instead of
 * Express's HTML page). Mount it after the routes, before {@link mtPaasErrorHandler}.
 */
export function mtPaasNotFound(pipeline: TenantPipeline): RequestHandler {
  return (request, response) => {
    sendError(pipeline, response, routeNotFoundError(request.method), request.tenant);
  };
}

function gate(check: (admission: PipelineAdmission) => void): RequestHandler {
  return (request, response, next) => {
    try {
      check(admissionForGate(request.tenant, 'mount mtPaasExpress() before the route (app.use)'));
    } catch (error) {
      if (!isMtPaasError(error)) return next(error);
      // Answered here, so the refusal has the JSON shape even without mtPaasErrorHandler.
      response
        .status(error.httpStatus)
        .set('content-type', 'application/json; charset=utf-8')
        .send(JSON.stringify(error.toJSON()));
      return;
    }
    next();
  };
}

/** Middleware refusing (403 `FEATURE_NOT_IN_PLAN`) tenants without the feature. */
export function requireFeature(feature: string): RequestHandler {
  return gate((admission) => assertFeature(admission.entitlements, feature));
}

/** Middleware refusing tenants below the plan. */
export function requirePlan(plan: string, order: readonly string[] = DEFAULT_PLAN_ORDER): RequestHandler {
  return gate((admission) => assertPlan(admission.entitlements, plan, order));
}

/** Middleware refusing users without one of the roles (401 / 403). */
export function requireRole(...roles: string[]): RequestHandler {
  return gate((admission) => assertRoles(admission.principal, roles));
}

/** A `/metrics` route handler for the pipeline's prom-client registry. */
export function metricsHandler(pipeline: TenantPipeline): RequestHandler {
  return (_request, response, next) => {
    const metrics = pipeline.metrics;
    if (metrics === undefined) {
      const error = metricsDisabledError();
      response.status(error.httpStatus).json(error.toJSON());
      return;
    }
    metrics.render().then(({ contentType, body }) => {
      response.set('content-type', contentType).send(body);
    }, next);
  };
}
