import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';

const packageDir = fileURLToPath(new URL('..', import.meta.url));
// The CLI is built from the current sources (JS only, no .d.ts: seconds, not half a minute) into a
// cache directory inside the package, so it resolves its dependencies like the published bin.
const buildDir = join(packageDir, 'node_modules/.cache/mt-paas-config-cli-test');
const cli = join(buildDir, 'cli.js');
const seed = fileURLToPath(new URL('./__fixtures__/seed-001.yaml', import.meta.url));
const seedEnv = {
  MARKETPLACE_API_KEY: 'mk_live_123',
  JWT_SECRET: 'jwt-secret-value',
  AES_SECRET_KEY: '0123456789abcdef0123456789abcdef',
};

function buildCli(): void {
  execFileSync(
    join(packageDir, 'node_modules/.bin/tsup'),
    [
      'src/cli.ts',
      '--no-config',
      '--format',
      'esm',
      '--platform',
      'node',
      '--target',
      'node20',
      '--out-dir',
      buildDir,
    ],
    { cwd: packageDir, stdio: 'pipe' },
  );
}

function run(args: string[], options: { env?: Record<string, string>; cwd?: string } = {}) {
  const { MT_PAAS_ENV: _ignored, NODE_ENV: _ignoredToo, ...inherited } = process.env;
  const result = spawnSync(process.execPath, [cli, ...args], {
    cwd: options.cwd ?? packageDir,
    env: { ...inherited, ...options.env },
    encoding: 'utf8',
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

let directory: string;
beforeAll(() => {
  buildCli();
  directory = mkdtempSync(join(tmpdir(), 'mt-paas-cli-'));
}, 120_000);
afterAll(() => {
  rmSync(directory, { recursive: true, force: true });
});

describe('mt-paas-config check', () => {
  it('is the package bin and starts with a shebang', () => {
    const manifest = JSON.parse(readFileSync(join(packageDir, 'package.json'), 'utf8'));
    expect(manifest.bin).toEqual({ 'mt-paas-config': './dist/cli.js' });
    expect(readFileSync(cli, 'utf8').split('\n')[0]).toBe('#!/usr/bin/env node');
  });

  it('prints the resolved, redacted config as YAML and exits 0', () => {
    const result = run(['check', seed, '--env', 'dev'], { env: seedEnv });
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    expect(result.stdout).toContain('# files: ');
    expect(result.stdout).toContain('seed-001.dev.yaml');
    expect(result.stdout).toContain('# environment: dev');
    const printed = parse(result.stdout);
    expect(printed.marketplace.apiUrl).toBe('http://localhost:8505/api/v1');
    expect(printed.marketplace.apiKey).toBe('[redacted]');
    expect(printed.auth.jwt.secret).toBe('[redacted]');
    expect(printed.logging.level).toBe('debug');
    expect(result.stdout).not.toContain('mk_live_123');
    expect(result.stdout).not.toContain('jwt-secret-value');
  });

  it('prints JSON with --format json', () => {
    const result = run(['check', seed, '--format', 'json'], { env: { ...seedEnv, MT_PAAS_ENV: 'prod' } });
    expect(result.status).toBe(0);
    const printed = JSON.parse(result.stdout);
    expect(printed.database.central.poolSize).toBe(50);
    expect(printed.security.encryption.key).toBe('[redacted]');
  });

  it('lists every problem with file:line:column and exits 1', () => {
    const result = run(['check', seed]);
    expect(result.status).toBe(1);
    expect(result.stdout).toBe('');
    expect(result.stderr).toContain('3 problems');
    expect(result.stderr).toMatch(
      /seed-001\.yaml:17:12 marketplace\.api_key: environment variable MARKETPLACE_API_KEY/,
    );
    expect(result.stderr).toMatch(/seed-001\.yaml:82:13 auth\.jwt\.secret: environment variable JWT_SECRET/);
    expect(result.stderr).toMatch(
      /seed-001\.yaml:117:10 security\.encryption\.key: environment variable AES_SECRET_KEY/,
    );
  });

  it('reports validation errors of a file', () => {
    const file = join(directory, 'bad.yaml');
    writeFileSync(file, 'isolation:\n  mode: TABLE_PER_TENANT\n');
    const result = run(['check', file]);
    expect(result.status).toBe(1);
    expect(result.stderr).toContain('bad.yaml:2:9 isolation.mode: unknown isolation mode "TABLE_PER_TENANT"');
  });

  it('checks the built-in defaults in a directory without a config', () => {
    const result = run(['check'], { cwd: directory });
    expect(result.status).toBe(0);
    expect(result.stdout).toContain('(none: built-in defaults)');
    expect(run(['check', '--env', 'qa'], { cwd: directory }).stdout).toContain(
      '# environment: qa (no overlay file for it)',
    );
    expect(parse(result.stdout).isolation.mode).toBe('row');
  });

  it('exits 2 on wrong usage', () => {
    expect(run([]).status).toBe(2);
    expect(run(['lint', seed]).stderr).toContain('unknown command "lint"');
    expect(run(['check', seed, '--format', 'xml']).status).toBe(2);
    expect(run(['check', seed, '--bogus']).status).toBe(2);
    const help = run(['--help']);
    expect(help.status).toBe(0);
    expect(help.stdout).toContain('Usage: mt-paas-config check');
  });

  it('exits 1 for a file that does not exist', () => {
    const result = run(['check', join(directory, 'missing.yaml')]);
    expect(result.status).toBe(1);
    expect(result.stderr).toContain('config file not found');
  });
});
