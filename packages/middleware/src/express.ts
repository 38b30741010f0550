import { runWithTenant } from '@mt-paas/context';
import type { ErrorRequestHandler, NextFunction, Request, RequestHandler, Response } from 'express';
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
  splitTarget,
  startInBackground,
} from './adapter-kit.js';
import { DEFAULT_PLAN_ORDER } from './entitlements.js';
import type { ErrorResponse, PipelineRequest, RoutePolicy } from './http-types.js';
import type { AdmitOutcome, TenantPipeline } from './pipeline.js';
import type { TenantAdmission } from './pipeline-options.js';

declare global {
  namespace Express {
    interface Request {
      /** What the mt-paas pipeline admitted (`tenantId`, `record`, `entitlements`, `principal`). */
      tenant?: TenantAdmission;
    }
  }
}

/** Options of {@link mtPaasExpress}: a pipeline, or the options to build one. */
export type ExpressTenantOptions = AdapterPipelineOptions;

/** The Express middleware, with its pipeline attached. */
export type ExpressTenantMiddleware = RequestHandler & { pipeline: TenantPipeline };

/** The pipeline that admitted a request, for gates and handlers mounted after the middleware. */
const PIPELINE = Symbol('mt-paas.pipeline');
type WithPipeline = Request & { [PIPELINE]?: TenantPipeline };

function toPipelineRequest(request: Request): PipelineRequest {
  const { path, url } = splitTarget(request.originalUrl ?? request.url);
  return {
    method: request.method,
    path,
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

function send(response: Response, result: ErrorResponse) {
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
  const { pipeline } = pipelineOf(options);
  const started = startInBackground(pipeline);
  let ready = false;
  started.then(
    () => {
      ready = true;
    },
    () => {},
  );
  const proceed = (request: Request, response: Response, next: NextFunction, outcome: AdmitOutcome) => {
    if (!outcome.admitted) return send(response, outcome.response);
    const { admission } = outcome;
    request.tenant = admission;
    response.set(admission.headers);
    const enter = () => {
      if (admission.context === undefined) next();
      else runWithTenant(admission.context, () => next());
    };
    if (request.body === undefined) return enter();
    pipeline.checkBody(admission, request.body).then(enter, (error: unknown) => {
      send(response, errorResponseFor(pipeline, error, admission));
    });
  };
  const admit = (request: Request, response: Response, next: NextFunction) => {
    const fail = (error: unknown) => send(response, errorResponseFor(pipeline, error, request.tenant));
    try {
      const outcome = pipeline.admitOrRefuse(toPipelineRequest(request), policy);
      if (outcome instanceof Promise)
        outcome.then((result) => proceed(request, response, next, result)).catch(fail);
      else proceed(request, response, next, outcome);
    } catch (error) {
      fail(error);
    }
  };
  const middleware = (request: Request, response: Response, next: NextFunction) => {
    (request as WithPipeline)[PIPELINE] = pipeline;
    response.on('finish', () => {
      pipeline.finish(request.tenant, { status: response.statusCode, route: routeTemplate(request) });
    });
    if (ready) return admit(request, response, next);
    started.then(
      () => admit(request, response, next),
      (error: unknown) => send(response, errorResponseFor(pipeline, error)),
    );
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
    send(response, errorResponseFor(pipeline, error, request.tenant));
  };
}

/**
 * Answers a request no route matched with `404 { error: { code: 'ROUTE_NOT_FOUND', message } }` (instead of
 * Express's HTML page). Mount it after the routes, before {@link mtPaasErrorHandler}.
 */
export function mtPaasNotFound(pipeline: TenantPipeline): RequestHandler {
  return (request, response) => {
    send(response, notFoundResponse(pipeline, request.method, request.tenant));
  };
}

function gate(check: GateCheck): RequestHandler {
  return (request, response, next) => {
    let refusal: ErrorResponse | undefined;
    try {
      refusal = runGate(
        check,
        (request as WithPipeline)[PIPELINE],
        request.tenant,
        'mount mtPaasExpress() before the route (app.use)',
      );
    } catch (error) {
      return next(error);
    }
    // Answered here, so the refusal has the JSON shape even without mtPaasErrorHandler.
    if (refusal === undefined) next();
    else send(response, refusal);
  };
}

/** Middleware refusing (403 `FEATURE_NOT_IN_PLAN`) tenants without the feature. */
export function requireFeature(feature: string): RequestHandler {
  return gate(featureGate(feature));
}

/** Middleware refusing tenants below the plan. */
export function requirePlan(plan: string, order: readonly string[] = DEFAULT_PLAN_ORDER): RequestHandler {
  return gate(planGate(plan, order));
}

/** Middleware refusing users without one of the roles (401 / 403). */
export function requireRole(...roles: string[]): RequestHandler {
  return gate(roleGate(roles));
}

/** A `/metrics` route handler for the pipeline's prom-client registry (404 when metrics are off). */
export function metricsHandler(pipeline: TenantPipeline): RequestHandler {
  return (_request, response, next) => {
    metricsResponse(pipeline).then((result) => {
      response.status(result.status).set(result.headers).send(result.body);
    }, next);
  };
}
