/**
 * Browser helper (seed 002 §2.2): find the tenant from `?tenant=`, a cookie or the subdomain, and add
 * `X-Tenant-ID` to fetch calls. Browser-safe: imports nothing (no Node built-ins), so it bundles for
 * any front end.
 */

/** The grammar of `@mt-paas/context`, repeated here so this module imports nothing. */
const TENANT_ID_PATTERN = /^[a-z][a-z0-9_]{1,47}$/;

/** The part of `window.location` the helper reads. */
export interface TenantLocationLike {
  search: string;
  hostname: string;
}

/** The part of `document` the helper reads (and writes, with `persist`). */
export interface TenantDocumentLike {
  cookie: string;
}

/** Options of {@link detectTenant}. */
export interface DetectTenantOptions {
  /** @default globalThis.location */
  location?: TenantLocationLike;
  /** @default globalThis.document */
  document?: TenantDocumentLike;
  /** @default 'tenant' */
  queryParam?: string;
  /** @default 'tenant_id' */
  cookieName?: string;
  /** The service's base domain; the label before it is the tenant (`univ_8.tutor.example.com`). */
  baseDomain?: string;
  /** Subdomains that are never tenants. @default ['www', 'api', 'app'] */
  ignoreSubdomains?: readonly string[];
  /** Remember a tenant found in the URL in the cookie for later visits. @default false */
  persist?: boolean;
}

/** Where the tenant was found. */
export interface DetectedTenant {
  tenantId: string;
  source: 'query' | 'cookie' | 'subdomain';
}

function readCookie(cookieHeader: string, name: string): string | undefined {
  for (const pair of cookieHeader.split(';')) {
    const index = pair.indexOf('=');
    if (index <= 0) continue;
    if (pair.slice(0, index).trim() !== name) continue;
    const value = pair.slice(index + 1).trim();
    try {
      return decodeURIComponent(value);
    } catch {
      return value;
    }
  }
  return undefined;
}

/** True when `value` passes the tenant id grammar (reserved names are left to the server). */
export function looksLikeTenantId(value: string | null | undefined): value is string {
  return typeof value === 'string' && TENANT_ID_PATTERN.test(value);
}

/**
 * Finds the tenant of the current page: `?tenant=`, then the cookie, then the subdomain under
 * `baseDomain`. Values that do not pass the grammar are skipped.
 */
export function detectTenant(options: DetectTenantOptions = {}): DetectedTenant | undefined {
  const location = options.location ?? (globalThis as { location?: TenantLocationLike }).location;
  const document = options.document ?? (globalThis as { document?: TenantDocumentLike }).document;
  const queryParam = options.queryParam ?? 'tenant';
  const cookieName = options.cookieName ?? 'tenant_id';
  if (location !== undefined) {
    const fromQuery = new URLSearchParams(location.search).get(queryParam);
    if (looksLikeTenantId(fromQuery)) {
      if (options.persist === true && document !== undefined) {
        document.cookie = `${cookieName}=${encodeURIComponent(fromQuery)}; path=/; SameSite=Lax`;
      }
      return { tenantId: fromQuery, source: 'query' };
    }
  }
  if (document !== undefined) {
    const fromCookie = readCookie(document.cookie, cookieName);
    if (looksLikeTenantId(fromCookie)) return { tenantId: fromCookie, source: 'cookie' };
  }
  if (location !== undefined && options.baseDomain !== undefined) {
    const host = location.hostname.toLowerCase();
    const base = options.baseDomain.toLowerCase();
    if (host.endsWith(`.${base}`)) {
      const label = host.slice(0, -(base.length + 1));
      const ignore = options.ignoreSubdomains ?? ['www', 'api', 'app'];
      if (!label.includes('.') && !ignore.includes(label) && looksLikeTenantId(label)) {
        return { tenantId: label, source: 'subdomain' };
      }
    }
  }
  return undefined;
}

/** The fetch signature the helper wraps. */
export type FetchLike = (input: string | URL | Request, init?: RequestInit) => Promise<Response>;

/** Options of {@link createTenantFetch}. */
export interface TenantFetchOptions extends DetectTenantOptions {
  /** @default globalThis.fetch */
  fetch?: FetchLike;
  /** A fixed tenant or a function; @default `detectTenant(options)` on every call */
  tenantId?: string | (() => string | undefined);
  /** @default 'X-Tenant-ID' */
  headerName?: string;
}

/**
 * A `fetch` that adds `X-Tenant-ID` to every call (unless the call sets it already).
 *
 * @example
 * const api = createTenantFetch({ baseDomain: 'tutor.example.com' });
 * await api('/api/chat');
 */
export function createTenantFetch(options: TenantFetchOptions = {}): FetchLike {
  const headerName = options.headerName ?? 'X-Tenant-ID';
  const currentTenant = (): string | undefined => {
    if (typeof options.tenantId === 'string') return options.tenantId;
    if (typeof options.tenantId === 'function') return options.tenantId();
    return detectTenant(options)?.tenantId;
  };
  return (input, init) => {
    const fetchImpl = options.fetch ?? (globalThis.fetch as FetchLike);
    const tenantId = currentTenant();
    if (tenantId === undefined) return fetchImpl(input, init);
    const headers = new Headers(
      init?.headers ?? (typeof input === 'object' && 'headers' in input ? input.headers : undefined),
    );
    if (!headers.has(headerName)) headers.set(headerName, tenantId);
    return fetchImpl(input, { ...init, headers });
  };
}
