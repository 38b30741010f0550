import { fileURLToPath } from 'node:url';
import { type RunningProcess, startProcess as start } from '@mt-paas/test-env/processes';

export { call, type RunningProcess } from '@mt-paas/test-env/processes';

const APP_DIR = fileURLToPath(new URL('../..', import.meta.url));

/**
 * Starts `node --import tsx <script>` in the app's folder with `env` (over a minimal environment)
 * and waits until it prints `listening on http://…`. The port is the one the process picked
 * (`PORT=0`), so there is no race for a free port.
 */
export function startProcess(
  script: string,
  env: Record<string, string>,
  timeoutMs = 90_000,
): Promise<RunningProcess> {
  return start({ name: script, args: ['--import', 'tsx', script], cwd: APP_DIR, env, timeoutMs });
}
