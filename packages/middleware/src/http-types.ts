import type { Entitlements, Tenant, TenantContext, TenantId, TenantUser } from '@mt-paas/context';

/** Header values as Node gives them (lower-case names). */
export type HeaderMap = Readonly<Record<string, string | readonly string[] | undefined>>;

/**
 * The minimal, framework-free shape of a request the pipeline reads. Every adapter builds one.
 */
export interface PipelineRequest {
  method: string;
  /** Path without the query string (`/api/courses`). */
  path: string;
  /** Lower-case header names. */
  headers: HeaderMap;
  /** `Host` without port, lower-case; taken from `headers.host` when omitted. */
  host?: string;
  /** Parsed query string; parsed from `url` when omitted. */
  query?: Readonly<Record<string, string | readonly string[] | undefined>>;
  /** Parsed cookies; parsed from the `cookie` header when omitted. */
  cookies?: Readonly<Record<string, string | undefined>>;
  /** Parsed body, when the framework has one (checked by the body guard). */
  body?: unknown;
  /** Full URL or path with query. */
  url?: string;
  /** Client address (audit events, logs). */
  ip?: string;
  /**
   * Node's `rawHeaders` (name, value, name, value …), when the adapter has them: identity headers
   * (`Host`, `Authorization`, the tenant and API key headers) sent more than once are refused, since
   * Node keeps only the first of some and joins others.
   */
  rawHeaders?: readonly string[];
  /** Route template (`/courses/:id`) when known. */
  routeTemplate?: string;
  /**
   * The path the framework routes on, which route rules (`routes`) are matched against: its matched
   * route template (Fastify `routeOptions.url`), or the request path decoded and normalised exactly as its
   * router does (Hono `c.req.path`, Express `baseUrl + path`). Must start with `/`; anything else is refused
   * (`INVALID_REQUEST`). @default `path`
   */
  routePath?: string;
  /** How the framework compares `routePath` with its routes. @default case-sensitive, strict trailing slash */
  routeMatching?: RouteMatching;
}

/** How a framework compares a request path with its routes, so route rules compare the same way. */
export interface RouteMatching {
  /** `/ADMIN` and `/admin` are different routes. @default true */
  caseSensitive?: boolean;
  /** `/admin/` and `/admin` are different routes. @default true */
  strictTrailingSlash?: boolean;
}

/** Whether a route needs a tenant. */
export type TenantRequirement = 'required' | 'optional' | 'host-only';

/** How a route authenticates. */
export type AuthRequirement = 'none' | 'optional' | 'jwt' | 'api-key' | 'jwt-or-api-key';

/** What one route asks of the pipeline. Every field is optional. */
export interface RoutePolicy {
  /**
   * `required`: no tenant → `TENANT_NOT_IDENTIFIED`. `optional`: resolved when present (health).
   * `host-only`: never resolves a tenant (superadmin, marketplace callbacks).
   * @default 'required'
   */
  tenant?: TenantRequirement;
  /**
   * `optional` verifies a bearer token when one is sent; `jwt` requires one; `api-key` requires a
   * configured API key; `none` ignores credentials.
   * @default the pipeline's `defaultAuth`
   */
  auth?: AuthRequirement;
  /** The user must have at least one of these roles. */
  roles?: readonly string[];
  /** Every feature must be on in the tenant's entitlements. */
  features?: readonly string[];
  /** Minimum plan (by the configured plan order). */
  plan?: string;
  /** Apply the per-tenant rate limit. @default true */
  rateLimit?: boolean;
  /** Meter this request on the `api_requests` quota (or the named meter). @default true */
  quota?: boolean | { meter: string; cost?: number };
  /** Check the body for a foreign `tenantId` / `tenant_id`. @default true */
  bodyGuard?: boolean;
}

