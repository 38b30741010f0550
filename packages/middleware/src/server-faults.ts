import type { MtPaasError } from '@mt-paas/context';

/** 5xx refusals whose message this package wrote for the client (no driver text in it). */
const clientSafeFailures = new WeakSet<object>();

/**
 * Marks a 5xx `MtPaasError` written by this package as fit to show: error responses keep its message.
 * Every other 5xx is answered with a fixed text (its message, often a driver's, goes to the log only).
 */
export function clientSafe<T extends object>(error: T): T {
  clientSafeFailures.add(error);
  return error;
}

/** Whether {@link clientSafe} marked this error. */
export function isClientSafe(error: object): boolean {
  return clientSafeFailures.has(error);
}

/** What a client reads for a server-side failure: no driver message, host, port or database name. */
export function serverFaultMessage(failure: MtPaasError): string {
  const retry =
    failure.retryAfterSeconds === undefined ? 'retry shortly' : `retry in ${failure.retryAfterSeconds} s`;
  switch (failure.httpStatus) {
    case 502:
      return `A service this request depends on answered with an error; ${retry}, and report the request id if it persists.`;
    case 503:
      return `A service this request depends on is unavailable; ${retry}, and report the request id if it persists.`;
    case 504:
      return `A service this request depends on did not answer in time; ${retry}, and report the request id if it persists.`;
    default:
      return 'Something went wrong on our side; retry, and report the request id if it persists.';
  }
}
