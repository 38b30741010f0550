import { isAbsolute, resolve } from 'node:path';
import { isMap, isScalar, LineCounter, parseDocument } from 'yaml';
import type { z } from 'zod';
import { type ConfigIssue, configInvalidError, formatPath } from './config-error.js';
import { type ConfigEnv, interpolateDocument } from './interpolate.js';
import { deepMerge, dropNulls } from './merge.js';
import { createConfigSchema, type MtPaasConfig, mtPaasConfigSchema } from './schema.js';
import { locate, type ParsedSource } from './source-map.js';
import { knownKeysAt, suggestKey } from './suggest.js';

/** One YAML text of the config: the main file or an overlay. */
export interface ConfigSource {
  /** The YAML text. */
  text: string;
  /** Name shown in error messages (a path when read from disk). */
  filename: string;
}

/** Options of {@link parseConfig}. */
export interface ParseConfigOptions<Custom = Record<string, unknown>> {
  /** Name of the text in error messages (`file:line:column`). @default "mt-paas.yaml" */
  filename?: string;
  /** Variables for `${VAR}` / `${VAR:-default}`. @default process.env */
  env?: ConfigEnv;
  /** Overlays merged over the text in order (objects deep-merged, arrays and scalars replaced). */
  overlays?: readonly ConfigSource[];
  /** A zod schema for the `custom:` section; `config.custom` gets its output type. */
  customSchema?: z.ZodType<Custom>;
  /**
   * Directory relative paths in the config are resolved against
   * (`isolation.docker.compose_template`). Left as written when omitted.
   */
  baseDir?: string;
}

/**
 * Parses config text (plus optional overlays) into a validated {@link MtPaasConfig} — the
 * in-memory twin of `loadConfig`. Every problem (YAML syntax, unset `${VAR}`, schema) is reported
 * in one `MtPaasError('CONFIG_INVALID')` with `file:line:column` and the key path.
 *
 * @example
 * const config = parseConfig('marketplace:\n  api_url: https://market.example.com/api/v1\n', { env: {} });
 * config.marketplace.apiUrl; // 'https://market.example.com/api/v1'
 */
export function parseConfig<Custom = Record<string, unknown>>(
  text: string,
  options: ParseConfigOptions<Custom> = {},
): MtPaasConfig<Custom> {
  const sources: ConfigSource[] = [
    { text, filename: options.filename ?? 'mt-paas.yaml' },
    ...(options.overlays ?? []),
  ];
  return parseSources(sources, options);
}

