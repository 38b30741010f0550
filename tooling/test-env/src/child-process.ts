/** A TypeScript child process a test can kill at a known point (crash and resume tests). */
import { type ChildProcess, spawn } from 'node:child_process';
import { createRequire } from 'node:module';

/** Options of {@link startTsChild}. */
export interface StartTsChildOptions {
  /** Absolute path of the child's `.ts` file (its package must depend on `tsx`). */
  script: string;
  /** Handed to the child as JSON in `MTP_CHILD`. */
  input: unknown;
  /** Resolves `seen` once this text appears on the child's stdout. */
  marker: string;
  /** @default 30_000 (ms) */
  timeoutMs?: number;
}

/**
 * Starts `node --import tsx <script>` — the TypeScript child runs in that very process (the tsx CLI would
 * fork a grandchild that SIGKILL would not reach) — and resolves `seen` with its stdout once `marker`
 * appears; rejects when the child exits first or the time is up.
 */
export function startTsChild(options: StartTsChildOptions): { child: ChildProcess; seen: Promise<string> } {
  const tsx = createRequire(options.script).resolve('tsx');
  const child = spawn(process.execPath, ['--import', tsx, options.script], {
    env: { ...process.env, MTP_CHILD: JSON.stringify(options.input) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const { marker } = options;
  const timeoutMs = options.timeoutMs ?? 30_000;
  let out = '';
  let err = '';
  const seen = new Promise<string>((resolve, reject) => {
    child.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      if (out.includes(marker)) resolve(out);
    });
    child.stderr!.on('data', (chunk: Buffer) => {
      err += chunk.toString();
    });
    const timer = setTimeout(
      () => reject(new Error(`no "${marker}" within ${timeoutMs} ms: ${out}\n${err}`)),
      timeoutMs,
    );
    child.on('exit', (code) => {
      clearTimeout(timer);
      if (!out.includes(marker))
        reject(new Error(`child exited (${code}) before "${marker}": ${out}\n${err}`));
    });
  });
  return { child, seen };
}

/** Resolves with the child's exit code (null when killed by a signal) once it has exited. */
export function childExited(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve(child.exitCode);
    else child.on('exit', (code) => resolve(code));
  });
}
