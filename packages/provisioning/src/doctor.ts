import { connect } from 'node:net';
import { CATALOG_MIGRATIONS_FOLDER, readMigrationsFolder } from '@mt-paas/db';
import { checkCatalogGate } from '@mt-paas/db/testing';
import pg from 'pg';
import { type CliGlobalOptions, centralUrlOf, loadCliConfig } from './cli-runtime.js';

/** One line of `mt-paas doctor`. */
export interface DoctorCheck {
  name: string;
  ok: boolean;
  detail: string;
  /** What to do when not ok. */
  fix?: string;
}

const redactUrl = (url: string) => url.replace(/(\/\/[^:/@]+):[^@]*@/, '$1:***@');

async function withClient<T>(url: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 });
  client.on('error', () => {});
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => {});
  }
}

/** Sends a RESP `PING` (after `AUTH` when the URL has a password) and expects `+PONG`. */
export function pingRedis(url: string, timeoutMs = 3000): Promise<void> {
  const parsed = new URL(url);
  const command = (...parts: string[]) =>
    `*${parts.length}\r\n${parts.map((part) => `$${Buffer.byteLength(part)}\r\n${part}\r\n`).join('')}`;
  const password = decodeURIComponent(parsed.password);
  const user = decodeURIComponent(parsed.username);
  return new Promise((resolvePromise, reject) => {
    const socket = connect({ host: parsed.hostname || '127.0.0.1', port: Number(parsed.port || 6379) });
    let answer = '';
    const fail = (error: Error) => {
      socket.destroy();
      reject(error);
    };
    socket.setTimeout(timeoutMs, () => fail(new Error(`no answer within ${timeoutMs} ms`)));
    socket.on('error', fail);
    socket.on('connect', () => {
      if (password !== '')
        socket.write(user === '' ? command('AUTH', password) : command('AUTH', user, password));
      socket.write(command('PING'));
    });
    socket.on('data', (chunk) => {
      answer += chunk.toString();
      if (answer.includes('-'))
        return fail(
          new Error(
            answer
              .trim()
              .split('\r\n')
              .find((l) => l.startsWith('-')) ?? answer,
          ),
        );
      if (answer.includes('+PONG')) {
        socket.end();
        resolvePromise();
      }
    });
  });
}

/** Runs every check; never throws. */
export async function runDoctor(options: CliGlobalOptions): Promise<DoctorCheck[]> {
  const checks: DoctorCheck[] = [];
  let config: Awaited<ReturnType<typeof loadCliConfig>>;
  try {
    config = await loadCliConfig(options);
    checks.push({
      name: 'config',
      ok: true,
      detail: `valid (isolation ${config.isolation.mode}, service ${config.service.id})`,
    });
  } catch (error) {
    checks.push({
      name: 'config',
      ok: false,
      detail: (error as Error).message,
      fix: 'fix mt-paas.yaml (see `mt-paas-config check`)',
    });
    return checks;
  }

  let centralUrl: string | undefined;
  try {
    centralUrl = centralUrlOf(options, config);
    const version = await withClient(
      centralUrl,
      async (client) =>
        (await client.query<{ v: string }>("SELECT current_setting('server_version') AS v")).rows[0]?.v,
    );
    checks.push({
      name: 'catalog reachable',
      ok: true,
      detail: `${redactUrl(centralUrl)} (PostgreSQL ${version})`,
    });
  } catch (error) {
    checks.push({
      name: 'catalog reachable',
      ok: false,
      detail: (error as Error).message,
      fix: 'start Postgres or correct database.central.url / DATABASE_URL',
    });
  }

  if (centralUrl !== undefined && checks.at(-1)?.ok) {
    try {
      const expected = readMigrationsFolder(CATALOG_MIGRATIONS_FOLDER).map((migration) => migration.tag);
      const applied = await withClient(centralUrl, async (client) => {
        const exists = await client.query(`SELECT to_regclass('"mt_paas"."__mt_paas_migrations"') AS t`);
        if (exists.rows[0]?.t === null) return [] as string[];
        return (
          await client.query<{ version: string }>('SELECT version FROM "mt_paas"."__mt_paas_migrations"')
        ).rows.map((row) => row.version);
      });
      const missing = expected.filter((tag) => !applied.includes(tag));
      checks.push(
        missing.length === 0
          ? { name: 'catalog migrated', ok: true, detail: `${expected.length} migrations applied` }
          : {
              name: 'catalog migrated',
              ok: false,
              detail: `${missing.length} of ${expected.length} catalog migrations missing (${missing.join(', ')})`,
              fix: 'run `mt-paas migrate` (it migrates the catalog first)',
            },
      );
    } catch (error) {
      checks.push({
        name: 'catalog migrated',
        ok: false,
        detail: (error as Error).message,
        fix: 'check the catalog role',
      });
    }
  }

  const appUrl = options.appUrl ?? process.env.MT_PAAS_APP_DATABASE_URL;
  if (appUrl === undefined) {
    const fix = 'set MT_PAAS_APP_DATABASE_URL (or --app-url) to the URL the app connects with';
    checks.push({ name: 'app role safe', ok: false, detail: 'no app role URL given', fix });
  } else {
    try {
      const flags = await withClient(
        appUrl,
        async (client) =>
          (
            await client.query<{ name: string; rolsuper: boolean; rolbypassrls: boolean }>(
              'SELECT rolname AS name, rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user',
            )
          ).rows[0],
      );
      const unsafe = flags === undefined || flags.rolsuper || flags.rolbypassrls;
      checks.push(
        unsafe
          ? {
              name: 'app role safe',
              ok: false,
              detail: `role ${flags?.name ?? '?'} is ${flags?.rolsuper ? 'SUPERUSER' : 'BYPASSRLS'}: row-level security does not apply to it`,
              fix: `ALTER ROLE ${flags?.name ?? '<role>'} NOSUPERUSER NOBYPASSRLS (or connect the app as another role)`,
            }
          : { name: 'app role safe', ok: true, detail: `role ${flags.name}: NOSUPERUSER NOBYPASSRLS` },
      );
      if (centralUrl !== undefined && flags !== undefined) {
        const findings = await withClient(centralUrl, (client) =>
          checkCatalogGate(
            {
              query: async (text: string, params?: readonly unknown[]) => ({
                rows: (await client.query(text, params as unknown[])).rows,
              }),
            } as never,
            {
              appRole: flags.name,
            },
          ),
        );
        checks.push(
          findings.length === 0
            ? {
                name: 'RLS gate',
                ok: true,
                detail: 'every tenant table has forced RLS and tenant-leading keys',
              }
            : {
                name: 'RLS gate',
                ok: false,
                detail: findings.map((finding) => `${finding.code} ${finding.object}`).join('; '),
                fix: findings[0]!.message,
              },
        );
      }
    } catch (error) {
      checks.push({
        name: 'app role safe',
        ok: false,
        detail: (error as Error).message,
        fix: 'check the app role URL',
      });
    }
  }

  const redisUrl = config.redis.url;
  if (redisUrl === undefined) {
    checks.push({ name: 'redis', ok: true, detail: 'not configured: in-process stores (one instance only)' });
  } else {
    try {
      await pingRedis(redisUrl);
      checks.push({ name: 'redis', ok: true, detail: `${redactUrl(redisUrl)} answers PING` });
    } catch (error) {
      checks.push({
        name: 'redis',
        ok: false,
        detail: `${redactUrl(redisUrl)}: ${(error as Error).message}`,
        fix: 'start Redis or correct redis.url',
      });
    }
  }
  return checks;
}
