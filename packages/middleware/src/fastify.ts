import { runWithTenant } from '@mt-paas/context';
import type {
  FastifyError,
  FastifyPluginAsync,
  FastifyReply,
  FastifyRequest,
  preHandlerHookHandler,
} from 'fastify';
import fp from 'fastify-plugin';
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
} from './adapter-kit.js';
import { DEFAULT_PLAN_ORDER } from './entitlements.js';
import type { ErrorResponse, PipelineRequest, RoutePolicy } from './http-types.js';
import type { AdmitOutcome, TenantPipeline } from './pipeline.js';
import type { TenantAdmission } from './pipeline-options.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** What the mt-paas pipeline admitted (`tenantId`, `record`, `entitlements`, `principal`); `null` before `onRequest` ran. */
    tenant: TenantAdmission | null;
  }
  interface FastifyContextConfig {
    /** The route's mt-paas policy (tenant required / optional / host-only, auth, features, plan …). */
    mtPaas?: RoutePolicy;
  }
  interface FastifyInstance {
    /** The mt-paas pipeline (metrics, directory cache, quotas). */
    mtPaas: TenantPipeline;
  }
}

/** What the Fastify plugin adds to the pipeline options. */
export interface FastifyAdapterOptions {
  /**
   * Answer unknown routes with `404 { error: { code: 'ROUTE_NOT_FOUND', message } }` (a `setNotFoundHandler`
   * on the root). Set `false` when the app sets its own not-found handler. @default true
   */
  notFoundHandler?: boolean;
}

/** Options of the Fastify plugin: a pipeline, or the options to build one. */
export type FastifyTenantOptions = AdapterPipelineOptions & FastifyAdapterOptions;

function toPipelineRequest(request: FastifyRequest, template: string | undefined): PipelineRequest {
  const url = request.url;
  const queryIndex = url.indexOf('?');
  return {
    method: request.method,
    path: queryIndex === -1 ? url : url.slice(0, queryIndex),
    url,
    headers: request.headers,
    rawHeaders: request.raw.rawHeaders,
    query: request.query as PipelineRequest['query'],
    ip: request.ip,
    // Route rules are matched against the route find-my-way selected (after its decoding, case and
    // absolute-form handling), never against the raw URL.
    routeTemplate: template,
    // A catch-all route is registered as `*`: the template of every path.
    routePath: template === undefined || template.startsWith('/') ? template : `/${template}`,
  };
}

const ROUTE_URL = Symbol('mtPaas.routeUrl');
type RouteUrlHolder = { [ROUTE_URL]?: string | undefined };

function send(reply: FastifyReply, response: ErrorResponse) {
  return reply.code(response.status).headers(response.headers).send(response.body);
}

const plugin: FastifyPluginAsync<FastifyTenantOptions> = async (app, options) => {
  const { pipeline, owned } = pipelineOf(options);
  await pipeline.start();
  app.decorate('mtPaas', pipeline);
  app.decorateRequest('tenant', null);
  // The matched route's template, read once in `onRequest` (`request.routeOptions` builds a new object on
  // every read) for the `onResponse` metrics and log line.
  app.decorateRequest(ROUTE_URL, undefined);

  app.addHook('onRequest', (request, reply, done) => {
    // `routeOptions` is a getter building a new object on every read: read it once.
    const route = request.routeOptions;
    (request as RouteUrlHolder)[ROUTE_URL] = route.url;
    const apply = (outcome: AdmitOutcome) => {
      // Answered here; `done` is not called, so no further hook or handler runs.
      if (!outcome.admitted) return send(reply, outcome.response);
      request.tenant = outcome.admission;
      reply.headers(outcome.admission.headers);
      done();
    };
    const outcome = pipeline.admitOrRefuse(toPipelineRequest(request, route.url), route.config?.mtPaas);
    if (outcome instanceof Promise) outcome.then(apply).catch(done);
    else apply(outcome);
  });

  // The body is parsed by now: guard it, then run the handler inside the tenant context.
  app.addHook('preHandler', (request, reply, done) => {
    const admission = request.tenant;
    if (admission === null) return done();
    const enter = () => (admission.context === undefined ? done() : runWithTenant(admission.context, done));
    if (request.body === undefined || request.body === null) return enter();
    pipeline.checkBody(admission, request.body).then(enter, (error: unknown) => {
      send(reply, errorResponseFor(pipeline, error, admission));
    });
  });

  app.addHook('onResponse', (request, reply, done) => {
    const admission = request.tenant;
    pipeline.finish(admission ?? undefined, {
      status: reply.statusCode,
      route: (request as RouteUrlHolder)[ROUTE_URL] ?? request.routeOptions.url,
      ...(admission === null ? {} : { startedAt: admission.startedAt }),
    });
    done();
  });

  app.setErrorHandler((error, request, reply) =>
    send(reply, errorResponseFor(pipeline, error, request.tenant)),
  );

  if (options.notFoundHandler !== false) {
    app.setNotFoundHandler((request, reply) =>
      send(reply, notFoundResponse(pipeline, request.method, request.tenant)),
    );
  }

  if (owned) app.addHook('onClose', async () => pipeline.close());
};

