import { type Document, isMap, isPair, isScalar, isSeq, type Node, type Scalar } from 'yaml';

/** The environment `${VAR}` expressions read from. */
export type ConfigEnv = Readonly<Record<string, string | undefined>>;

/** One `${…}` problem inside a string. */
export interface InterpolationProblem {
  /** The variable name, or the malformed expression. */
  variable: string;
  kind: 'missing' | 'malformed';
}

// `$${` is an escaped literal `${`; `${NAME}`, `${NAME:-default}` (unset or empty → default),
// `${NAME-default}` (unset → default). Defaults are literal text and may contain balanced braces
// (`${URL:-postgresql://db/tenant_{tenant_id}}`); they are not interpolated again.
const BODY = /^([A-Za-z_][A-Za-z0-9_]*)(?:(:?-)(.*))?$/s;

/** Index of the `}` closing the `${` at `start`, counting nested braces; -1 when unclosed. */
function closingBrace(text: string, start: number): number {
  let depth = 0;
  for (let index = start + 2; index < text.length; index += 1) {
    const char = text[index];
    if (char === '{') depth += 1;
    else if (char === '}') {
      if (depth === 0) return index;
      depth -= 1;
    }
  }
  return -1;
}

/**
 * Replaces `${VAR}` / `${VAR:-default}` / `${VAR-default}` in `text` with values from `env`.
 * Missing variables (and malformed expressions) are left as written and listed in `problems`
 * (all of them, not just the first).
 */
export function interpolate(
  text: string,
  env: ConfigEnv,
): { value: string; problems: InterpolationProblem[] } {
  const problems: InterpolationProblem[] = [];
  let value = '';
  let index = 0;
  while (index < text.length) {
    const next = text.indexOf('$', index);
    if (next === -1) {
      value += text.slice(index);
      break;
    }
    value += text.slice(index, next);
    if (text.startsWith('$${', next)) {
      value += '${';
      index = next + 3;
      continue;
    }
    if (!text.startsWith('${', next)) {
      value += '$';
      index = next + 1;
      continue;
    }
    const end = closingBrace(text, next);
    if (end === -1) {
      problems.push({ variable: text.slice(next), kind: 'malformed' });
      value += text.slice(next);
      break;
    }
    const expression = text.slice(next, end + 1);
    index = end + 1;
    const parts = BODY.exec(text.slice(next + 2, end).trim());
    if (!parts) {
      problems.push({ variable: expression, kind: 'malformed' });
      value += expression;
      continue;
    }
    const [, name = '', operator, fallback = ''] = parts;
    const current = env[name];
    if (operator === ':-') value += current === undefined || current === '' ? fallback : current;
    else if (operator === '-') value += current === undefined ? fallback : current;
    else if (current === undefined) {
      problems.push({ variable: name, kind: 'missing' });
      value += expression;
    } else value += current;
  }
  return { value, problems };
}

/**
 * What a plain (unquoted) YAML scalar means once interpolated, following the YAML 1.2 core
 * schema: `${PORT}` with PORT=8080 is the number 8080, `${DEBUG:-false}` the boolean false,
 * an empty result null ("not set"). Quoted scalars always stay strings.
 */
export function resolvePlainScalar(text: string): unknown {
  const value = text.trim();
  if (/^(?:~|null|Null|NULL|)$/.test(value)) return null;
  if (/^(?:true|True|TRUE)$/.test(value)) return true;
  if (/^(?:false|False|FALSE)$/.test(value)) return false;
  if (/^[-+]?[0-9]+$/.test(value)) return Number.parseInt(value, 10);
  if (/^0x[0-9a-fA-F]+$/.test(value)) return Number.parseInt(value.slice(2), 16);
  if (/^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?$/.test(value))
    return Number.parseFloat(value);
  if (/^[-+]?\.(?:inf|Inf|INF)$/.test(value)) return value.startsWith('-') ? -Infinity : Infinity;
  return text;
}

/** A `${…}` problem located in a document. */
export interface LocatedInterpolationProblem extends InterpolationProblem {
  path: (string | number)[];
  /** Offset of the scalar in the source text. */
  offset: number;
}

/**
 * Interpolates every string scalar value of `document` in place (keys are left alone) and
 * returns every problem with its key path and source offset.
 */
export function interpolateDocument(document: Document, env: ConfigEnv): LocatedInterpolationProblem[] {
  const problems: LocatedInterpolationProblem[] = [];
  const seen = new Set<Node>();
  const walk = (node: unknown, path: (string | number)[]): void => {
    if (node === null || typeof node !== 'object' || seen.has(node as Node)) return;
    if (isScalar(node)) {
      seen.add(node);
      interpolateScalar(node, path, env, problems);
    } else if (isMap(node)) {
      seen.add(node);
      for (const pair of node.items) {
        if (!isPair(pair)) continue;
        const key = isScalar(pair.key) ? pair.key.value : pair.key;
        walk(pair.value, [...path, typeof key === 'number' ? key : String(key)]);
      }
    } else if (isSeq(node)) {
      seen.add(node);
      node.items.forEach((item, index) => {
        walk(item, [...path, index]);
      });
    }
  };
  walk(document.contents, []);
  return problems;
}

function interpolateScalar(
  node: Scalar,
  path: (string | number)[],
  env: ConfigEnv,
  problems: LocatedInterpolationProblem[],
): void {
  if (typeof node.value !== 'string' || !node.value.includes('${')) return;
  const result = interpolate(node.value, env);
  const offset = node.range?.[0] ?? 0;
  for (const problem of result.problems) problems.push({ ...problem, path, offset });
  if (result.problems.length > 0) return; // reported; the text stays as written
  // An interpolation that comes out empty means "not set" (`api_key: "${KEY:-}"`), quoted or not.
  if (result.value === '') node.value = null;
  else node.value = node.type === 'PLAIN' ? resolvePlainScalar(result.value) : result.value;
}
