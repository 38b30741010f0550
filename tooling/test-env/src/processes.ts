/**
 * Real processes for end-to-end tests and local launchers: start a server as a child process, wait
 * until it prints the URL it listens on, read what it printed, stop it (and its whole process group)
 * cleanly. Node's `child_process` only — the two things a wrapper library would add (a process tree
 * kill and signal forwarding) are one `process.kill(-pid)` each because every child leads its own
 * process group.
 */
import { type ChildProcess, spawn } from 'node:child_process';

/** How to start one process. */
export interface StartProcessOptions {
  /** Shown in errors and as the prefix of echoed lines. */
  name: string;
  /** @default process.execPath (node) */
  command?: string;
  args: readonly string[];
  cwd: string;
  /**
   * The child's environment. Only `PATH` is inherited (plus `NODE_ENV=test` and `PORT=0` unless given
   * here): a test states everything the process reads.
   */
  env: Record<string, string | undefined>;
  /** Inherit the parent's environment under `env`. @default false */
  inheritEnv?: boolean;
  /** The first capture group is the URL. @default /listening on (http:\/\/[^\s)]+)/ */
  ready?: RegExp;
  /** @default 90_000 */
  timeoutMs?: number;
  /** Called with every chunk the child prints (stdout and stderr). */
  onOutput?: (text: string, stream: 'stdout' | 'stderr') => void;
}

/** A child process that printed its URL. */
export interface RunningProcess {
  readonly name: string;
  readonly url: string;
  readonly pid: number;
  /** Everything it printed so far (for failure messages). */
  output(): string;
  /** Resolves with the exit code (or signal name) once the process has exited. */
  readonly exited: Promise<number | string>;
  /** Whether it is still running. */
  running(): boolean;
  /**
   * Sends `signal` (default SIGTERM) to the process group and waits for the exit; SIGKILL after
   * `killAfterMs` (default 10 s). Resolves with the exit code or signal.
   */
  stop(signal?: NodeJS.Signals, killAfterMs?: number): Promise<number | string>;
}

const DEFAULT_READY = /listening on (http:\/\/[^\s)]+)/;

/**
 * Starts a process in its own process group (so a Ctrl-C meant for the parent is not delivered to it
 * twice, and `stop()` reaches its children too) and resolves once it prints its URL. The port is the
 * one the process picked (`PORT=0`), so there is no race for a free port.
 */
export function startProcess(options: StartProcessOptions): Promise<RunningProcess> {
  const timeoutMs = options.timeoutMs ?? 90_000;
  const ready = options.ready ?? DEFAULT_READY;
  const baseEnv: Record<string, string | undefined> = options.inheritEnv
    ? { ...process.env }
    : { PATH: process.env.PATH ?? '', NODE_ENV: 'test', PORT: '0' };
  const env = Object.fromEntries(
    Object.entries({ ...baseEnv, ...options.env }).filter(
      (entry): entry is [string, string] => entry[1] !== undefined,
    ),
  );
  const child: ChildProcess = spawn(options.command ?? process.execPath, [...options.args], {
    cwd: options.cwd,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  let output = '';
  const exited = new Promise<number | string>((resolve) =>
    child.once('exit', (code, signal) => resolve(code ?? signal ?? 'unknown')),
  );
  const running = () => child.exitCode === null && child.signalCode === null;
  const signalGroup = (signal: NodeJS.Signals) => {
    try {
      process.kill(-(child.pid as number), signal);
    } catch {
      // the group is gone already
    }
  };
  return new Promise((resolve, reject) => {
    let settled = false;
    const timer = setTimeout(() => {
      settled = true;
      signalGroup('SIGKILL');
      reject(new Error(`${options.name} did not start within ${timeoutMs} ms:\n${output}`));
    }, timeoutMs);
    const onData = (stream: 'stdout' | 'stderr') => (chunk: Buffer) => {
      const text = chunk.toString('utf8');
      output += text;
      options.onOutput?.(text, stream);
      if (settled) return;
      const match = ready.exec(output);
      if (match?.[1] !== undefined) {
        settled = true;
        clearTimeout(timer);
        resolve({
          name: options.name,
          url: match[1],
          pid: child.pid as number,
          output: () => output,
          exited,
          running,
          async stop(signal = 'SIGTERM', killAfterMs = 10_000) {
            if (running()) {
              signalGroup(signal);
              const killer = setTimeout(() => signalGroup('SIGKILL'), killAfterMs);
              const result = await exited;
              clearTimeout(killer);
              return result;
            }
            return exited;
          },
        });
      }
    };
    child.stdout?.on('data', onData('stdout'));
    child.stderr?.on('data', onData('stderr'));
    child.once('error', (error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      reject(new Error(`${options.name} could not be started: ${error.message}`));
    });
    child.once('exit', (code, signal) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      reject(new Error(`${options.name} exited (${code ?? signal}) before listening:\n${output}`));
    });
  });
}

/** Whether a process id is still alive (signal 0). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** JSON over HTTP, throwing with the body on a status other than `expect` (any 2xx when not given). */
// biome-ignore lint/suspicious/noExplicitAny: callers read answers loosely
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
      `${init.method ?? (init.body === undefined ? 'GET' : 'POST')} ${url} answered ${response.status} (expected ${init.expect ?? '2xx'}): ${text}`,
    );
  }
  return (text === '' ? undefined : JSON.parse(text)) as T;
}
