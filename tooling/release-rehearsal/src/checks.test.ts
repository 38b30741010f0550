import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  discoverPackages,
  importedPackages,
  lookUp,
  manifestProblems,
  missingSmoke,
  SCENARIOS,
  SMOKE,
  undeclaredImports,
} from '../../../scripts/release-rehearsal.mjs';

const root = resolve(import.meta.dirname, '../../..');
const temps: string[] = [];

function tempTree(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'mt-paas-rehearsal-unit-'));
  temps.push(dir);
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), text);
  }
  return dir;
}

afterEach(() => {
  for (const dir of temps.splice(0)) rmSync(dir, { recursive: true, force: true });
});

describe('importedPackages', () => {
  it('finds every form of bare import, reduced to the package name', () => {
    const source = [
      "import { jwtVerify } from 'jose';",
      'import pino from "pino";',
      "import * as z from 'zod/v4';",
      "import type { Pool } from 'pg';",
      "export { x } from '@scope/a/deep/path.js';",
      "export * from '@scope/b';",
      "import 'side-effect';",
      "const lazy = await import('lazy-dep');",
      "const cjs = require('cjs-dep/sub');",
      'import {\n  a,\n  b,\n} from "multi-line";',
    ].join('\n');
    expect([...importedPackages(source)].sort()).toEqual(
      [
        '@scope/a',
        '@scope/b',
        'cjs-dep',
        'jose',
        'lazy-dep',
        'multi-line',
        'pg',
        'pino',
        'side-effect',
        'zod',
      ].sort(),
    );
  });

  it('ignores relative paths, absolute paths and Node built-ins with or without node:', () => {
    const source = [
      "import { a } from './chunk-ABC.js';",
      "import b from '../b.js';",
      "import c from '/abs/c.js';",
      "import { readFileSync } from 'node:fs';",
      "import { EventEmitter } from 'events';",
      "import test from 'node:test';",
      "const d = await import('./lazy.js');",
    ].join('\n');
    expect([...importedPackages(source)]).toEqual([]);
  });

  it('does not read the word "import" inside strings, types or property names as an import', () => {
    // What @mt-paas/provisioning's dist/ holds (its lifecycle has an "import" action): before the fix, the text
    // between two such string literals was reported as an undeclared package.
    const source = [
      'if (action === "import")',
      '  return "Import restores an archive";',
      'planTransition("import", tenantId, existing.status);',
      'const job = await jobLog.start(tenantId, "import", {',
      '  status: "provisioning" });',
      "type LifecycleAction = 'move' | 'import';",
      "/** One row of the lifecycle table: 'from' */",
      // biome-ignore lint/suspicious/noTemplateCurlyInString: the scanned source holds a template literal
      "const text = `import ${name} from 'x'`;",
      "loader.import('not-a-module'); loader.require('neither');",
      "export const names = { export: 'x', from: 'y' };",
      "import { real } from 'real-dep';",
    ].join('\n');
    expect([...importedPackages(source)]).toEqual(['real-dep']);
  });
});

describe('undeclaredImports', () => {
  it('reports what dist/ imports without declaring it, also inside an installed node_modules folder', () => {
    const dir = tempTree({
      'node_modules/@mt-paas/demo/package.json': JSON.stringify({
        name: '@mt-paas/demo',
        version: '1.0.0',
        dependencies: { zod: '^4.0.0' },
        peerDependencies: { fastify: '>=5' },
        devDependencies: { jose: '^6.0.0' },
      }),
      'node_modules/@mt-paas/demo/dist/index.js':
        "import { z } from 'zod';\nimport { jwtVerify } from 'jose';\n",
      'node_modules/@mt-paas/demo/dist/fastify.js':
        "import fp from 'fastify';\nimport self from '@mt-paas/demo';\n",
      'node_modules/@mt-paas/demo/dist/index.d.ts': "import type { Logger } from 'pino';\n",
      'node_modules/@mt-paas/demo/node_modules/nested/index.js': "import 'not-ours';\n",
    });
    const found = undeclaredImports(join(dir, 'node_modules/@mt-paas/demo'));
    expect(found).toEqual(
      expect.arrayContaining([
        { file: join('dist', 'index.js'), name: 'jose' },
        { file: join('dist', 'index.d.ts'), name: 'pino' },
      ]),
    );
    expect(found).toHaveLength(2);
  });

  it('finds nothing undeclared in the packages as built in this workspace', () => {
    for (const pkg of discoverPackages(root).values()) {
      expect({ pkg: pkg.name, undeclared: undeclaredImports(join(root, pkg.dir)) }).toEqual({
        pkg: pkg.name,
        undeclared: [],
      });
    }
  });
});

