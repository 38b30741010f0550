import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createCatalog, ensureAppRole } from '@mt-paas/db';
import {
  createAppRole,
  describeWithPostgres,
  testBackend,
  useTestDatabase,
  withDatabase,
} from '@mt-paas/test-env';
import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { FIXTURE_MIGRATIONS } from './__fixtures__/environment.js';

const CLI = fileURLToPath(new URL('../dist/cli.js', import.meta.url));
const HOOKS = fileURLToPath(new URL('./__fixtures__/cli-hooks.mjs', import.meta.url));
const TEMPLATES = fileURLToPath(new URL('../../../templates/', import.meta.url));

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

describeWithPostgres('the mt-paas CLI (built, run as a child process)', () => {
  const database = useTestDatabase({ label: 'cli' });
  let folder: string;
  let env: NodeJS.ProcessEnv;
  let appUrl: string;
  const databasePrefix = `mtp_t_${testBackend().runId}_clitenant_`;

  const run = (args: string[], extraEnv: NodeJS.ProcessEnv = {}): Promise<Run> =>
    new Promise((resolvePromise) => {
      execFile(
        process.execPath,
        [CLI, '--config', join(folder, 'mt-paas.yaml'), ...args],
        { env: { ...env, ...extraEnv }, cwd: folder, timeout: 60_000 },
        (error, stdout, stderr) => {
          resolvePromise({
            code: error ? (typeof error.code === 'number' ? error.code : 1) : 0,
            stdout,
            stderr,
          });
        },
      );
    });
  const json = async (args: string[]) => {
    const result = await run([...args, '--json']);
    expect(result.code, result.stderr).toBe(0);
    // biome-ignore lint/suspicious/noExplicitAny: the CLI's JSON output, checked field by field below
    return JSON.parse(result.stdout) as Record<string, any>;
  };

  beforeAll(async () => {
    if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`pnpm run build\` first`);
    folder = await mkdtemp(join(tmpdir(), 'mtp-cli-'));
    const catalog = await createCatalog({ connectionString: database.url });
    await catalog.migrate();
    const role = await createAppRole(database.url, { name: 'pv_cli', privileges: 'none' });
    await ensureAppRole(catalog.driver, { role: role.name, schemas: ['public'] });
    await catalog.close();
    appUrl = role.url;
    await writeFile(
      join(folder, 'mt-paas.yaml'),
      [
        'service:',
        '  id: keli_tutor',
        'isolation:',
        '  mode: SCHEMA_PER_TENANT',
        '  docker:',
        '    port_range_start: 30000',
        '    port_range_size: 10',
        `    compose_template: ${join(TEMPLATES, 'docker-compose.template.yml')}`,
        'database:',
        '  central:',
        `    url: "${database.url}"`,
        '  tenant:',
        // database mode names each tenant database from the seed's {tenant_id} template
        `    url_template: "${withDatabase(appUrl, `${databasePrefix}{tenant_id}`).replaceAll('%7B', '{').replaceAll('%7D', '}')}"`,
        'redis:',
        // biome-ignore lint/suspicious/noTemplateCurlyInString: a ${VAR:-default} of mt-paas.yaml, not JS
        '  url: "${REDIS_URL:-redis://127.0.0.1:6379}"',
        '',
      ].join('\n'),
    );
    env = {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      MT_PAAS_APP_DATABASE_URL: appUrl,
      MT_PAAS_MIGRATIONS: FIXTURE_MIGRATIONS,
      MT_PAAS_DEPLOY_ROOT: join(folder, 'deploy'),
      MT_PAAS_BASE_DOMAIN: 'keli.example.ac.kr',
    };
  });
  afterAll(async () => {
    if (folder) await rm(folder, { recursive: true, force: true });
    const admin = new pg.Client({ connectionString: database.url });
    await admin.connect();
    const { rows } = await admin.query<{ name: string }>(
      'SELECT datname AS name FROM pg_database WHERE starts_with(datname, $1) AND datname <> current_database()',
      [databasePrefix],
    );
    for (const row of rows) await admin.query(`DROP DATABASE IF EXISTS "${row.name}" WITH (FORCE)`);
    await admin.end();
  });

  it('--help works at every level and exits 0', async () => {
    for (const args of [
      ['--help'],
      ['tenant', '--help'],
      ['tenant', 'create', '--help'],
      ['migrate', '--help'],
      ['doctor', '--help'],
      ['templates', 'render', '--help'],
    ]) {
      const result = await run(args);
      expect(result.code, args.join(' ')).toBe(0);
      expect(result.stdout).toMatch(/Usage: mt-paas/);
    }
  });

  it('wrong usage exits 2 with a message', async () => {
    expect((await run(['tenant', 'frobnicate'])).code).toBe(2);
    expect((await run(['tenant', 'create', 'x_1'])).stderr).toMatch(/--name/); // required option
    const bad = await run(['tenant', 'create', 'Bad-Id', '--name', 'x']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/INVALID_TENANT_ID/);
    const concurrency = await run(['migrate', '--concurrency', '0']);
    expect(concurrency.code).toBe(2);
    expect(concurrency.stderr).toMatch(/--concurrency must be 1-64/);
  });

  it('creates a tenant (idempotently), seeding the admin through --hooks, and lists and shows it', async () => {
    const created = await json([
      '--hooks',
      HOOKS,
      'tenant',
      'create',
      'cli_a',
      '--name',
      'A University',
      '--admin-email',
      'a@a.ac.kr',
      '--domain',
      'a.keli.example.ac.kr',
    ]);
    expect(created.tenant).toMatchObject({
      id: 'cli_a',
      status: 'active',
      placement: { mode: 'schema' },
      domains: ['a.keli.example.ac.kr'],
    });
    const again = await run(['--hooks', HOOKS, 'tenant', 'create', 'cli_a', '--name', 'A University']);
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(/^onboarded cli_a {2}active {2}schema/);
    await json(['tenant', 'create', 'cli_b', '--name', 'B', '--mode', 'row']);
    const list = await json(['tenant', 'list']);
    expect(list.tenants.map((tenant: { id: string }) => tenant.id)).toEqual(['cli_a', 'cli_b']);
    const human = await run(['tenant', 'list', '--status', 'active']);
    expect(human.stdout).toMatch(/│ cli_a\s+│ active\s+│ schema/);
    const shown = await json(['tenant', 'show', 'cli_a']);
    expect(shown.jobs.map((job: { action: string; state: string }) => `${job.action}:${job.state}`)).toEqual([
      'onboard:succeeded',
    ]);
    const client = new pg.Client({ connectionString: database.url });
    await client.connect();
    const { rows } = await client.query('SELECT email, role FROM t_cli_a.users').finally(() => client.end());
    expect(rows).toEqual([{ email: 'a@a.ac.kr', role: 'admin' }]);
  });

  it('runs the lifecycle; refusals exit 4 (conflict) or 3 (not found) with the error as JSON', async () => {
    expect((await json(['tenant', 'suspend', 'cli_b', '--reason', 'service_cancelled'])).tenant.status).toBe(
      'suspended',
    );
    expect((await json(['tenant', 'resume', 'cli_b'])).tenant.status).toBe('active');
    const conflict = await run(['tenant', 'resume', 'cli_b', '--json']);
    expect(conflict.code).toBe(4);
    expect(JSON.parse(conflict.stdout)).toMatchObject({ error: { code: 'CONFLICT' } });
    expect(conflict.stderr).toMatch(/it is active/);
    const blocked = await json([
      'tenant',
      'block',
      'cli_b',
      '--reason',
      'expired',
      '--message',
      'Renew',
      '--until',
      '2099-01-01',
    ]);
    expect(blocked.tenant.block).toMatchObject({ reason: 'expired', message: 'Renew' });
    expect((await run(['tenant', 'block', 'cli_b', '--until', 'soon'])).code).toBe(2);
    expect((await json(['tenant', 'unblock', 'cli_b'])).tenant.status).toBe('active');
    expect((await json(['tenant', 'delete', 'cli_b'])).tenant.status).toBe('deleted');
    expect((await json(['tenant', 'restore', 'cli_b'])).tenant.status).toBe('active');
    await json(['tenant', 'delete', 'cli_b']);
    const early = await run(['tenant', 'purge', 'cli_b']);
    expect(early.code).toBe(4);
    expect(early.stderr).toMatch(/retained until/);
    expect((await json(['tenant', 'purge', 'cli_b', '--force'])).tenant.status).toBe('purged');
    const missing = await run(['tenant', 'show', 'cli_nobody']);
    expect(missing.code).toBe(3);
    expect(missing.stderr).toMatch(/TENANT_NOT_FOUND/);
  });

  it('exports, purges and imports into another mode; moves a live tenant', async () => {
    await json(['--hooks', HOOKS, 'tenant', 'create', 'cli_e', '--name', 'E', '--admin-email', 'e@e.ac.kr']);
    const file = join(folder, 'cli_e.mtpaas.tgz');
    const exported = await json(['tenant', 'export', 'cli_e', '--out', file]);
    expect(exported.manifest.tables.find((table: { name: string }) => table.name === 'users').rows).toBe(1);
    await json(['tenant', 'delete', 'cli_e']);
    await json(['tenant', 'purge', 'cli_e', '--force']);
    const imported = await json(['tenant', 'import', file, '--mode', 'database']);
    expect(imported.tenant).toMatchObject({ id: 'cli_e', status: 'active', placement: { mode: 'database' } });
    const admin = new pg.Client({ connectionString: database.url });
    await admin.connect();
    const named = await admin
      .query('SELECT 1 FROM pg_database WHERE datname = $1', [`${databasePrefix}cli_e`])
      .finally(() => admin.end());
    expect(named.rows).toHaveLength(1); // the database the url_template names
    const moved = await json(['tenant', 'move', 'cli_a', 'row']);
    expect(moved.tenant.placement).toEqual({ mode: 'row' });
    expect((await run(['tenant', 'move', 'cli_a', 'docker'])).code).toBe(2);
  });

  it('migrate --all prints a summary table; --json gives per-mode results', async () => {
    const human = await run(['migrate', '--all', '--concurrency', '2']);
    expect(human.code, human.stderr).toBe(0);
    expect(human.stdout).toMatch(/targets migrated/);
    expect(human.stdout).toMatch(/│ database │ cli_e/);
    const result = await json(['migrate', '--all', '--concurrency', '2']);
    expect(result.results.map((entry: { mode: string }) => entry.mode)).toEqual([
      'row',
      'schema',
      'database',
    ]);
    for (const entry of result.results) expect(entry.failed).toEqual([]);
  });

  it('doctor: every line ok on a sound setup; a superuser app role and an unreachable Redis each FAIL with a fix', async () => {
    const sound = await run(['doctor']);
    expect(sound.stdout, sound.stdout).toMatch(/^ok {4}config/m);
    for (const name of [
      'config',
      'catalog reachable',
      'catalog migrated',
      'app role safe',
      'RLS gate',
      'redis',
    ]) {
      expect(sound.stdout).toMatch(new RegExp(`^ok {4}${name}:`, 'm'));
    }
    expect(sound.code).toBe(0);
    const unsafe = await run(['doctor', '--json'], {
      MT_PAAS_APP_DATABASE_URL: database.url,
      REDIS_URL: 'redis://127.0.0.1:1',
    });
    expect(unsafe.code).toBe(1);
    const report = JSON.parse(unsafe.stdout) as {
      ok: boolean;
      checks: Array<{ name: string; ok: boolean; fix?: string }>;
    };
    expect(report.ok).toBe(false);
    const failed = Object.fromEntries(
      report.checks.filter((check) => !check.ok).map((check) => [check.name, check.fix]),
    );
    expect(failed['app role safe']).toMatch(/NOSUPERUSER NOBYPASSRLS/);
    expect(failed.redis).toMatch(/start Redis/);
  });

  it('templates render writes the checked deploy folder of a tenant', async () => {
    const result = await run(['templates', 'render', 'cli_a']);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/rendered 4 files into .*deploy\/cli_a \(checked\)/);
    expect(result.stdout).toMatch(/ports 30000-30009: frontend 30000, backend 30001, db 30002/);
    expect(result.stdout).toMatch(/subdomain cli-a\.keli\.example\.ac\.kr/);
    expect(existsSync(join(folder, 'deploy', 'cli_a', 'docker-compose.yml'))).toBe(true);
  });
});
