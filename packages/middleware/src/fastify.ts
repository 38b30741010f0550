import { isMtPaasError, MtPaasError, runWithTenant } from '@mt-paas/context';
import type {
  FastifyError,
  FastifyPluginAsync,
  FastifyReply,
  FastifyRequest,
  preHandlerHookHandler,
} from 'fastify';
import fp from 'fastify-plugin';
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

declare module 'fastify' {
  interface FastifyRequest {
    /** What the mt-paas pipeline admitted (tenant, entitlements, principal); `null` before `onRequest` ran. */
    tenant: PipelineAdmission | null;
  }
  interface FastifyContextConfig {
    /** The route's mt-paas policy (tenant required / optional / host-only, auth, features, plan …). */
    mtPaas?: RoutePolicy;
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
export type FastifyTenantOptions = ({ pipeline: TenantPipeline } | TenantPipelineOptions) &
  FastifyAdapterOptions;

function toPipelineRequest(request: FastifyRequest): PipelineRequest {
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
    ...(request.routeOptions.url === undefined
      ? {}
      : {
          routeTemplate: request.routeOptions.url,
          // A catch-all route is registered as `*`: the template of every path.
          routePath: request.routeOptions.url.startsWith('/')
            ? request.routeOptions.url
            : `/${request.routeOptions.url}`,
        }),
  };
}

function sendError(
  pipeline: TenantPipeline,
  reply: FastifyReply,
  error: unknown,
  admission?: PipelineAdmission | null,
) {
  const response = pipeline.errorResponse(error, admission ?? undefined);
  return reply.code(response.status).headers(response.headers).send(response.body);
}

const plugin: FastifyPluginAsync<FastifyTenantOptions> = async (app, options) => {
  const pipeline = 'pipeline' in options ? options.pipeline : createTenantPipeline(options);
  const ownsPipeline = !('pipeline' in options);
  await pipeline.start();
  app.decorate('mtPaas', pipeline);
  app.decorateRequest('tenant', null);

  app.addHook('onRequest', async (request, reply) => {
    const policy = request.routeOptions.config?.mtPaas;
    try {
      const admission = await pipeline.admit(toPipelineRequest(request), policy);
      request.tenant = admission;
      reply.headers(admission.headers);
    } catch (error) {
      return sendError(pipeline, reply, error);
    }
  });

  // The body is parsed by now: guard it, then run the handler inside the tenant context.
  app.addHook('preHandler', (request, reply, done) => {
    const admission = request.tenant;
    if (admission === null) return done();
    pipeline.checkBody(admission, request.body).then(
      () => {
        if (admission.context === undefined) done();
        else runWithTenant(admission.context, () => done());
      },
      (error) => {
        sendError(pipeline, reply, error, admission);
      },
    );
  });

  app.addHook('onResponse', async (request, reply) => {
    pipeline.finish(request.tenant ?? undefined, {
      status: reply.statusCode,
      route: request.routeOptions.url,
      ...(request.tenant === null ? {} : { startedAt: request.tenant.startedAt }),
    });
  });

  app.setErrorHandler((error, request, reply) => {
    return sendError(pipeline, reply, normalizeFrameworkError(error), request.tenant);
  });

  if (options.notFoundHandler !== false) {
    app.setNotFoundHandler((request, reply) =>
      sendError(pipeline, reply, routeNotFoundError(request.method), request.tenant),
    );
  }

  if (ownsPipeline) app.addHook('onClose', async () => pipeline.close());
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
  const failure = normalizeFrameworkError(error);
  if (pipeline !== undefined) {
    sendError(pipeline, reply, failure);
    return;
  }
  const refusal = isMtPaasError(failure)
    ? failure
    : new MtPaasError('INVALID_REQUEST', 'The request could not be routed; check its path.', {
        httpStatus: 400,
      });
  reply
    .code(refusal.httpStatus)
    .header('content-type', 'application/json; charset=utf-8')
    .send(JSON.stringify(refusal.toJSON()));
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

declare module 'fastify' {
  interface FastifyInstance {
    /** The mt-paas pipeline (metrics, directory cache, quotas). */
    mtPaas: TenantPipeline;
  }
}

function gate(check: (admission: PipelineAdmission) => void): preHandlerHookHandler {
  return function (this: unknown, request, reply, done) {
    try {
      check(admissionForGate(request.tenant, 'register mtPaasFastify on the app (or a parent scope) first'));
      done();
    } catch (error) {
      const pipeline = (request.server as { mtPaas: TenantPipeline }).mtPaas;
      sendError(pipeline, reply, error, request.tenant);
    }
  };
}

/** A `preHandler` refusing (403 `FEATURE_NOT_IN_PLAN`) tenants without the feature. */
export function requireFeature(feature: string): preHandlerHookHandler {
  return gate((admission) => assertFeature(admission.entitlements, feature));
}

/** A `preHandler` refusing tenants below the plan. */
export function requirePlan(
  plan: string,
  order: readonly string[] = DEFAULT_PLAN_ORDER,
): preHandlerHookHandler {
  return gate((admission) => assertPlan(admission.entitlements, plan, order));
}

/** A `preHandler` refusing users without one of the roles (401 / 403). */
export function requireRole(...roles: string[]): preHandlerHookHandler {
  return gate((admission) => assertRoles(admission.principal, roles));
}

/** A route handler body for `/metrics` (the pipeline's prom-client registry). */
export async function metricsHandler(request: FastifyRequest, reply: FastifyReply): Promise<string> {
  const rendered = await request.server.mtPaas.metrics?.render();
  if (rendered === undefined) {
    const error = metricsDisabledError();
    return reply.code(error.httpStatus).send(error.toJSON());
  }
  reply.header('content-type', rendered.contentType);
  return rendered.body;
}
