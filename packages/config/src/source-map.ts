import { type Document, isAlias, isMap, isPair, isScalar, isSeq, type LineCounter, type Node } from 'yaml';

/** One parsed file of the config: the main file or an overlay. */
export interface ParsedSource {
  file: string;
  document: Document;
  lineCounter: LineCounter;
}

/** Where a key path is: file and 1-based line/column. */
export interface SourceLocation {
  file: string;
  line: number;
  column: number;
  /** False when only an ancestor of the path was found (the path itself is not in any file). */
  exact: boolean;
}

function keyOf(node: unknown): unknown {
  return isScalar(node) ? node.value : node;
}

/**
 * Walks `path` in one document. Returns the deepest node reached, its depth, and — when the
 * last step was a map key — that key node.
 */
function walk(source: ParsedSource, path: readonly PropertyKey[]) {
  let node: unknown = source.document.contents;
  let reached: { node: Node; key?: Node } | undefined =
    isMap(node) || isSeq(node) ? { node: node as Node } : undefined;
  let depth = 0;
  for (const segment of path) {
    if (isAlias(node)) node = node.resolve(source.document);
    if (isMap(node)) {
      const pairs = node.items.filter(isPair);
      const pair =
        pairs.find((item) => keyOf(item.key) === segment) ??
        pairs.find(
          (item) =>
            typeof segment === 'string' && String(keyOf(item.key)).toLowerCase() === segment.toLowerCase(),
        );
      if (!pair) break;
      node = pair.value;
      reached = { node: (pair.value ?? pair.key) as Node, key: pair.key as Node };
    } else if (isSeq(node) && typeof segment === 'number') {
      const item = node.items[segment];
      if (item === undefined) break;
      node = item;
      reached = { node: item as Node };
    } else {
      break;
    }
    depth += 1;
  }
  return { reached, depth };
}

/**
 * Finds where `path` is written, looking at the last file first (an overlay wins over the main
 * file, as in the merge). With `key: true` the position is that of the key rather than its value.
 * Falls back to the deepest ancestor found, then to the start of the last file.
 */
export function locate(
  sources: readonly ParsedSource[],
  path: readonly PropertyKey[],
  options: { key?: boolean } = {},
): SourceLocation | undefined {
  let best: { source: ParsedSource; node: Node; depth: number } | undefined;
  for (let index = sources.length - 1; index >= 0; index -= 1) {
    const source = sources[index]!;
    const { reached, depth } = walk(source, path);
    if (!reached) continue;
    const exact = depth === path.length;
    if (exact) return position(source, options.key && reached.key ? reached.key : reached.node, true);
    // The path ends below what is written: point at the key of the deepest ancestor found.
    const node = reached.key ?? reached.node;
    if (!best || depth > best.depth) best = { source, node, depth };
  }
  if (best) return position(best.source, best.node, false);
  const last = sources.at(-1);
  return last ? { file: last.file, line: 1, column: 1, exact: false } : undefined;
}

function position(source: ParsedSource, node: Node, exact: boolean): SourceLocation {
  const offset = node.range?.[0] ?? 0;
  const { line, col } = source.lineCounter.linePos(offset);
  return { file: source.file, line, column: col, exact };
}
