import { isAbsolute, relative } from 'node:path';
import { MtPaasError } from '@mt-paas/context';

/** One problem found in a config, with where it is. */
export interface ConfigIssue {
  /** `yaml` (syntax), `interpolation` (`${VAR}`), `validation` (schema) or `file` (missing/unreadable). */
  kind: 'yaml' | 'interpolation' | 'validation' | 'file';
  /** The file the problem is in (as given, or absolute when loaded from disk). */
  file: string;
  /** 1-based line, when the problem has a place in the file. */
  line?: number;
  /** 1-based column, when the problem has a place in the file. */
  column?: number;
  /** Key path in the YAML (snake_case, as written): `marketplace.api_key`, `tenant_identification.methods[1]`. */
  path: string;
  /** What is wrong and what to do. */
  message: string;
  /** For interpolation problems: the variable that is not set. */
  variable?: string;
}

/** Formats a key path: `['methods', 1, 'name']` → `methods[1].name`. */
export function formatPath(path: readonly PropertyKey[]): string {
  let result = '';
  for (const segment of path) {
    if (typeof segment === 'number') result += `[${segment}]`;
    else result += result === '' ? String(segment) : `.${String(segment)}`;
  }
  return result;
}

function displayFile(file: string): string {
  if (!isAbsolute(file)) return file;
  const fromCwd = relative(process.cwd(), file);
  return fromCwd.startsWith('..') || isAbsolute(fromCwd) ? file : fromCwd;
}

/** `file:line:column path: message` — one issue on one line. */
export function formatConfigIssue(issue: ConfigIssue): string {
  const place =
    issue.line === undefined
      ? displayFile(issue.file)
      : `${displayFile(issue.file)}:${issue.line}:${issue.column ?? 1}`;
  return issue.path === '' ? `${place} ${issue.message}` : `${place} ${issue.path}: ${issue.message}`;
}

/** The `CONFIG_INVALID` error listing every issue at once; `details.issues` holds them structured. */
export function configInvalidError(issues: readonly ConfigIssue[]): MtPaasError {
  const count = issues.length === 1 ? '1 problem' : `${issues.length} problems`;
  const message = [
    `mt-paas config is invalid (${count}); fix the following and start again:`,
    ...issues.map((issue) => `  - ${formatConfigIssue(issue)}`),
  ].join('\n');
  return new MtPaasError('CONFIG_INVALID', message, {
    details: { issues: issues.map((issue) => ({ ...issue })) },
  });
}

/** The issues of a `CONFIG_INVALID` error thrown by this package (empty for any other value). */
export function getConfigIssues(error: unknown): ConfigIssue[] {
  if (!MtPaasError.isInstance(error) || error.code !== 'CONFIG_INVALID') return [];
  const issues = error.details?.issues;
  return Array.isArray(issues) ? (issues as ConfigIssue[]) : [];
}