/**
 * Fastify's `frameworkErrors` server option: the router's own refusals (400 bad percent-encoding in the
 * URL, 414 a path parameter over `maxParamLength`), which skip every hook and error handler, answered
 * in the mt-paas shape `{ error: { code, message } }`.
 *
 * @example
 * const app = Fastify({ frameworkErrors: mtPaasFrameworkErrors, clientErrorHandler: handleClientError });
 */
export function mtPaasFrameworkErrors(
  error: FastifyError,
  request: FastifyRequest,
  reply: FastifyReply,
): void {
  const pipeline = (request.server as { mtPaas?: TenantPipeline }).mtPaas;
  const response = errorResponseFor(pipeline, error);
  // Without the plugin a router error that is no client error still gets a 400 in the mt-paas shape.
  if (pipeline === undefined && response.status >= 500) {
    reply
      .code(400)
      .header('content-type', 'application/json; charset=utf-8')
      .send(
        JSON.stringify({
          error: { code: 'INVALID_REQUEST', message: 'The request could not be routed; check its path.' },
        }),
      );
    return;
  }
  reply.code(response.status).headers(response.headers).send(JSON.stringify(response.body));
}

/**
 * The mt-paas Fastify plugin: resolves and admits the tenant in `onRequest`, guards the body and
 * runs the handler inside `runWithTenant` in `preHandler`, and decorates `request.tenant`.
 * Route policy comes from `config.mtPaas` of each route (or the pipeline's `routes`).
 *
 * @example
 * await app.register(mtPaasFastify, { directory, strategies: [{ type: 'header' }] });
 * app.get('/health', { config: { mtPaas: { tenant: 'optional' } } }, async () => ({ ok: true }));
 */
export const mtPaasFastify = fp(plugin, { fastify: '5.x', name: '@mt-paas/middleware' });

function gate(check: GateCheck): preHandlerHookHandler {
  return function (this: unknown, request, reply, done) {
    const pipeline = (request.server as { mtPaas?: TenantPipeline }).mtPaas;
    let refusal: ErrorResponse | undefined;
    try {
      refusal = runGate(
        check,
        pipeline,
        request.tenant,
        'register mtPaasFastify on the app (or a parent scope) first',
      );
    } catch (error) {
      refusal = errorResponseFor(pipeline, error, request.tenant);
    }
    if (refusal === undefined) done();
    else send(reply, refusal);
  };
}

/** A `preHandler` refusing (403 `FEATURE_NOT_IN_PLAN`) tenants without the feature. */
export function requireFeature(feature: string): preHandlerHookHandler {
  return gate(featureGate(feature));
}

/** A `preHandler` refusing tenants below the plan. */
export function requirePlan(
  plan: string,
  order: readonly string[] = DEFAULT_PLAN_ORDER,
): preHandlerHookHandler {
  return gate(planGate(plan, order));
}

/** A `preHandler` refusing users without one of the roles (401 / 403). */
export function requireRole(...roles: string[]): preHandlerHookHandler {
  return gate(roleGate(roles));
}

/** A route handler body for `/metrics` (the pipeline's prom-client registry; 404 when metrics are off). */
export async function metricsHandler(request: FastifyRequest, reply: FastifyReply): Promise<string> {
  const response = await metricsResponse(request.server.mtPaas);
  reply.code(response.status).headers(response.headers);
  return response.body;
}
