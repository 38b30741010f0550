import { isTenantId, MtPaasError, type TenantId, tenantIdProblem } from '@mt-paas/context';
import type { Authentication } from './authenticate.js';
import type { RefuseCrossTenant } from './cross-tenant.js';
import type { PipelineRequest, TenantRequirement } from './http-types.js';
import type { CachedDirectory } from './tenant-cache.js';
import {
  collectCandidates,
  normalizeHost,
  type ResolutionStrategy,
  type TenantCandidate,
} from './tenant-resolver.js';

/** A tenant id found in a request, checked against the grammar. */
export interface ResolvedCandidate {
  source: TenantCandidate['source'] | 'default';
  tenantId: TenantId;
}

/** What resolution decided: the tenant (parsed once) and where it came from. */
export interface Resolution {
  tenantId: TenantId;
  source: ResolvedCandidate['source'];
}

/** The resolution stage (all strategies). */
export interface TenantResolver {
  /** The ids the request itself carries (header, subdomain, query, cookie, path), grammar-checked. */
  candidates(request: PipelineRequest): ResolvedCandidate[];
  /**
   * Adds the custom domain and the token's claim to `candidates`, requires every source to agree (else an
   * audited `CROSS_TENANT_ACCESS`), applies the default tenant, and refuses a token without a tenant claim.
   * `undefined` when the request names no tenant and the route does not require one.
   */
  resolve(
    request: PipelineRequest,
    candidates: ResolvedCandidate[],
    authentication: Authentication,
    mode: Exclude<TenantRequirement, 'host-only'>,
    requestId: string,
  ): Resolution | undefined | Promise<Resolution | undefined>;
}

/** How a client uses one strategy, for error messages (`the X-Tenant-ID header`). */
function describeStrategy(strategy: ResolutionStrategy, tenantClaim: string): string {
  switch (strategy.type) {
    case 'header':
      return `the ${strategy.name ?? 'X-Tenant-ID'} header`;
    case 'subdomain':
      return strategy.baseDomain === undefined
        ? 'the tenant subdomain'
        : `the tenant subdomain (<tenant>.${strategy.baseDomain})`;
    case 'custom-domain':
      return "the tenant's own domain";
    case 'jwt-claim':
      return `a bearer token with a "${strategy.claim ?? tenantClaim}" claim`;
    case 'query':
      return `the ?${strategy.name ?? 'tenant'}= query parameter`;
    case 'cookie':
      return `the ${strategy.name ?? 'tenant_id'} cookie`;
    case 'path-prefix':
      return `a path starting ${strategy.prefix ?? '/t/'}<tenant>/`;
  }
}

/**
 * Builds the resolution stage: ordered strategies, every id checked against the grammar before anything
 * else (a `TenantId` is produced here once), custom domains looked up in the cached directory, the verified
 * token's claim as one more source, all sources required to agree.
 */
