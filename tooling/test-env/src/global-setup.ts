import { randomBytes } from 'node:crypto';
import type pg from 'pg';
import type { TestProject } from 'vitest/node';
import { describeBackend, type ResolvedBackends, resolveBackends } from './backend-resolution.js';
import { dropCurrentRun, dropStaleRuns, openRunSession } from './postgres-admin.js';
import { errorText } from './probes.js';
import { deleteRedisKeys, deleteStaleRedisKeys } from './redis.js';
import { createRunId, REDIS_PREFIX } from './run-id.js';
import { PROVIDE_KEY, type ProvidedTestEnv } from './types.js';

/**
 * Vitest runs the globalSetup once per `int:<package>` project, all in its main process. The first one
 * probes the servers, prints the backend, marks the run alive on Postgres and drops what crashed runs left;
 * the others reuse that decision (kept on globalThis, which every project's module runner shares). The last
 * teardown drops what the run created and stops containers.
 */
interface SharedRun {
  runId: string;
  runSecret: string;
  users: number;
  ready: Promise<Prepared>;
}

interface Prepared {
  resolved: ResolvedBackends;
  runSession?: pg.Client;
}

const SHARED = Symbol.for('mt-paas.test-env.run');
type GlobalWithRun = typeof globalThis & { [SHARED]?: SharedRun };

async function prepare(runId: string): Promise<Prepared> {
  const resolved = await resolveBackends({ runId });
  for (const line of describeBackend(resolved.backend)) console.log(line);
  const { postgres, redis } = resolved.backend;
  if (!postgres.available) return { resolved };
  let runSession: pg.Client | undefined;
  try {
    runSession = await openRunSession(postgres.url, runId);
    const report = await dropStaleRuns(postgres.url, postgres.serverVersion, runId);
    if (report.databases.length + report.roles.length > 0) {
      console.log(
        `[test-env] dropped ${report.databases.length} database(s) and ${report.roles.length} role(s) left by earlier runs`,
      );
    }
    for (const failure of report.failures) console.warn(`[test-env] could not drop stale ${failure}`);
    if (redis.available) {
      const live = new Set([...report.liveRunIds, runId]);
      await deleteStaleRedisKeys(redis.url, live);
    }
  } catch (error) {
    console.warn(`[test-env] clean-up of earlier runs skipped: ${errorText(error)}`);
  }
  return { resolved, runSession };
}

async function finish(run: SharedRun): Promise<void> {
  const { resolved, runSession } = await run.ready;
  const { postgres, redis } = resolved.backend;
  if (postgres.available) {
    try {
      const report = await dropCurrentRun(postgres.url, postgres.serverVersion, run.runId);
      for (const failure of report.failures) console.warn(`[test-env] could not drop ${failure}`);
    } catch (error) {
      console.warn(`[test-env] could not drop this run's databases: ${errorText(error)}`);
    }
  }
  await runSession?.end().catch(() => {});
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
    // A failed decision (MT_PAAS_REQUIRE_SERVICES) fails every project; a later watch rerun tries again.
    const failed = run;
    run.ready.catch(() => {
      if (global[SHARED] === failed) delete global[SHARED];
    });
  }
  const { resolved } = await run.ready;
  run.users += 1;
  const provided: ProvidedTestEnv = {
    backend: resolved.backend,
    runSecret: run.runSecret,
    projectName: project.name,
  };
  project.provide(PROVIDE_KEY, provided);
  const current = run;
  return async () => {
    current.users -= 1;
    if (current.users > 0) return;
    if (global[SHARED] === current) delete global[SHARED];
    await finish(current);
  };
}
