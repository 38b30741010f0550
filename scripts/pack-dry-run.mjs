#!/usr/bin/env node
// Packs every published package (`pnpm -r pack`) into a temp dir, as `changeset publish` would, and fails
// if a packed package.json still holds a `workspace:` or `catalog:` range.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const destination = mkdtempSync(join(tmpdir(), 'mt-paas-pack-'));
let failures = 0;
try {
  execFileSync('pnpm', ['-r', '--filter', './packages/*', 'pack', '--pack-destination', destination], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const tarballs = readdirSync(destination).filter((file) => file.endsWith('.tgz'));
  if (tarballs.length === 0) {
    console.error('pack dry run: no package was packed');
    process.exit(1);
  }
  for (const tarball of tarballs) {
    const manifest = JSON.parse(
      execFileSync('tar', ['-xzOf', join(destination, tarball), 'package/package.json'], {
        encoding: 'utf8',
      }),
    );
    const files = execFileSync('tar', ['-tzf', join(destination, tarball)], { encoding: 'utf8' })
      .trim()
      .split('\n');
    const problems = [];
    for (const field of ['dependencies', 'peerDependencies', 'optionalDependencies', 'devDependencies']) {
      for (const [name, range] of Object.entries(manifest[field] ?? {})) {
        if (/^(workspace|catalog):/.test(String(range))) problems.push(`${field}.${name} = ${range}`);
      }
    }
    if (!files.some((file) => file.startsWith('package/dist/')))
      problems.push('no dist/ in the tarball (build first)');
    if (manifest.private) problems.push('a private package was packed');
    if (problems.length > 0) {
      failures += 1;
      console.error(`✗ ${tarball}\n  ${problems.join('\n  ')}`);
    } else {
      console.log(`✓ ${manifest.name}@${manifest.version} (${files.length} files)`);
    }
  }
} finally {
  rmSync(destination, { recursive: true, force: true });
}
console.log(`pack dry run: ${failures === 0 ? 'ok' : `${failures} package(s) failed`}`);
process.exit(failures === 0 ? 0 : 1);