describe('lookUp', () => {
  it("follows Node's node_modules lookup, so a dependency hoisted into a parent folder is seen as outside", () => {
    const dir = tempTree({
      'outer/node_modules/leaked/package.json': '{"name":"leaked"}',
      'outer/app/node_modules/@mt-paas/db/package.json': '{"name":"@mt-paas/db"}',
      'outer/app/node_modules/@mt-paas/db/node_modules/nested/package.json': '{"name":"nested"}',
      'outer/app/node_modules/pg/package.json': '{"name":"pg"}',
    });
    const installed = join(dir, 'outer/app/node_modules/@mt-paas/db');
    expect(lookUp(installed, 'nested')).toBe(join(installed, 'node_modules/nested'));
    expect(lookUp(installed, 'pg')).toBe(join(dir, 'outer/app/node_modules/pg'));
    expect(lookUp(installed, 'leaked')).toBe(join(dir, 'outer/node_modules/leaked'));
    expect(lookUp(installed, 'absent-package-for-the-test')).toBeUndefined();
  });
});

describe('manifestProblems', () => {
  const published = new Map([
    ['@mt-paas/context', '1.0.0'],
    ['@mt-paas/db', '0.1.0'],
  ]);

  it('accepts real ranges that point at what was just published', () => {
    expect(
      manifestProblems(
        {
          name: '@mt-paas/middleware',
          version: '0.1.0',
          dependencies: { '@mt-paas/context': '^1.0.0', jose: '^6.2.17' },
          peerDependencies: { fastify: '>=5.0.0' },
          devDependencies: { '@mt-paas/db': '0.0.0' },
        },
        published,
      ),
    ).toEqual([]);
  });

  it('flags workspace:, catalog:, link: and file: ranges in every field', () => {
    const problems = manifestProblems(
      {
        name: '@mt-paas/x',
        version: '1.0.0',
        dependencies: { '@mt-paas/context': 'workspace:^', zod: 'catalog:' },
        peerDependencies: { local: 'link:../local' },
        devDependencies: { tool: 'file:../tool', '@mt-paas/db': 'workspace:*' },
      },
      published,
    );
    expect(problems).toHaveLength(5);
    for (const name of ['@mt-paas/context', 'zod', 'local', 'tool', '@mt-paas/db']) {
      expect(problems.some((problem) => problem.includes(name))).toBe(true);
    }
  });

  it('flags an internal range that misses the version just published', () => {
    for (const range of ['^0.0.0', '^0.1.0', '>=0.0.0', '*', '1.0.1']) {
      expect(
        manifestProblems(
          { name: '@mt-paas/x', version: '1.0.0', dependencies: { '@mt-paas/context': range } },
          published,
        ),
      ).toEqual([expect.stringContaining('does not point at the version just published (1.0.0)')]);
    }
  });
});

describe('smoke registry', () => {
  it('requires a scenario for a package added under packages/ (e.g. a new @mt-paas/analytics)', () => {
    const repo = tempTree({
      'packages/context/package.json': JSON.stringify({ name: '@mt-paas/context', version: '1.0.0' }),
      'packages/analytics/package.json': JSON.stringify({
        name: '@mt-paas/analytics',
        version: '0.0.0',
        dependencies: { '@mt-paas/context': 'workspace:^', fastify: '^5.0.0' },
      }),
      'packages/internal/package.json': JSON.stringify({ name: '@mt-paas/internal', private: true }),
    });
    const packages = discoverPackages(repo);
    expect([...packages.keys()].sort()).toEqual(['@mt-paas/analytics', '@mt-paas/context']);
    expect(packages.get('@mt-paas/analytics')?.internal).toEqual(['@mt-paas/context']);
    expect(missingSmoke(packages.keys())).toEqual(['@mt-paas/analytics']);
    expect(missingSmoke(['toString', 'constructor'])).toEqual(['toString', 'constructor']);
  });

  it('has an entry for every published package and only names defined scenarios', () => {
    for (const name of discoverPackages(root).keys()) expect(SMOKE[name], name).toBeDefined();
    for (const [name, entry] of Object.entries(SMOKE)) {
      for (const id of entry.scenarios) {
        expect(SCENARIOS[id], `${name} → ${id}`).toBeDefined();
        expect(SCENARIOS[id]?.packages).toContain(name);
      }
    }
  });
});