/** Parses, interpolates, merges and validates `sources` (main file first, overlays after). */
export function parseSources<Custom = Record<string, unknown>>(
  sources: readonly ConfigSource[],
  options: Omit<ParseConfigOptions<Custom>, 'filename' | 'overlays'> = {},
): MtPaasConfig<Custom> {
  const env = options.env ?? process.env;
  const issues: ConfigIssue[] = [];
  const parsed: ParsedSource[] = [];
  const interpolatedPaths: string[] = [];

  for (const source of sources) {
    const lineCounter = new LineCounter();
    const document = parseDocument(source.text, { lineCounter, merge: true, prettyErrors: false });
    const entry: ParsedSource = { file: source.filename, document, lineCounter };
    parsed.push(entry);
    for (const error of document.errors) {
      const place = error.linePos?.[0] ?? lineCounter.linePos(error.pos[0]);
      issues.push({
        kind: 'yaml',
        file: source.filename,
        line: place.line,
        column: place.col,
        path: '',
        message: `YAML syntax error: ${error.message.split('\n')[0]}`,
      });
    }
    if (document.errors.length > 0) continue;
    if (isScalar(document.contents) && document.contents.value === null) document.contents = null;
    if (document.contents !== null && !isMap(document.contents)) {
      const place = lineCounter.linePos(document.contents.range?.[0] ?? 0);
      issues.push({
        kind: 'validation',
        file: source.filename,
        line: place.line,
        column: place.col,
        path: '',
        message: 'the top level must be a mapping of sections (service:, marketplace:, …)',
      });
      continue;
    }
    for (const problem of interpolateDocument(document, env)) {
      const place = lineCounter.linePos(problem.offset);
      const path = formatPath(problem.path);
      interpolatedPaths.push(path);
      issues.push({
        kind: 'interpolation',
        file: source.filename,
        line: place.line,
        column: place.col,
        path,
        variable: problem.variable,
        message:
          problem.kind === 'missing'
            ? `environment variable ${problem.variable} is not set; export it, or give a default with \${${problem.variable}:-default}`
            : `malformed expression "${problem.variable}"; write \${NAME} or \${NAME:-default} (and $\${ for a literal "\${")`,
      });
    }
  }
  if (issues.some((issue) => issue.kind === 'yaml' || issue.path === '')) throw configInvalidError(issues);

  let merged: unknown = {};
  for (const source of parsed)
    merged = deepMerge(merged, source.document.toJS({ maxAliasCount: 1000 }) ?? {});
  merged = dropNulls(merged);
  // Top-level `x-…` keys are extension fields (as in docker-compose): a home for YAML anchors.
  for (const key of Object.keys(merged as Record<string, unknown>)) {
    if (key.startsWith('x-')) delete (merged as Record<string, unknown>)[key];
  }

  const schema = (
    options.customSchema ? createConfigSchema(options.customSchema) : mtPaasConfigSchema
  ) as z.ZodType<MtPaasConfig<Custom>>;
  const result = schema.safeParse(merged, { error: describeIssue });
  if (!result.success) {
    for (const zodIssue of result.error.issues) {
      const entries =
        zodIssue.code === 'unrecognized_keys'
          ? zodIssue.keys.map((key) => ({ path: [...zodIssue.path, key], key }))
          : [{ path: zodIssue.path, key: undefined }];
      for (const entry of entries) {
        const path = formatPath(entry.path);
        // A value that failed interpolation is already reported; its emptiness is no news.
        if (interpolatedPaths.some((reported) => path === reported || path.startsWith(`${reported}.`)))
          continue;
        const location = locate(parsed, entry.path, { key: entry.key !== undefined });
        let message = zodIssue.message;
        if (entry.key !== undefined) {
          const known = knownKeysAt(schema, zodIssue.path);
          const suggestion = suggestKey(entry.key, known);
          message = `unknown key "${entry.key}"${suggestion ? `; did you mean "${suggestion}"?` : ''}${
            known.length > 0 && !suggestion ? ` (expected one of: ${known.join(', ')})` : ''
          }`;
        } else if (
          location &&
          !location.exact &&
          zodIssue.code === 'invalid_type' &&
          zodIssue.input === undefined
        ) {
          message = `is required (${message})`;
        }
        issues.push({
          kind: 'validation',
          file: location?.file ?? sources.at(-1)?.filename ?? 'mt-paas.yaml',
          ...(location ? { line: location.line, column: location.column } : {}),
          path,
          message,
        });
      }
    }
  }
  if (issues.length > 0 || !result.success) {
    const order = new Map(sources.map((source, index) => [source.filename, index]));
    issues.sort(
      (a, b) =>
        (order.get(a.file) ?? 0) - (order.get(b.file) ?? 0) ||
        (a.line ?? 0) - (b.line ?? 0) ||
        (a.column ?? 0) - (b.column ?? 0),
    );
    throw configInvalidError(issues);
  }

  const config = result.data;
  if (options.baseDir !== undefined && !isAbsolute(config.isolation.docker.composeTemplate)) {
    config.isolation.docker.composeTemplate = resolve(
      options.baseDir,
      config.isolation.docker.composeTemplate,
    );
  }
  return config;
}

function describeValue(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (typeof value === 'string')
    return `the string "${value.length > 40 ? `${value.slice(0, 40)}…` : value}"`;
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  return `${typeof value} ${String(value)}`;
}

const EXPECTED_NAMES: Record<string, string> = {
  object: 'a mapping (key: value)',
  record: 'a mapping (key: value)',
  array: 'a list',
  string: 'a string',
  number: 'a number',
  boolean: 'true or false',
};

/** Messages for issues no schema-level message covers. */
function describeIssue(issue: z.core.$ZodRawIssue): string | undefined {
  if (issue.code === 'invalid_type') {
    return `expected ${EXPECTED_NAMES[issue.expected] ?? issue.expected}, got ${describeValue(issue.input)}`;
  }
  if (issue.code === 'invalid_value') {
    return `expected ${issue.values.map((value) => JSON.stringify(value)).join(' or ')}, got ${describeValue(issue.input)}`;
  }
  return undefined;
}
