/** True for a plain `{}` object (not an array, not null, not a class instance like Date). */
export function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null) return false;
  const prototype = Object.getPrototypeOf(value);
  return prototype === Object.prototype || prototype === null;
}

/**
 * Deep-merges `override` over `base` the way overlays work: objects merge key by key, anything
 * else (arrays, scalars, `null`) replaces the base value; an `undefined` override keeps the base.
 * Neither input is modified.
 */
export function deepMerge(base: unknown, override: unknown): unknown {
  if (override === undefined) return clone(base);
  if (isPlainObject(base) && isPlainObject(override)) {
    const result: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(base)) result[key] = clone(value);
    for (const [key, value] of Object.entries(override)) {
      result[key] = key in result ? deepMerge(result[key], value) : clone(value);
    }
    return result;
  }
  return clone(override);
}

/** A structural copy of plain objects and arrays (other values are shared). */
export function clone<T>(value: T): T {
  if (Array.isArray(value)) return value.map((item) => clone(item)) as T;
  if (isPlainObject(value)) {
    const result: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(value)) result[key] = clone(item);
    return result as T;
  }
  return value;
}

/**
 * Where a YAML `null` (`key:` with nothing after it, `~`, `null`) keeps a meaning instead of
 * meaning "not set, use the default".
 */
function nullIsMeaningful(path: readonly (string | number)[]): boolean {
  const [section, , field, , quotaField] = path;
  if (section === 'custom') return true;
  if (section !== 'plans') return false;
  if (path.length === 2) return true; // plans.<plan>: null removes the plan
  if (path.length === 3 && field === 'rpm') return true; // unlimited
  if (path.length === 4 && field === 'quotas') return true; // plans.<plan>.quotas.<meter>: null → unlimited
  return path.length === 5 && field === 'quotas' && quotaField === 'limit';
}

/**
 * Removes keys whose value is `null` so that the schema default applies (an empty `api_key:` is
 * "not set"), except where `null` means something (`custom`, removing a plan, unlimited limits).
 */
export function dropNulls(value: unknown, path: (string | number)[] = []): unknown {
  if (Array.isArray(value)) return value.map((item, index) => dropNulls(item, [...path, index]));
  if (!isPlainObject(value)) return value;
  if (path[0] === 'custom') return value;
  const result: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value)) {
    const itemPath = [...path, key];
    if (item === null && !nullIsMeaningful(itemPath)) continue;
    result[key] = dropNulls(item, itemPath);
  }
  return result;
}
