import { randomBytes } from 'node:crypto';
import type { TestProject } from 'vitest/node';
import { describeBackend, type ResolvedBackends, resolveBackends } from './backend-resolution.js';
import { dropCurrentRun, dropStaleRuns } from './postgres-admin.js';
import { errorText } from './probes.js';
import { deleteRedisKeys } from './redis.js';
import { createRunId, REDIS_PREFIX } from './run-id.js';
import { PROVIDE_KEY, type ProvidedTestEnv } from './types.js';

/**
 * Vitest runs a project's globalSetup once per `int:<package>` project, all in the main process. The
 * first one probes the servers, prints the backend and cleans up stale runs; the others reuse that
 * decision (kept on globalThis, shared by every project's module runner). The last teardown drops what
 * the run created and stops containers.
 */
interface SharedRun {
  runId: string;
  runSecret: string;
  users: number;
  ready: Promise<ResolvedBackends>;
}

const SHARED = Symbol.for('mt-paas.test-env.run');
type GlobalWithRun = typeof globalThis & { [SHARED]?: SharedRun };

async function prepare(runId: string): Promise<ResolvedBackends> {
  const resolved = await resolveBackends({ runId });
  for (const line of describeBackend(resolved.backend)) console.log(line);
  const postgres = resolved.backend.postgres;
  if (postgres.available) {
    try {
      const report = await dropStaleRuns(postgres.url, postgres.serverVersion, runId);
      const dropped = report.databases.length + report.roles.length;
      if (dropped > 0) {
        console.log(
          `[test-env] dropped ${report.databases.length} database(s) and ${report.roles.length} role(s) left by earlier runs`,
        );
      }
      for (const failure of report.failures) console.warn(`[test-env] could not drop stale ${failure}`);
    } catch (error) {
      console.warn(`[test-env] stale cleanup skipped: ${errorText(error)}`);
    }
  }
  return resolved;
}

async function finish(run: SharedRun): Promise<void> {
  const resolved = await run.ready;
  const { postgres, redis } = resolved.backend;
  if (postgres.available) {
    try {
      const report = await dropCurrentRun(postgres.url, postgres.serverVersion, run.runId);
      for (const failure of report.failures) console.warn(`[test-env] could not drop ${failure}`);
    } catch (error) {
      console.warn(`[test-env] could not drop this run's databases: ${errorText(error)}`);
    }
  }
  if (redis.available) {
    await deleteRedisKeys(redis.url, `${REDIS_PREFIX}${run.runId}:*`).catch((error) => {
      console.warn(`[test-env] could not delete this run's Redis keys: ${errorText(error)}`);
    });
  }
  await resolved.stop();
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const global = globalThis as GlobalWithRun;
  let run = global[SHARED];
  if (!run) {
    const runId = createRunId();
    run = { runId, runSecret: randomBytes(18).toString('base64url'), users: 0, ready: prepare(runId) };
    global[SHARED] = run;
    // A failed decision (MT_PAAS_REQUIRE_SERVICES) must fail every project, and a later watch rerun must retry.
    run.ready.catch(() => {
      if (global[SHARED] === run) delete global[SHARED];
    });
  }
  const resolved = await run.ready;
  run.users += 1;
  const provided: ProvidedTestEnv = { backend: resolved.backend, runSecret: run.runSecret };
  project.provide(PROVIDE_KEY, provided);
  const current = run;
  return async () => {
    current.users -= 1;
    if (current.users > 0) return;
    if (global[SHARED] === current) delete global[SHARED];
    await finish(current);
  };
}
