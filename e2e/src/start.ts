/**
 * `pnpm start`: the market simulator and the reference tutor on embedded defaults (PGlite under
 * `.data/`, in-process limits, the local AI provider — no servers, no keys), the tutor registered with
 * the market, a demo application approved so that a demo tenant exists with a course and a document,
 * then the URLs and a login. `DATABASE_URL` / `REDIS_URL` in the environment are used by both apps.
 * Ctrl-C (SIGINT) or SIGTERM stops both and exits 0.
 *
 * Arguments are parsed with Node's own `util.parseArgs` and the children are managed with
 * `child_process` (through `@mt-paas/test-env/processes`): both are in every supported Node, and the
 * launcher needs nothing a library would add.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { RunningProcess } from '@mt-paas/test-env/processes';
import { provisionDemo } from './demo-content.js';
import { marketDriver } from './market.js';
import {
  newServiceSecrets,
  REPO_ROOT,
  registerTutor,
  type ServiceSecrets,
  startMarketSim,
  startTutor,
  tutorEnv,
} from './stack.js';

const USAGE = `pnpm start [options]

Starts the market simulator and the reference tutor, creates a demo tenant and prints how to log in.

  --port <n>          the tutor's port (default 8085; 0 = a free one)
  --market-port <n>   the market simulator's port (default 8505; 0 = a free one)
  --host <host>       the interface both listen on (default 127.0.0.1)
  --data-dir <dir>    where the embedded databases and the logs live (default .data; "memory" keeps nothing)
  --fresh             forget the previous run's data first
  --verbose           echo both apps' logs here (else they go to <data-dir>/start/*.log)
  -h, --help          this text

Environment: DATABASE_URL (Postgres for both apps instead of PGlite), REDIS_URL (limits and the kill
switch shared across instances), ISOLATION_MODE (row | schema | database; default the tutor's).`;

const { values: args } = parseArgs({
  options: {
    port: { type: 'string', default: '8085' },
    'market-port': { type: 'string', default: '8505' },
    host: { type: 'string', default: '127.0.0.1' },
    'data-dir': { type: 'string', default: '.data' },
    fresh: { type: 'boolean', default: false },
    verbose: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
  strict: true,
});

if (args.help) {
  console.log(USAGE);
  process.exit(0);
}

function port(name: string, value: string): string {
  const number = Number(value);
  if (!Number.isInteger(number) || number < 0 || number > 65_535) {
    console.error(`pnpm start: --${name} must be a port number (0-65535), got "${value}".`);
    process.exit(2);
  }
  return String(number);
}

const tutorPort = port('port', args.port);
const marketPort = port('market-port', args['market-port']);
const memory = args['data-dir'] === 'memory';
const dataDir = memory ? undefined : resolve(REPO_ROOT, args['data-dir']);
const stateDir = join(dataDir ?? resolve(REPO_ROOT, '.data'), 'start');
if (args.fresh && dataDir !== undefined) {
  for (const part of ['start', 'market-sim', 'tutor'])
    rmSync(join(dataDir, part), { recursive: true, force: true });
}
mkdirSync(stateDir, { recursive: true });

/** What a restart must find again: the service's secrets (its registration) and the demo password. */
interface LauncherState {
  secrets: ServiceSecrets;
  demoPassword: string;
}

function loadState(): LauncherState {
  const file = join(stateDir, 'state.json');
  if (!memory) {
    try {
      return JSON.parse(readFileSync(file, 'utf8')) as LauncherState;
    } catch {
      // first run (or a broken file): new secrets
    }
  }
  const state = {
    secrets: newServiceSecrets('keli_tutor'),
    demoPassword: `demo-${randomBytes(6).toString('base64url')}`,
  };
  if (!memory) writeFileSync(file, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600 });
  return state;
}

const logs: Record<string, string> = {};
function output(name: string) {
  const file = join(stateDir, `${name}.log`);
  writeFileSync(file, '');
  logs[name] = file;
  return (text: string) => {
    writeFileSync(file, text, { flag: 'a' });
    if (args.verbose) {
      for (const line of text.split('\n')) if (line !== '') process.stdout.write(`[${name}] ${line}\n`);
    }
  };
}

