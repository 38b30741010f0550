import type { RouteMatching, RoutePolicy } from './http-types.js';

/** A route policy for paths matched by method and path (for adapters without route config). */
export interface RouteRule {
  /** One or more methods (`GET` also covers `HEAD`); all when omitted. */
  method?: string | readonly string[];
  /**
   * An exact route path, a prefix ending in `/*`, or a RegExp, matched against the route the framework
   * runs (Fastify: the route template such as `/courses/:id`; Express and Hono: the path their router
   * sees), compared the way that framework compares.
   */
  path: string | RegExp;
  policy: RoutePolicy;
}

/** `path` as the framework compares it: lower-cased and without a trailing slash when it does not care. */
function foldPath(path: string, matching: RouteMatching | undefined): string {
  let folded = matching?.caseSensitive === false ? path.toLowerCase() : path;
  if (matching?.strictTrailingSlash === false && folded.length > 1 && folded.endsWith('/'))
    folded = folded.slice(0, -1);
  return folded;
}

/**
 * Whether a rule covers a request: the method (a GET rule covers HEAD) and the path the framework routes on,
 * compared the way the framework compares (see `PipelineRequest.routePath`).
 */
export function matchesRule(
  rule: RouteRule,
  method: string,
  path: string,
  matching: RouteMatching | undefined,
): boolean {
  if (rule.method !== undefined) {
    const methods = typeof rule.method === 'string' ? [rule.method] : rule.method;
    // Every framework answers HEAD with the GET handler: a GET rule covers HEAD.
    const asked = method.toUpperCase();
    const covers = (candidate: string) =>
      candidate.toUpperCase() === asked || (candidate.toUpperCase() === 'GET' && asked === 'HEAD');
    if (!methods.some(covers)) return false;
  }
  const candidate = foldPath(path, matching);
  if (rule.path instanceof RegExp) return rule.path.test(candidate);
  if (rule.path.endsWith('/*')) {
    const prefix = foldPath(rule.path.slice(0, -1), { caseSensitive: matching?.caseSensitive ?? true });
    return candidate.startsWith(prefix) || candidate === prefix.slice(0, -1);
  }
  return candidate === foldPath(rule.path, matching);
}
