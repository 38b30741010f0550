import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { call, isAlive, startProcess } from '@mt-paas/test-env/processes';
import { expect, it } from 'vitest';
import { DEMO } from './demo-content.js';
import { tutorClient } from './tutor-client.js';

/**
 * `pnpm start` as a user runs it (the launcher without the build step, on free ports, nothing kept):
 * it prints the URLs and a login, the tutor answers the demo tenant's question from its document, and
 * Ctrl-C (SIGINT) stops both apps and exits 0. Embedded defaults only — no Postgres, no Redis.
 */
const E2E_DIR = fileURLToPath(new URL('..', import.meta.url));

/** The app processes (market-sim, the tutor) the launcher started; tsx's esbuild service is not one. */
function childrenOf(pid: number): number[] {
  try {
    return execFileSync('ps', ['-o', 'pid=,args=', '--ppid', String(pid)], { encoding: 'utf8' })
      .split('\n')
      .filter((line) => /(dist\/main\.js|src\/main\.ts)/.test(line))
      .map((line) => Number.parseInt(line.trim(), 10))
      .filter((child) => child > 0);
  } catch {
    return []; // ps exits 1 when there are none
  }
}

it('starts market-sim and the tutor with a demo tenant, and stops both on Ctrl-C', async () => {
  const launcher = await startProcess({
    name: 'pnpm start',
    args: ['--import', 'tsx', 'src/start.ts', '--port', '0', '--market-port', '0', '--data-dir', 'memory'],
    cwd: E2E_DIR,
    env: { DATABASE_URL: undefined, REDIS_URL: undefined },
    ready: /the tutor \(demo tenant\)\s+(http:\/\/\S+)/,
    timeoutMs: 180_000,
  });
  // The apps run in process groups of their own: a failing test must not leave them behind.
  let apps: number[] = [];
  try {
    // the rest of the block is printed with the same write
    await expect.poll(() => launcher.output(), { timeout: 5_000 }).toContain('Ctrl-C stops both');
    const output = launcher.output();
    const tutorUrl = new URL(launcher.url).origin;
    expect(launcher.url).toBe(`${tutorUrl}/?tenant=${DEMO.tenantId}`);
    expect(output).toMatch(/log in\s+\S+/);
    expect(output).toMatch(/market console\s+http:\/\/127\.0\.0\.1:\d+\//);
    const marketUrl = /market console\s+(http:\/\/\S+)\//.exec(output)![1]!;

    // the demo tenant exists at the market and on the tutor; the printed login works and the tutor
    // answers the suggested question from the demo document
    const tenant = await call(`${marketUrl}/sim/v1/services/keli_tutor/tenants/${DEMO.tenantId}`);
    expect(tenant).toMatchObject({ status: 'active', plan: DEMO.plan });
    const [, email, password] = /log in\s+(\S+) \/ (\S+)/.exec(output)!;
    const client = tutorClient(tutorUrl, DEMO.tenantId);
    await client.login(email!, password!);
    const answer = await client.chat(DEMO.question);
    expect(answer.final?.answer).toContain('reflects green light');
    expect(answer.final?.sources.map((source) => source.title)).toContain(DEMO.document.title);

    const children = childrenOf(launcher.pid);
    apps = children;
    expect(children).toHaveLength(2);

    process.kill(launcher.pid, 'SIGINT'); // only the launcher, as a terminal's Ctrl-C reaches it
    expect(await launcher.exited).toBe(0);
    for (const child of children) expect(isAlive(child)).toBe(false);
    await expect(fetch(`${tutorUrl}/api/health`)).rejects.toThrow();
    await expect(fetch(`${marketUrl}/sim/v1/plans`)).rejects.toThrow();
    expect(launcher.output()).toContain('stopping');
  } finally {
    if (apps.length === 0) apps = childrenOf(launcher.pid);
    await launcher.stop('SIGKILL');
    for (const app of apps) {
      try {
        process.kill(app, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
}, 240_000);
