import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** A child process that printed `listening on <url>`. */
export interface RunningProcess {
  url: string;
  /** Everything it printed so far (for failure messages). */
  output(): string;
  stop(): Promise<void>;
}

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
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', script], {
    cwd: APP_DIR,
    env: { PATH: process.env.PATH ?? '', NODE_ENV: 'test', PORT: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${script} did not start within ${timeoutMs} ms:\n${output}`));
    }, timeoutMs);
    const onData = (chunk: Buffer) => {
      output += chunk.toString('utf8');
      const match = /listening on (http:\/\/[^\s)]+)/.exec(output);
      if (match?.[1] !== undefined) {
        clearTimeout(timer);
        resolve({
          url: match[1],
          output: () => output,
          async stop() {
            if (child.exitCode === null && child.signalCode === null) {
              child.kill('SIGTERM');
              const killer = setTimeout(() => child.kill('SIGKILL'), 5_000);
              await exited;
              clearTimeout(killer);
            }
          },
        });
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', (chunk: Buffer) => {
      output += chunk.toString('utf8');
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`${script} exited (${code ?? signal}) before listening:\n${output}`));
    });
  });
}

/** JSON over HTTP, throwing with the body on a status other than `expect`. */
// biome-ignore lint/suspicious/noExplicitAny: tests read answers loosely
export async function call<T = any>(
  url: string,
  init: { method?: string; body?: unknown; headers?: Record<string, string>; expect?: number } = {},
): Promise<T> {
  const response = await fetch(url, {
    method: init.method ?? (init.body === undefined ? 'GET' : 'POST'),
    headers: { ...(init.body === undefined ? {} : { 'content-type': 'application/json' }), ...init.headers },
    ...(init.body === undefined ? {} : { body: JSON.stringify(init.body) }),
  });
  const text = await response.text();
  if (init.expect === undefined ? response.status >= 300 : response.status !== init.expect) {
    throw new Error(
      `${init.method ?? 'GET'} ${url} answered ${response.status} (expected ${init.expect ?? '2xx'}): ${text}`,
    );
  }
  return (text === '' ? undefined : JSON.parse(text)) as T;
}
