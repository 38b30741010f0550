import { execFile, execFileSync } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/**
 * The release rehearsal must fail when a package would install broken. These tests rehearse a scratch copy of
 * the workspace (`--repo`), limited to @mt-paas/middleware and what it depends on (`--only`), once as it is and
 * once with `jose` deleted from middleware's dependencies while its code still imports it.
 */
const root = resolve(import.meta.dirname, '../../..');
const script = join(root, 'scripts/release-rehearsal.mjs');
const middlewareDist = join(root, 'packages/middleware/dist');

interface Rehearsal {
  code: number;
  output: string;
}

function rehearse(repo: string): Promise<Rehearsal> {
  return new Promise((done) => {
    execFile(
      process.execPath,
      [script, '--repo', repo, '--only', '@mt-paas/middleware', '--no-docs', '--no-node24'],
      { cwd: repo, maxBuffer: 64 * 1024 * 1024, timeout: 280_000 },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === 'number' ? error.code : 1;
        done({ code, output: `${stdout}\n${stderr}` });
      },
    );
  });
}

/** A copy of the working tree (tracked and untracked files, not ignored ones) with each package's dist/. */
function copyWorkspace(destination: string): void {
  const files = execFileSync('git', ['ls-files', '-co', '--exclude-standard', '-z'], {
    cwd: root,
    encoding: 'utf8',
  })
    .split('\0')
    .filter(Boolean);
  for (const file of files) {
    const from = join(root, file);
    if (!existsSync(from) || statSync(from).isDirectory()) continue;
    mkdirSync(dirname(join(destination, file)), { recursive: true });
    cpSync(from, join(destination, file));
  }
  for (const name of ['context', 'middleware']) {
    cpSync(join(root, 'packages', name, 'dist'), join(destination, 'packages', name, 'dist'), {
      recursive: true,
    });
  }
}

describe.skipIf(!existsSync(middlewareDist))(
  'release rehearsal (scratch copy, --only @mt-paas/middleware)',
  () => {
    let scratch: string;
    let manifestPath: string;
    let manifest: string;

    beforeAll(() => {
      scratch = mkdtempSync(join(tmpdir(), 'mt-paas-rehearsal-test-'));
      copyWorkspace(scratch);
      manifestPath = join(scratch, 'packages/middleware/package.json');
      manifest = readFileSync(manifestPath, 'utf8');
    });

    afterAll(() => {
      if (scratch) rmSync(scratch, { recursive: true, force: true });
    });

    it('passes for the package as it is (the control)', { timeout: 300_000 }, async () => {
      const result = await rehearse(scratch);
      expect(result.output).toContain('release rehearsal OK');
      expect(result.output).toMatch(/✓ alone-middleware/);
      expect(result.output).toMatch(/✓ fastify-tenant-app/);
      expect(result.output).toMatch(/published @mt-paas\/middleware@\d+\.\d+\.\d+/);
      expect(result.code).toBe(0);
    });

    it('fails, naming the package and the dependency, when middleware no longer declares jose', {
      timeout: 300_000,
    }, async () => {
      const broken = JSON.parse(manifest) as { dependencies: Record<string, string> };
      expect(broken.dependencies.jose).toBeDefined();
      delete broken.dependencies.jose;
      writeFileSync(manifestPath, `${JSON.stringify(broken, null, 2)}\n`);
      try {
        const result = await rehearse(scratch);
        expect(result.code).toBe(1);
        expect(result.output).toContain('release rehearsal FAILED');
        const failed = result.output.slice(result.output.indexOf('\nFAILED:'));
        expect(failed).toMatch(/✗ @mt-paas\/middleware\n/);
        expect(failed).toMatch(
          /dist\/\S+\.js imports "jose", which is not in its dependencies or peerDependencies/,
        );
        expect(failed).not.toMatch(/✗ @mt-paas\/context\n/);
      } finally {
        writeFileSync(manifestPath, manifest);
      }
    });
  },
);
