import { isMtPaasError, MtPaasError } from '@mt-paas/context';
import type { Logger } from 'pino';
import type { ErrorResponse } from './http-types.js';
import type { PipelineMetrics } from './metrics.js';
import { isClientSafe, serverFaultMessage } from './server-faults.js';

/** Turns any thrown value into an HTTP error response (`pipeline.errorResponse`). */
export type RenderError = (
  error: unknown,
  request?: { requestId?: string; logger?: Logger },
) => ErrorResponse;

/**
 * Builds the error response stage: an `MtPaasError` keeps its status, message and the headers it carries
 * (`error.headers`: `RateLimit-*`, `Retry-After`); a 5xx not written for the client, and anything that is no
 * `MtPaasError`, is answered with a fixed text (the real one goes to the log); every refusal is counted by
 * code in the metrics.
 */
export function createErrorRenderer(stage: {
  logger: Logger;
  metrics: PipelineMetrics | undefined;
  requestIdHeader: string;
}): RenderError {
  const { logger, metrics, requestIdHeader } = stage;
  return (error, context) => {
    const requestId = context?.requestId;
    let failure: MtPaasError;
    if (isMtPaasError(error)) {
      failure = error;
    } else {
      (context?.logger ?? logger).error({ err: error, requestId }, 'Unhandled error in the tenant pipeline');
      failure = new MtPaasError(
        'INTERNAL',
        'Something went wrong on our side; retry, and report the request id if it persists.',
      );
    }
    let body = failure.toJSON();
    if (failure.httpStatus >= 500) {
      // Driver messages (database names, addresses, ECONNREFUSED) go to the log, never to the client.
      if (isMtPaasError(error)) {
        (context?.logger ?? logger).warn({ code: failure.code, requestId, err: failure }, failure.message);
      }
      if (!isClientSafe(failure)) {
        body = { error: { code: failure.code, message: serverFaultMessage(failure) } };
      }
    }
    metrics?.refused(failure.code);
    const headers: Record<string, string> = {
      ...failure.headers,
      'content-type': 'application/json; charset=utf-8',
    };
    if (requestId !== undefined) headers[requestIdHeader] = requestId;
    if (failure.retryAfterSeconds !== undefined) headers['retry-after'] = String(failure.retryAfterSeconds);
    if (failure.code === 'UNAUTHENTICATED') headers['www-authenticate'] = 'Bearer';
    return { status: failure.httpStatus, headers, body };
  };
}
