import { existsSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { defineConfig, type TestProjectInlineConfiguration } from 'vitest/config';

/**
 * One project pair per workspace package:
 * - `unit:<name>`  — `src/**\/*.test.ts`, no servers, also run under Node 24 in CI;
 * - `int:<name>`   — `src/**\/*.int.test.ts`, talks to Postgres / Redis / RabbitMQ through
 *   `tooling/test-env` (its globalSetup picks the backend and prints which one).
 */
const root = import.meta.dirname;
const testEnvSetup = resolve(root, 'tooling/test-env/src/global-setup.ts');

function workspaceDirs(): string[] {
  const dirs: string[] = [];
  for (const group of ['packages', 'apps', 'tooling']) {
    const groupDir = join(root, group);
    if (!existsSync(groupDir)) continue;
    for (const entry of readdirSync(groupDir, { withFileTypes: true })) {
      if (entry.isDirectory() && existsSync(join(groupDir, entry.name, 'src'))) {
        dirs.push(join(group, entry.name));
      }
    }
  }
  // the end-to-end package at the root (pnpm start and the suites over both apps)
  if (existsSync(join(root, 'e2e', 'src'))) dirs.push('e2e');
  return dirs;
}

const projects: TestProjectInlineConfiguration[] = workspaceDirs().flatMap((dir) => {
  const name = dir.split('/').pop()!;
  return [
    {
      test: {
        name: `unit:${name}`,
        root: resolve(root, dir),
        include: ['src/**/*.test.ts'],
        exclude: ['src/**/*.int.test.ts', '**/node_modules/**', '**/dist/**'],
        testTimeout: 20_000,
      },
    },
    {
      test: {
        name: `int:${name}`,
        root: resolve(root, dir),
        include: ['src/**/*.int.test.ts'],
        globalSetup: existsSync(testEnvSetup) ? [testEnvSetup] : [],
        testTimeout: 60_000,
        hookTimeout: 120_000,
      },
    },
  ];
});

// CI asks for a JSON report beside the console output (to print the pass/fail counts in its summary).
const report = process.env.MT_PAAS_TEST_REPORT;

export default defineConfig({
  test: {
    projects,
    passWithNoTests: false,
    reporters: report ? ['default', ['json', { outputFile: report }]] : ['default'],
  },
});
