import { createHash } from 'node:crypto';
import { hostname } from 'node:os';

/**
 * Run-scoped names. Everything a run creates on a shared server is named
 * `mtp_t_<runId>_...` (databases) or `mtp_r_<runId>_...` (roles), with
 * `runId = <start time, base36 seconds>_<pid base36>_<host hash, 4 chars>`.
 * The name alone is enough to decide later whether the run that made it is over.
 */
export interface RunIdParts {
  /** Start time of the run, epoch milliseconds (second precision). */
  startedAt: number;
  pid: number;
  /** Four base36 characters derived from the host name. */
  host: string;
}

export const DATABASE_PREFIX = 'mtp_t_';
export const ROLE_PREFIX = 'mtp_r_';
export const REDIS_PREFIX = 'mtp:t:';

/** Runs older than this are dropped even when their process looks alive (pid reuse, other hosts). */
export const STALE_AFTER_MS = 24 * 60 * 60 * 1000;

export function hostTag(name: string = hostname()): string {
  const digest = createHash('sha256').update(name).digest();
  return (digest.readUInt32BE(0) % 36 ** 4).toString(36).padStart(4, '0');
}

export function formatRunId(parts: RunIdParts): string {
  return `${Math.floor(parts.startedAt / 1000).toString(36)}_${parts.pid.toString(36)}_${parts.host}`;
}

export function createRunId(now: number = Date.now(), pid: number = process.pid): string {
  return formatRunId({ startedAt: now, pid, host: hostTag() });
}

const RUN_ID = /^([0-9a-z]{1,8})_([0-9a-z]{1,6})_([0-9a-z]{4})$/;
const NAMED = /^mtp_[tr]_([0-9a-z]{1,8}_[0-9a-z]{1,6}_[0-9a-z]{4})(?:_|$)/;

export function parseRunId(runId: string): RunIdParts | undefined {
  const match = RUN_ID.exec(runId);
  if (!match) return undefined;
  return {
    startedAt: Number.parseInt(match[1]!, 36) * 1000,
    pid: Number.parseInt(match[2]!, 36),
    host: match[3]!,
  };
}

/** The run id embedded in a database or role name made by this package, if any. */
export function runIdOfName(name: string): string | undefined {
  return NAMED.exec(name)?.[1];
}

export interface StalenessContext {
  currentRunId: string;
  now: number;
  /** This machine's {@link hostTag}. */
  host: string;
  /** Whether a process with this pid runs on this machine. */
  isPidAlive: (pid: number) => boolean;
}

/**
 * Whether an object named by run `runId` is left over from a finished (or crashed) run and may be dropped.
 * - the current run: never;
 * - unparseable: never (not ours);
 * - older than {@link STALE_AFTER_MS}: always;
 * - same host: when its process is gone (a concurrent run on this machine is left alone);
 * - another host sharing the server: only by age.
 */
export function isStaleRun(runId: string, context: StalenessContext): boolean {
  if (runId === context.currentRunId) return false;
  const parts = parseRunId(runId);
  if (!parts) return false;
  if (context.now - parts.startedAt > STALE_AFTER_MS) return true;
  if (parts.host !== context.host) return false;
  return !context.isPidAlive(parts.pid);
}

export function isPidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Lowercase `[a-z0-9_]` slug of at most `max` characters (file names, labels). */
export function slug(value: string, max: number): string {
  const cleaned = value
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '_')
    .replace(/^_+|_+$/g, '');
  return cleaned.slice(0, max).replace(/_+$/g, '') || 'x';
}

export function randomSuffix(length = 6): string {
  let out = '';
  while (out.length < length) out += Math.random().toString(36).slice(2);
  return out.slice(0, length);
}
