import { expect } from 'vitest';
import { randomSuffix, slug } from './run-id.js';

/** Path of the test file being collected or run, when vitest knows it. */
export function currentTestFile(): string | undefined {
  try {
    return expect.getState().testPath ?? undefined;
  } catch {
    return undefined;
  }
}

/** Short readable name of the current test file: `tenant-cache` for `src/tenant-cache.int.test.ts`. */
export function currentFileLabel(fallback: string): string {
  const file = currentTestFile();
  if (!file) return fallback;
  const base = file.split(/[\\/]/).pop() ?? file;
  return base.replace(/\.(int\.)?(test|spec)\.[cm]?[jt]sx?$/, '') || fallback;
}

const scopes = new Map<string, string>();

/**
 * A token unique to the current test file (and `label`) within this run: the same on every call from
 * one file, different between files. Vitest runs each file in a fresh module graph, and the map is
 * also keyed by file path for runs with `isolate: false`.
 */
export function fileScopeToken(label: string | undefined): string {
  const key = `${currentTestFile() ?? ''}\u0000${label ?? ''}`;
  let token = scopes.get(key);
  if (!token) {
    token = `${slug(label ?? currentFileLabel('file'), 20)}_${randomSuffix(6)}`;
    scopes.set(key, token);
  }
  return token;
}
