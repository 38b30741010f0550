import { MtPaasError } from '@mt-paas/context';
import { cookieValues, headerValue, type PipelineRequest, parseQuery } from './http-types.js';

/** Where a tenant id may come from. Tried in the configured order; all found sources must agree. */
export type ResolutionStrategy =
  | {
      /** A request header (the seed's `X-Tenant-ID`). */
      type: 'header';
      /** @default 'x-tenant-id' */
      name?: string;
    }
  | {
      /** The left-most label(s) of `Host` under `baseDomain` (`univ_8.tutor.example.com`). */
      type: 'subdomain';
      /**
       * The service's base domain (`tutor.example.com`). Without it the pattern runs on the whole host,
       * and only hosts of 3+ labels that are not IP addresses are considered.
       */
      baseDomain?: string;
      /** Applied to the part before the base domain (or the whole host); group 1 is the tenant id. @default /^([^.]+)$/ (with a base domain), /^([^.]+)\./ (without) */
      pattern?: string | RegExp;
      /** Subdomains that are never tenants. @default ['www', 'api', 'app'] */
      ignore?: readonly string[];
    }
  | {
      /** The whole `Host` looked up in the catalog's domain table (`learn.univ8.ac.kr`). */
      type: 'custom-domain';
      /** Hosts never looked up. @default ['localhost', '127.0.0.1', '[::1]'] plus every subdomain strategy's base domain */
      ignore?: readonly string[];
    }
  | {
      /** A claim of the verified JWT. */
      type: 'jwt-claim';
      /** @default the auth option `tenantClaim` ('tenant_id') */
      claim?: string;
    }
  | {
      /** A query parameter (the seed's `?tenant=`). */
      type: 'query';
      /** @default 'tenant' */
      name?: string;
    }
  | {
      /** A cookie (the seed's `tenant_id`). */
      type: 'cookie';
      /** @default 'tenant_id' */
      name?: string;
    }
  | {
      /** The first path segment after a prefix: `/t/univ_8/courses`. */
      type: 'path-prefix';
      /** @default '/t/' */
      prefix?: string;
    };

/** A raw tenant id found in a request, before the grammar check. */
export interface TenantCandidate {
  source: ResolutionStrategy['type'];
  raw: string;
}

/** Longest header value considered; anything longer is refused before parsing. */
const MAX_RAW_LENGTH = 256;
const HOST_PATTERN = /^[a-z0-9](?:[a-z0-9_.-]{0,251}[a-z0-9])?$/;

/** `Host` lower-cased without port, or `undefined` when it is not a plausible host name. */
export function normalizeHost(request: PipelineRequest): string | undefined {
  const raw = request.host ?? headerValue(request.headers, 'host');
  if (raw === undefined || raw.length === 0 || raw.length > 260) return undefined;
  let host = raw.trim().toLowerCase();
  if (host.startsWith('[')) {
    const end = host.indexOf(']');
    return end === -1 ? undefined : host.slice(0, end + 1);
  }
  const colon = host.indexOf(':');
  if (colon !== -1) host = host.slice(0, colon);
  if (host.endsWith('.')) host = host.slice(0, -1);
  return HOST_PATTERN.test(host) ? host : undefined;
}

function tooLong(source: string, raw: string): MtPaasError {
  return new MtPaasError(
    'INVALID_TENANT_ID',
    `The tenant id from the ${source} is ${raw.length} characters long; a tenant id has at most 48.`,
    { details: { source } },
  );
}

/** The headers that may appear once in a request: their lower-case names, and the lengths of those names. */
export interface IdentityHeaders {
  names: ReadonlySet<string>;
  /** A raw header name of another length cannot be one of `names`: it is skipped without lower-casing it. */
  lengths: ReadonlySet<number>;
}

/**
 * Names of the headers that identify a tenant or a caller under these strategies; each may appear
 * once in a request.
 */
export function identityHeaderNames(
  strategies: readonly ResolutionStrategy[],
  extra: readonly string[],
): IdentityHeaders {
  const names = new Set(['host', 'authorization', ...extra.map((name) => name.toLowerCase())]);
  for (const strategy of strategies)
    if (strategy.type === 'header') names.add((strategy.name ?? 'x-tenant-id').toLowerCase());
  return { names, lengths: new Set([...names].map((name) => name.length)) };
}

