import { fileScopeToken } from './file-scope.js';
import { REDIS_PREFIX, runIdOfRedisKey } from './run-id.js';
import { providedTestEnv } from './test-backend.js';
import { TestEnvError } from './test-env-error.js';

export interface TestRedisOptions {
  /** Readable part of the prefix; different labels in one file get different prefixes. @default the test file's name */
  label?: string;
}

/** The run's Redis server and a key prefix owned by the calling test file. */
export interface TestRedis {
  /** Redis URL (`redis://…`) of the run's server. */
  readonly url: string;
  /** `mtp:t:<runId>:<file>_<random>:` — the same for every call from one file, different between files. */
  readonly prefix: string;
  /** `prefix + name`. */
  key(name: string): string;
  /** Deletes every key under `prefix` (SCAN + UNLINK); resolves to the number of keys removed. */
  flush(): Promise<number>;
}

/** The run's Redis server; throws (with the skip reason, or skips when given the test context) when there is none. */
export function requireRedis(context?: { skip: (note?: string) => void }): { url: string } {
  const redis = providedTestEnv().backend.redis;
  if (redis.available) return { url: redis.url };
  context?.skip(redis.reason);
  throw new TestEnvError(
    'TEST_REDIS_UNAVAILABLE',
    `This test needs a Redis server. ${redis.reason} Guard it with describeWithRedis() / itWithRedis().`,
  );
}

/**
 * SCANs `url` for keys matching `pattern` and UNLINKs those `spare` does not keep, a page at a time.
 * Resolves to the number of keys removed.
 */
async function unlinkMatching(
  url: string,
  pattern: string,
  spare?: (key: string) => boolean,
): Promise<number> {
  const { Redis } = await import('ioredis');
  const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1, enableOfflineQueue: false });
  client.on('error', () => {});
  await client.connect();
  try {
    let cursor = '0';
    let removed = 0;
    do {
      const [next, keys] = await client.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
      cursor = next;
      const doomed = spare === undefined ? keys : keys.filter((key) => !spare(key));
      if (doomed.length > 0) removed += await client.unlink(...doomed);
    } while (cursor !== '0');
    return removed;
  } finally {
    client.disconnect();
  }
}

/** Removes every key matching `pattern` on `url`. */
export function deleteRedisKeys(url: string, pattern: string): Promise<number> {
  return unlinkMatching(url, pattern);
}

/**
 * Deletes keys of runs that are over: every `mtp:t:<runId>:…` key whose run id is not in `liveRunIds`.
 * Resolves to the number of keys removed.
 */
export function deleteStaleRedisKeys(url: string, liveRunIds: ReadonlySet<string>): Promise<number> {
  return unlinkMatching(url, `${REDIS_PREFIX}*`, (key) => {
    const runId = runIdOfRedisKey(key);
    return runId === undefined || liveRunIds.has(runId);
  });
}

function escapeGlob(value: string): string {
  return value.replace(/[*?[\]\\]/g, '\\$&');
}

/**
 * Redis for the calling test file: the server URL plus a key prefix nobody else in the run uses.
 * Keys under every prefix of the run are deleted by the last global teardown.
 */
export function testRedis(options: TestRedisOptions = {}): TestRedis {
  const { url } = requireRedis();
  const { backend } = providedTestEnv();
  const prefix = `${REDIS_PREFIX}${backend.runId}:${fileScopeToken(options.label)}:`;
  return {
    url,
    prefix,
    key: (name) => `${prefix}${name}`,
    flush: () => deleteRedisKeys(url, `${escapeGlob(prefix)}*`),
  };
}