const children: RunningProcess[] = [];
let stopping = false;

async function stopAll(code: number): Promise<never> {
  if (stopping) process.exit(code);
  stopping = true;
  // the tutor first (it may still report to the market), then the market
  for (const child of [...children].reverse()) await child.stop('SIGTERM');
  process.exit(code);
}

// A second Ctrl-C while stopping ends at once (the children are still signalled on exit).
process.on('SIGINT', () => {
  if (stopping) process.exit(130);
  console.log('\nstopping…');
  void stopAll(0);
});
process.on('SIGTERM', () => void stopAll(0));
process.on('exit', () => {
  for (const child of children) {
    if (child.running()) {
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
  }
});

function watch(child: RunningProcess) {
  children.push(child);
  void child.exited.then((code) => {
    if (stopping) return;
    console.error(`\n${child.name} exited (${code}); its log: ${logs[child.name]}\n${tail(child.output())}`);
    void stopAll(1);
  });
}

function tail(text: string, lines = 30): string {
  return text.trimEnd().split('\n').slice(-lines).join('\n');
}

const shared = {
  ...(process.env.DATABASE_URL ? { DATABASE_URL: process.env.DATABASE_URL } : {}),
  NODE_ENV: process.env.NODE_ENV ?? 'development',
  HOST: args.host,
};

try {
  const { secrets, demoPassword } = loadState();
  console.log(
    `starting market-sim and reference-tutor (${process.env.DATABASE_URL ? 'Postgres from DATABASE_URL' : memory ? 'PGlite in memory' : `PGlite under ${dataDir}`}, ${process.env.REDIS_URL ? 'Redis from REDIS_URL' : 'in-process limits'}, the local AI provider)…`,
  );
  const market = await startMarketSim(
    {
      ...shared,
      PORT: marketPort,
      MARKET_SIM_DATA_DIR: dataDir === undefined ? 'memory' : join(dataDir, 'market-sim'),
    },
    { onOutput: output('market-sim'), timeoutMs: 120_000 },
  );
  watch(market);
  const tutor = await startTutor(
    tutorEnv(market, secrets, {
      ...shared,
      PORT: tutorPort,
      TUTOR_DATA_DIR: dataDir === undefined ? 'memory' : join(dataDir, 'tutor'),
      ...(process.env.REDIS_URL ? { REDIS_URL: process.env.REDIS_URL } : {}),
      ...(process.env.ISOLATION_MODE ? { ISOLATION_MODE: process.env.ISOLATION_MODE } : {}),
      ...(process.env.MT_PAAS_CONFIG ? { MT_PAAS_CONFIG: resolve(process.env.MT_PAAS_CONFIG) } : {}),
    }),
    { onOutput: output('reference-tutor'), timeoutMs: 120_000 },
  );
  watch(tutor);

  const driver = marketDriver(market.url);
  await registerTutor(driver, tutor.url, secrets);
  const demo = await provisionDemo(driver, tutor.url, secrets, demoPassword);

  console.log(`
mt-paas is running — Ctrl-C stops both.

  the tutor (demo tenant)   ${tutor.url}/?tenant=${demo.tenantId}
  log in                    ${demo.email} / ${demoPassword}
  log in with the market    ${market.url}/sim/v1/sso/open?service_id=${secrets.serviceId}&user_id=${demo.userId}
  ask, e.g.                 "${demo.question}"
  tutor API docs            ${tutor.url}/docs
  market console            ${market.url}/
  market API docs           ${market.url}/docs
  logs                      ${args.verbose ? 'above' : stateDir}
`);
} catch (error) {
  console.error(`pnpm start failed: ${error instanceof Error ? error.message : String(error)}`);
  for (const child of children)
    console.error(`── ${child.name} (${logs[child.name]}):\n${tail(child.output())}`);
  await stopAll(1);
}