/** Throws `INVALID_REQUEST` when one of the identity headers appears more than once in Node's `rawHeaders`. */
export function refuseRepeatedHeaders(
  rawHeaders: readonly string[] | undefined,
  identity: IdentityHeaders,
): void {
  if (rawHeaders === undefined) return;
  let seen: Set<string> | undefined;
  for (let index = 0; index < rawHeaders.length; index += 2) {
    const raw = rawHeaders[index];
    // Lower-casing every header name of every request costs more than the rest of this check.
    if (raw === undefined || !identity.lengths.has(raw.length)) continue;
    const name = raw.toLowerCase();
    if (!identity.names.has(name)) continue;
    seen ??= new Set<string>();
    if (seen.has(name)) {
      throw new MtPaasError('INVALID_REQUEST', `The ${name} header is sent more than once; send it once.`, {
        details: { header: name },
      });
    }
    seen.add(name);
  }
}

/**
 * Reads the raw tenant ids a request carries, strategy by strategy, without any lookup.
 * (`custom-domain` and `jwt-claim` are handled by the pipeline: they need the catalog / a verified token.)
 */
export function collectCandidates(
  request: PipelineRequest,
  strategies: readonly ResolutionStrategy[],
): TenantCandidate[] {
  const candidates: TenantCandidate[] = [];
  const push = (source: ResolutionStrategy['type'], raw: string | readonly string[] | undefined) => {
    if (raw === undefined) return;
    const values = typeof raw === 'string' ? [raw] : raw;
    for (const value of values) {
      if (value.length > MAX_RAW_LENGTH) throw tooLong(source, value);
      candidates.push({ source, raw: value });
    }
  };
  let query: Readonly<Record<string, string | readonly string[] | undefined>> | undefined;
  for (const strategy of strategies) {
    switch (strategy.type) {
      case 'header': {
        const value = request.headers[(strategy.name ?? 'x-tenant-id').toLowerCase()];
        push('header', value);
        break;
      }
      case 'query': {
        query ??= request.query ?? parseQuery(request.url);
        push('query', query[strategy.name ?? 'tenant']);
        break;
      }
      case 'cookie': {
        const name = strategy.name ?? 'tenant_id';
        // Every value of the cookie counts: two `tenant_id` cookies naming two tenants disagree.
        push(
          'cookie',
          request.cookies === undefined
            ? cookieValues(headerValue(request.headers, 'cookie'), name)
            : request.cookies[name],
        );
        break;
      }
      case 'subdomain': {
        const host = normalizeHost(request);
        if (host === undefined) break;
        let label: string;
        if (strategy.baseDomain !== undefined) {
          const base = strategy.baseDomain.toLowerCase();
          if (!host.endsWith(`.${base}`)) break;
          label = host.slice(0, -(base.length + 1));
        } else {
          if (host.split('.').length < 3 || /^[0-9.]+$/.test(host) || host.startsWith('[')) break;
          label = host;
        }
        const ignore = strategy.ignore ?? ['www', 'api', 'app'];
        if (ignore.includes(label.split('.')[0] ?? label)) break;
        const pattern =
          strategy.pattern === undefined
            ? strategy.baseDomain === undefined
              ? /^([^.]+)\./
              : /^([^.]+)$/
            : typeof strategy.pattern === 'string'
              ? new RegExp(strategy.pattern)
              : strategy.pattern;
        const match = pattern.exec(label);
        if (match?.[1] !== undefined) push('subdomain', match[1]);
        break;
      }
      case 'path-prefix': {
        const prefix = strategy.prefix ?? '/t/';
        if (!request.path.startsWith(prefix)) break;
        const rest = request.path.slice(prefix.length);
        const slash = rest.indexOf('/');
        const segment = slash === -1 ? rest : rest.slice(0, slash);
        let decoded = segment;
        try {
          decoded = decodeURIComponent(segment);
        } catch {
          // keep the raw segment; the grammar check refuses it
        }
        push('path-prefix', decoded);
        break;
      }
      case 'custom-domain':
      case 'jwt-claim':
        break;
    }
  }
  return candidates;
}
