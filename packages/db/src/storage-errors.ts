import { MtPaasError } from '@mt-paas/context';

const CONNECTION_ERROR_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EPIPE',
]);

/** True when `error` means the Postgres server could not be reached or dropped the connection. */
export function isConnectionError(error: unknown, depth = 0): boolean {
  if (typeof error !== 'object' || error === null || depth > 5) return false;
  const cause = (error as { cause?: unknown }).cause;
  if (cause !== undefined && isConnectionError(cause, depth + 1)) return true;
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string') {
    if (CONNECTION_ERROR_CODES.has(code)) return true;
    // SQLSTATE class 08 (connection exception), 57P01-57P03 (admin shutdown, crash shutdown, cannot connect now)
    if (code.startsWith('08') || code === '57P01' || code === '57P02' || code === '57P03') return true;
    // 3D000: database does not exist (database mode: the tenant's database is missing)
    if (code === '3D000') return true;
  }
  const message = (error as { message?: unknown }).message;
  if (typeof message === 'string') {
    if (
      /Connection terminated|not queryable|connection timeout|timeout exceeded when trying to connect|terminating connection/i.test(
        message,
      )
    ) {
      return true;
    }
  }
  if (error instanceof AggregateError)
    return error.errors.some((inner) => isConnectionError(inner, depth + 1));
  return false;
}

/** Wraps a connection failure as `TENANT_STORAGE_UNAVAILABLE` (503, retry after a few seconds). */
export function storageUnavailable(error: unknown, where: string): MtPaasError {
  return new MtPaasError(
    'TENANT_STORAGE_UNAVAILABLE',
    `Tenant storage is unavailable (${where}): ${(error as Error)?.message ?? String(error)}. Check that Postgres is running and reachable, then retry.`,
    { cause: error, retryAfterSeconds: 5, details: { where } },
  );
}

/** Rethrows connection failures as `TENANT_STORAGE_UNAVAILABLE`, anything else unchanged. */
export function mapStorageError(error: unknown, where: string): unknown {
  if (MtPaasError.isInstance(error)) return error;
  return isConnectionError(error) ? storageUnavailable(error, where) : error;
}
