import { createHash } from 'node:crypto';
import { hostname } from 'node:os';

/**
 * Run-scoped names. Everything a run creates on a shared server is named
 * `mtp_t_<runId>_...` (databases) or `mtp_r_<runId>_...` (roles), with
 * `runId = <start time, base36 seconds>_<pid base36>_<host hash, 4 chars>`.
 * The run id tells a later run which objects belong together; whether that run is over is read from the
 * server (see {@link isStaleRun}).
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

/** `application_name` of the session each run holds open on the admin database while it lives. */
export function runSessionName(runId: string): string {
  return `mtp_test_env_run:${runId}`;
}

const REDIS_NAMED = /^mtp:t:([0-9a-z]{1,8}_[0-9a-z]{1,6}_[0-9a-z]{4}):/;

/** The run id in a Redis key made by this package (`mtp:t:<runId>:…`), if any. */
export function runIdOfRedisKey(key: string): string | undefined {
  return REDIS_NAMED.exec(key)?.[1];
}

export interface StalenessContext {
  currentRunId: string;
  now: number;
  /** Run ids that hold their {@link runSessionName} session open right now (read from `pg_stat_activity`). */
  liveRunIds: ReadonlySet<string>;
}

/** A run younger than this is never judged stale (it may not have opened its session yet). */
export const STARTUP_GRACE_MS = 2 * 60 * 1000;

/**
 * Whether objects named by run `runId` are left over from a finished (or crashed) run and may be dropped.
 * A live run keeps a session named {@link runSessionName} open on the Postgres server; the server closes it
 * when the process dies, however it dies. So, independent of hosts and pid namespaces:
 * - the current run, a run with a live session, or a run started less than {@link STARTUP_GRACE_MS} ago: keep;
 * - names without a parseable run id: keep (not ours);
 * - everything else: stale.
 */
export function isStaleRun(runId: string, context: StalenessContext): boolean {
  if (runId === context.currentRunId || context.liveRunIds.has(runId)) return false;
  const parts = parseRunId(runId);
  if (!parts) return false;
  return context.now - parts.startedAt > STARTUP_GRACE_MS;
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
