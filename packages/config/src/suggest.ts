import { camelCase, snakeCase } from './primitives.js';

interface SchemaLike {
  _zod: { def: Record<string, unknown> & { type: string } };
}

function isSchema(value: unknown): value is SchemaLike {
  return typeof value === 'object' && value !== null && '_zod' in value;
}

/** The object schemas a path may lead to inside `schema` (through pipes, defaults, unions …). */
function objectsAt(schema: unknown, path: readonly PropertyKey[]): SchemaLike[] {
  if (!isSchema(schema)) return [];
  const def = schema._zod.def;
  switch (def.type) {
    case 'pipe':
      return [...objectsAt(def.in, path), ...objectsAt(def.out, path)];
    case 'default':
    case 'prefault':
    case 'optional':
    case 'nullable':
    case 'readonly':
    case 'catch':
    case 'nonoptional':
      return objectsAt(def.innerType, path);
    case 'union':
      return (def.options as unknown[]).flatMap((option) => objectsAt(option, path));
    case 'array':
      return typeof path[0] === 'number' ? objectsAt(def.element, path.slice(1)) : [];
    case 'record':
      return path.length === 0 ? [] : objectsAt(def.valueType, path.slice(1));
    case 'object': {
      if (path.length === 0) return [schema];
      const shape = def.shape as Record<string, unknown>;
      const next = shape[String(path[0])];
      return next === undefined ? [] : objectsAt(next, path.slice(1));
    }
    default:
      return [];
  }
}

/** The keys the object at `path` of `schema` accepts. */
export function knownKeysAt(schema: unknown, path: readonly PropertyKey[]): string[] {
  const keys = new Set<string>();
  for (const object of objectsAt(schema, path)) {
    for (const key of Object.keys(object._zod.def.shape as Record<string, unknown>)) keys.add(key);
  }
  return [...keys];
}

function distance(a: string, b: string): number {
  const previous = Array.from({ length: b.length + 1 }, (_, index) => index);
  for (let i = 1; i <= a.length; i += 1) {
    let diagonal = previous[0]!;
    previous[0] = i;
    for (let j = 1; j <= b.length; j += 1) {
      const above = previous[j]!;
      previous[j] = Math.min(above + 1, previous[j - 1]! + 1, diagonal + (a[i - 1] === b[j - 1] ? 0 : 1));
      diagonal = above;
    }
  }
  return previous[b.length]!;
}

/**
 * The known key `unknown` was probably meant to be: its snake_case spelling (`apiUrl` →
 * `api_url`), or the closest key within a small edit distance.
 */
export function suggestKey(unknown: string, known: readonly string[]): string | undefined {
  const snake = snakeCase(unknown);
  if (known.includes(snake)) return snake;
  let best: { key: string; score: number } | undefined;
  for (const key of known) {
    const score = Math.min(
      distance(unknown.toLowerCase(), key),
      distance(camelCase(unknown), camelCase(key)),
    );
    if (!best || score < best.score) best = { key, score };
  }
  return best && best.score <= Math.max(1, Math.floor(unknown.length / 3)) ? best.key : undefined;
}
