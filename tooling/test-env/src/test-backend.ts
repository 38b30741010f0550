import { inject } from 'vitest';
import { TestEnvError } from './test-env-error.js';
import { PROVIDE_KEY, type ProvidedTestEnv, type ServiceName, type TestBackend } from './types.js';

/** The value the globalSetup provided; throws a clear error outside an `int:` project. */
export function providedTestEnv(): ProvidedTestEnv {
  let provided: ProvidedTestEnv | undefined;
  try {
    provided = inject(PROVIDE_KEY);
  } catch {
    provided = undefined;
  }
  if (!provided) {
    throw new TestEnvError(
      'TEST_ENV_NOT_SET_UP',
      '@mt-paas/test-env was used without its globalSetup. Name the file `*.int.test.ts` and run it through ' +
        'its `int:<package>` project (`pnpm vitest run --project int:<package>`), whose globalSetup is tooling/test-env/src/global-setup.ts.',
    );
  }
  return provided;
}

/**
 * Which backend serves each service in this run, and why: `backend.postgres.available`,
 * `backend.postgres.source` ('env' | 'local' | 'testcontainers') or `backend.postgres.reason`.
 */
export function testBackend(): TestBackend {
  return providedTestEnv().backend;
}

/** `undefined` when `service` has a real server; otherwise the reason tests needing it are skipped. */
export function skipReason(service: ServiceName): string | undefined {
  const entry = testBackend()[service];
  return entry.available ? undefined : entry.reason;
}
