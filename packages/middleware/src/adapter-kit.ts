import { isMtPaasError } from '@mt-paas/context';
import { pino } from 'pino';
import { assertFeature, assertPlan, DEFAULT_PLAN_ORDER } from './entitlements.js';
import { createErrorRenderer } from './error-response.js';
import { admissionForGate, assertRoles, normalizeFrameworkError, routeNotFoundError } from './guards.js';
import type { ErrorResponse } from './http-types.js';
import { metricsDisabledError } from './metrics.js';
import { createTenantPipeline, type TenantPipeline } from './pipeline.js';
import type { TenantAdmission, TenantPipelineOptions } from './pipeline-options.js';

/**
 * The shared part of the Fastify, Express and Hono adapters: each adapter file is only its framework's
 * glue (how to read a request, how to send a response); what is answered is decided here, once.
 */

/** Adapter options: a pipeline, or the options to build one. */
export type AdapterPipelineOptions = { pipeline: TenantPipeline } | TenantPipelineOptions;

/** The pipeline of adapter options, and whether the adapter built it (and so closes it). */
export function pipelineOf(options: AdapterPipelineOptions): { pipeline: TenantPipeline; owned: boolean } {
  return 'pipeline' in options
    ? { pipeline: options.pipeline, owned: false }
    : { pipeline: createTenantPipeline(options), owned: true };
}

/**
 * Starts a pipeline for adapters that cannot await it at registration (Express, Hono): requests wait for
 * the returned promise. A failure is logged once, and every request waiting on it is answered 500 (the
 * cache would not hear of blocked or deleted tenants).
 */
export function startInBackground(pipeline: TenantPipeline): Promise<void> {
  const started = pipeline.start();
  started.catch((error: unknown) => {
    pipeline.logger.error({ err: error }, 'Tenant event subscription failed');
  });
  return started;
}

/** `/path?query` split into the path and the whole target. */
export function splitTarget(url: string): { path: string; url: string } {
  const queryIndex = url.indexOf('?');
  return { path: queryIndex === -1 ? url : url.slice(0, queryIndex), url };
}

/** Renders refusals of gates mounted without the middleware (no pipeline to ask): same shape, no metrics. */
const standaloneRenderer = createErrorRenderer({
  logger: pino({ level: 'silent' }),
  metrics: undefined,
  requestIdHeader: 'x-request-id',
});

/**
 * The error response for anything thrown on a request: the framework's own client errors (body parser,
 * payload size) mapped to the mt-paas shape first. Without a pipeline (a gate mounted without the
 * middleware), rendered the same way without metrics.
 */
export function errorResponseFor(
  pipeline: TenantPipeline | undefined,
  error: unknown,
  admission?: TenantAdmission | null,
): ErrorResponse {
  const failure = normalizeFrameworkError(error);
  return pipeline === undefined
    ? standaloneRenderer(failure, admission === null ? undefined : admission)
    : pipeline.errorResponse(failure, admission === null ? undefined : admission);
}

/** The `ROUTE_NOT_FOUND` (404) response of every adapter's not-found handler. */
export function notFoundResponse(
  pipeline: TenantPipeline,
  method: string,
  admission?: TenantAdmission | null,
): ErrorResponse {
  return errorResponseFor(pipeline, routeNotFoundError(method), admission);
}

/** A check a gate runs on the admission (throws an `MtPaasError` to refuse). */
export type GateCheck = (admission: TenantAdmission) => void;

/** `requireFeature`: 403 `FEATURE_NOT_IN_PLAN` without the feature. */
export function featureGate(feature: string): GateCheck {
  return (admission) => assertFeature(admission.entitlements, feature);
}

/** `requirePlan`: 403 `FEATURE_NOT_IN_PLAN` below the plan. */
export function planGate(plan: string, order: readonly string[] = DEFAULT_PLAN_ORDER): GateCheck {
  return (admission) => assertPlan(admission.entitlements, plan, order);
}

/** `requireRole`: 401 without a user, 403 without one of the roles. */
export function roleGate(roles: readonly string[]): GateCheck {
  return (admission) => assertRoles(admission.principal, roles);
}

/**
 * Runs a gate: `undefined` to go on, or the refusal to send (rendered by the pipeline like every other
 * refusal, with the request id). A gate that runs before the middleware is a wiring mistake: 500
 * `CONFIG_INVALID` saying how to mount it. A non-`MtPaasError` thrown by a check is rethrown.
 */
export function runGate(
  check: GateCheck,
  pipeline: TenantPipeline | undefined,
  admission: TenantAdmission | null | undefined,
  mountAdvice: string,
): ErrorResponse | undefined {
  try {
    check(admissionForGate(admission, mountAdvice));
    return undefined;
  } catch (error) {
    if (!isMtPaasError(error)) throw error;
    return errorResponseFor(pipeline, error, admission);
  }
}

/** What a `/metrics` route answers: the exposition, or 404 `{ error }` when metrics are off. */
export async function metricsResponse(
  pipeline: TenantPipeline,
): Promise<{ status: number; headers: Record<string, string>; body: string }> {
  if (pipeline.metrics === undefined) {
    const response = pipeline.errorResponse(metricsDisabledError());
    return { status: response.status, headers: response.headers, body: JSON.stringify(response.body) };
  }
  const { contentType, body } = await pipeline.metrics.render();
  return { status: 200, headers: { 'content-type': contentType }, body };
}