export function createTenantResolver(stage: {
  strategies: readonly ResolutionStrategy[];
  tenantClaim: string;
  defaultTenant: TenantId | undefined;
  /** `jwt.requireTenantClaim` (default true). */
  requireTenantClaim: boolean;
  directory: CachedDirectory;
  refuseCrossTenant: RefuseCrossTenant;
}): TenantResolver {
  const { strategies, tenantClaim, defaultTenant, directory, refuseCrossTenant } = stage;
  const hasClaimStrategy = strategies.some((strategy) => strategy.type === 'jwt-claim');
  /** What a client can do to name its tenant, from the strategies actually configured. */
  const strategyList = strategies.map((strategy) => describeStrategy(strategy, tenantClaim)).join(', or ');
  const domainStrategy = strategies.find(
    (strategy): strategy is Extract<ResolutionStrategy, { type: 'custom-domain' }> =>
      strategy.type === 'custom-domain',
  );
  const ignoredHosts = new Set(domainStrategy?.ignore ?? ['localhost', '127.0.0.1', '[::1]']);
  const baseDomains = strategies.flatMap((strategy) =>
    strategy.type === 'subdomain' && strategy.baseDomain !== undefined
      ? [strategy.baseDomain.toLowerCase()]
      : [],
  );

  async function customDomain(request: PipelineRequest): Promise<ResolvedCandidate | undefined> {
    const host = normalizeHost(request);
    if (
      host === undefined ||
      ignoredHosts.has(host) ||
      baseDomains.some((base) => host === base || host.endsWith(`.${base}`))
    )
      return undefined;
    const owner = await directory.resolveDomain(host);
    // The catalog only maps domains to valid ids; one that is not is no tenant.
    return isTenantId(owner) ? { source: 'custom-domain', tenantId: owner } : undefined;
  }

  function decide(
    request: PipelineRequest,
    candidates: ResolvedCandidate[],
    { principal, token }: Authentication,
    claim: ResolvedCandidate | undefined,
    mode: Exclude<TenantRequirement, 'host-only'>,
    requestId: string,
  ): Resolution | undefined | Promise<never> {
    // The verified claim is a source when configured, and must match whatever other source there is.
    if (claim !== undefined && (hasClaimStrategy || candidates.length > 0)) candidates.push(claim);
    const first = candidates[0];
    if (first !== undefined) {
      const other = candidates.find((candidate) => candidate.tenantId !== first.tenantId);
      if (other !== undefined) {
        return refuseCrossTenant({
          request,
          requestId,
          principal,
          first,
          other: { source: other.source, raw: other.tenantId },
          reason: 'sources disagree',
        });
      }
    }
    let resolution: Resolution | undefined = first;
    if (resolution === undefined && defaultTenant !== undefined && mode === 'required') {
      resolution = { tenantId: defaultTenant, source: 'default' };
      // A signed-in user of another tenant must not fall through to the default tenant.
      if (claim !== undefined && claim.tenantId !== defaultTenant) {
        return refuseCrossTenant({
          request,
          requestId,
          principal,
          first: resolution,
          other: { source: claim.source, raw: claim.tenantId },
          reason: 'default tenant differs from the token',
          message: `The token is for tenant "${claim.tenantId}", not the default tenant "${defaultTenant}"; name "${claim.tenantId}" with ${strategyList}.`,
        });
      }
    }
    if (resolution === undefined) {
      if (mode === 'required') {
        throw new MtPaasError(
          'TENANT_NOT_IDENTIFIED',
          `No tenant in this request; name one with ${strategyList}.`,
        );
      }
      return undefined;
    }
    // A signed-in user acts in a tenant only with a token that names it (the claim matched above).
    if (token !== undefined && claim === undefined && stage.requireTenantClaim) {
      throw new MtPaasError(
        'FORBIDDEN',
        `The token has no "${tenantClaim}" claim, so it cannot act in tenant "${resolution.tenantId}"; sign in with a token issued for that tenant.`,
        { details: { tenantId: resolution.tenantId } },
      );
    }
    return { tenantId: resolution.tenantId, source: resolution.source };
  }

  return {
    candidates(request) {
      const found = collectCandidates(request, strategies);
      const checked: ResolvedCandidate[] = [];
      for (const candidate of found) {
        if (!isTenantId(candidate.raw)) {
          const problem = tenantIdProblem(candidate.raw) ?? 'not a tenant id';
          throw new MtPaasError(
            'INVALID_TENANT_ID',
            `The tenant id from the ${candidate.source} is invalid: ${problem}. A tenant id is 2-48 characters of a-z, 0-9 and "_", starting with a letter.`,
            { details: { source: candidate.source, reason: problem } },
          );
        }
        checked.push({ source: candidate.source, tenantId: candidate.raw });
      }
      return checked;
    },

    resolve(request, candidates, authentication, mode, requestId) {
      // The JWT's tenant claim is a source too.
      const { token } = authentication;
      let claim: ResolvedCandidate | undefined;
      if (token !== undefined && token.tenantClaim !== undefined) {
        if (!isTenantId(token.tenantClaim)) {
          throw new MtPaasError(
            'UNAUTHENTICATED',
            `The token's "${tenantClaim}" claim is not a valid tenant id; sign in again.`,
          );
        }
        claim = { source: 'jwt-claim', tenantId: token.tenantClaim };
      }
      // Only a custom domain (a catalog lookup) or a refusal (an audit event) makes resolution wait.
      if (domainStrategy === undefined)
        return decide(request, candidates, authentication, claim, mode, requestId);
      return customDomain(request).then((owner) => {
        if (owner !== undefined) candidates.push(owner);
        return decide(request, candidates, authentication, claim, mode, requestId);
      });
    },
  };
}