/** Who the request acts as. */
export interface RequestPrincipal {
  kind: 'user' | 'service' | 'anonymous';
  user?: TenantUser;
  /** API key id for `service`. */
  service?: string;
  /** Verified JWT claims for `user`. */
  claims?: Readonly<Record<string, unknown>>;
}

/** What the pipeline learned about an admitted request (read-only; shared objects are frozen). */
export interface AdmittedRequest {
  readonly requestId: string;
  /** The resolved tenant id; `undefined` on optional / host-only routes without a tenant. */
  readonly tenantId: TenantId | undefined;
  /**
   * The tenant's catalog record, deeply frozen once when it was cached and shared by every request of
   * that tenant (so it is never copied per request, and no handler can change it for the others).
   */
  readonly record: Readonly<Tenant> | undefined;
  /** Effective entitlements (plan defaults ⊕ subscription ⊕ overrides), frozen. */
  readonly entitlements: Entitlements | undefined;
  readonly principal: RequestPrincipal;
  /** The context handlers run in (`runWithTenant`). */
  readonly context: TenantContext | undefined;
  /** Response headers to set (rate limit, warnings, request id). */
  readonly headers: Readonly<Record<string, string>>;
  /** Which strategy found the tenant (`header`, `subdomain`, …, `default`). */
  readonly source: string | undefined;
  /** The policy in force. */
  readonly policy: RoutePolicy;
}

/** An HTTP error response ready to send. */
export interface ErrorResponse {
  status: number;
  headers: Record<string, string>;
  body: { error: { code: string; message: string; details?: Record<string, unknown> } };
}

/** First value of a header. */
export function headerValue(headers: HeaderMap, name: string): string | undefined {
  const value = headers[name.toLowerCase()];
  if (value === undefined) return undefined;
  if (typeof value === 'string') return value;
  return value[0];
}

/** Parses a `Cookie` header (no decoding surprises: invalid percent-encoding keeps the raw value). */
export function parseCookieHeader(header: string | undefined): Record<string, string> {
  const cookies: Record<string, string> = {};
  if (header === undefined) return cookies;
  for (const pair of header.split(';')) {
    const index = pair.indexOf('=');
    if (index <= 0) continue;
    const name = pair.slice(0, index).trim();
    let value = pair.slice(index + 1).trim();
    if (value.startsWith('"') && value.endsWith('"') && value.length >= 2) value = value.slice(1, -1);
    if (name in cookies) continue;
    try {
      cookies[name] = decodeURIComponent(value);
    } catch {
      cookies[name] = value;
    }
  }
  return cookies;
}

/**
 * Every value of cookie `name` in a `Cookie` header, in order. Repeated names are all returned (a
 * client that sends `tenant_id` twice names two tenants); pairs are split on `;` and on `,` (how a fetch
 * `Headers` joins two `Cookie` lines; a cookie value never holds a comma).
 */
export function cookieValues(header: string | undefined, name: string): string[] {
  const values: string[] = [];
  if (header === undefined) return values;
  for (const pair of header.split(/[;,]/)) {
    const index = pair.indexOf('=');
    if (index <= 0 || pair.slice(0, index).trim() !== name) continue;
    let value = pair.slice(index + 1).trim();
    if (value.startsWith('"') && value.endsWith('"') && value.length >= 2) value = value.slice(1, -1);
    try {
      values.push(decodeURIComponent(value));
    } catch {
      values.push(value);
    }
  }
  return values;
}

/** Parses the query string of a URL or path. */
export function parseQuery(url: string | undefined): Record<string, string | string[]> {
  const query: Record<string, string | string[]> = {};
  if (url === undefined) return query;
  const index = url.indexOf('?');
  if (index === -1) return query;
  const params = new URLSearchParams(url.slice(index + 1));
  for (const [key, value] of params) {
    const existing = query[key];
    if (existing === undefined) query[key] = value;
    else if (Array.isArray(existing)) existing.push(value);
    else query[key] = [existing, value];
  }
  return query;
}
