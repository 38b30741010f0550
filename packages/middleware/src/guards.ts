import { type ErrorCode, isMtPaasError, MtPaasError } from '@mt-paas/context';
import type { RequestPrincipal } from './http-types.js';
import { clientSafe } from './server-faults.js';

/**
 * Throws `UNAUTHENTICATED` without a user and `FORBIDDEN` when the user has none of `roles`.
 * An empty list lets everyone through.
 */
export function assertRoles(
  principal: RequestPrincipal | undefined,
  roles: readonly string[] | undefined,
): void {
  if (roles === undefined || roles.length === 0) return;
  const user = principal?.user;
  if (user === undefined) {
    throw new MtPaasError('UNAUTHENTICATED', 'This route needs a signed-in user; sign in first.');
  }
  if (!roles.some((role) => user.roles.includes(role))) {
    throw new MtPaasError(
      'FORBIDDEN',
      `This route needs one of the roles ${roles.join(', ')}; ask an administrator for access.`,
      { details: { requiredRoles: [...roles] } },
    );
  }
}

/**
 * The admission a gate (`requireFeature` / `requirePlan` / `requireRole`) checks, or `CONFIG_INVALID` when
 * the mt-paas middleware did not run before the gate (a wiring mistake, not the client's fault).
 */
export function admissionForGate<T>(admission: T | null | undefined, mountAdvice: string): T {
  if (admission === null || admission === undefined) {
    throw clientSafe(
      new MtPaasError(
        'CONFIG_INVALID',
        `requireFeature / requirePlan / requireRole ran before the mt-paas pipeline admitted the request; ${mountAdvice}.`,
      ),
    );
  }
  return admission;
}

/**
 * Maps a framework's own client error (body parser, payload size …) to an `MtPaasError`, so every
 * 4xx has the `{ error: { code, message } }` shape. Anything else is returned unchanged.
 */
export function normalizeFrameworkError(error: unknown): unknown {
  if (isMtPaasError(error)) return error;
  if (typeof error !== 'object' || error === null) return error;
  const status =
    (error as { statusCode?: unknown; status?: unknown }).statusCode ??
    (error as { status?: unknown }).status;
  if (typeof status !== 'number' || status < 400 || status >= 500) return error;
  const code: ErrorCode = status === 413 ? 'PAYLOAD_TOO_LARGE' : 'INVALID_REQUEST';
  return new MtPaasError(
    code,
    status === 413
      ? 'The request body is too large; send a smaller body.'
      : 'The request could not be read (malformed body or headers); check the request and retry.',
    { httpStatus: status, cause: error },
  );
}

/** `ROUTE_NOT_FOUND` (404) for a request no route answers: every adapter's not-found handler sends it. */
export function routeNotFoundError(method: string): MtPaasError {
  return new MtPaasError(
    'ROUTE_NOT_FOUND',
    `No route answers ${method.slice(0, 16)} on this path; check the method and the path.`,
  );
}
