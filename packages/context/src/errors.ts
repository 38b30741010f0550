/**
 * The one error family of mt-paas. Every refusal a vendor's client can see is an `MtPaasError`
 * with a stable `code`, an `httpStatus` and a message that says what to do next.
 */

/** Stable error codes with their HTTP status. Codes never change meaning between versions. */
export const ERROR_STATUS = {
  INVALID_TENANT_ID: 400,
  TENANT_NOT_IDENTIFIED: 400,
  INVALID_REQUEST: 400,
  UNAUTHENTICATED: 401,
  WEBHOOK_SIGNATURE_INVALID: 401,
  SUBSCRIPTION_EXPIRED: 402,
  FORBIDDEN: 403,
  TENANT_SUSPENDED: 403,
  TENANT_BLOCKED: 403,
  TENANT_DELETED: 403,
  FEATURE_NOT_IN_PLAN: 403,
  CROSS_TENANT_ACCESS: 403,
  TENANT_NOT_FOUND: 404,
  ROUTE_NOT_FOUND: 404,
  CONFLICT: 409,
  PAYLOAD_TOO_LARGE: 413,
  RATE_LIMITED: 429,
  QUOTA_EXCEEDED: 429,
  TENANT_CONTEXT_MISSING: 500,
  CONFIG_INVALID: 500,
  INTERNAL: 500,
  PROVIDER_ERROR: 502,
  TENANT_STORAGE_UNAVAILABLE: 503,
  SERVICE_UNAVAILABLE: 503,
  PROVIDER_UNAVAILABLE: 503,
  TIMEOUT: 504,
} as const satisfies Record<string, number>;

/** A stable mt-paas error code. */
export type ErrorCode = keyof typeof ERROR_STATUS;

const MARKER = Symbol.for('mt-paas.error');

/** Options of an {@link MtPaasError}. */
export interface MtPaasErrorOptions {
  /** Structured, safe-to-show fields (never secrets). Serialised in `toJSON()`. */
  details?: Record<string, unknown>;
  /** The underlying error; kept for logs, never serialised. */
  cause?: unknown;
  /** Overrides the code's default HTTP status. */
  httpStatus?: number;
  /** For `RATE_LIMITED` / `QUOTA_EXCEEDED` / 503s: seconds after which a retry may succeed. */
  retryAfterSeconds?: number;
  /**
   * Response headers the refusal carries (lower-case names), such as the `RateLimit-*` headers of a 429.
   * A server sets them on the error response; they are never serialised into the body.
   */
  headers?: Readonly<Record<string, string>>;
}

/** The JSON body of an error response: `{ error: { code, message, details? } }`. */
export interface MtPaasErrorBody {
  error: { code: ErrorCode; message: string; details?: Record<string, unknown> };
}

/**
 * The error every mt-paas package throws for a refusal or a misuse.
 *
 * @example
 * throw new MtPaasError('TENANT_SUSPENDED', 'Tenant "univ_8" is suspended; ask its administrator to renew the subscription.');
 */
export class MtPaasError extends Error {
  /** Stable machine-readable code. */
  readonly code: ErrorCode;
  /** HTTP status a server should answer with. */
  readonly httpStatus: number;
  /** Structured, safe-to-show fields. */
  readonly details: Record<string, unknown> | undefined;
  /** Seconds after which a retry may succeed (sets `Retry-After`). */
  readonly retryAfterSeconds: number | undefined;
  /** Response headers the refusal carries (lower-case names, frozen), e.g. `RateLimit-*` on a 429. */
  readonly headers: Readonly<Record<string, string>> | undefined;

  constructor(code: ErrorCode, message: string, options: MtPaasErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'MtPaasError';
    this.code = code;
    this.httpStatus = options.httpStatus ?? ERROR_STATUS[code] ?? 500;
    this.details = options.details;
    this.retryAfterSeconds = options.retryAfterSeconds;
    this.headers =
      options.headers === undefined
        ? undefined
        : Object.freeze(
            Object.fromEntries(
              Object.entries(options.headers).map(([name, value]) => [name.toLowerCase(), value]),
            ),
          );
    Object.defineProperty(this, MARKER, { value: true, enumerable: false });
  }

  /**
   * True for any `MtPaasError`, also one thrown by another copy of this package
   * (checked through `Symbol.for('mt-paas.error')`, not `instanceof`).
   */
  static isInstance(value: unknown): value is MtPaasError {
    return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[MARKER] === true;
  }

  /** `{ error: { code, message, details? } }` — the body of an HTTP error response. */
  toJSON(): MtPaasErrorBody {
    const body: MtPaasErrorBody = { error: { code: this.code, message: this.message } };
    if (this.details !== undefined) body.error.details = this.details;
    return body;
  }
}

/** True when `value` is an {@link MtPaasError} with the given code. */
export function isMtPaasError(value: unknown, code?: ErrorCode): value is MtPaasError {
  return MtPaasError.isInstance(value) && (code === undefined || value.code === code);
}
