import { Redis, type RedisOptions } from 'ioredis';

/** Options of {@link createRedisClient}. */
export interface RedisClientOptions {
  /** `redis://host:port/db`. */
  url: string;
  /** Fail a command that has no answer after this long. @default 250 (ms) */
  commandTimeoutMs?: number;
  /** Give up a connection attempt after this long. @default 1000 (ms) */
  connectTimeoutMs?: number;
  /** Extra ioredis options (win over the defaults). */
  redisOptions?: RedisOptions;
}

/**
 * An ioredis client set up for request-path decisions: auto-pipelining on, no offline queue (a
 * command while disconnected fails at once instead of waiting), a short command timeout, one try
 * per command, and reconnects in the background with a capped backoff. The limiter then falls open
 * or closed within milliseconds when Redis is down.
 */
export function createRedisClient(options: RedisClientOptions): Redis {
  return new Redis(options.url, {
    enableAutoPipelining: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    commandTimeout: options.commandTimeoutMs ?? 250,
    connectTimeout: options.connectTimeoutMs ?? 1000,
    retryStrategy: (times) => Math.min(times * 200, 2000),
    ...options.redisOptions,
  });
}

/**
 * Resolves `true` once the ioredis client is ready, `false` after `timeoutMs` (never rejects). A lazy
 * client is asked to connect.
 */
export function waitUntilReady(redis: Redis, timeoutMs: number): Promise<boolean> {
  if (redis.status === 'ready') return Promise.resolve(true);
  if (redis.status === 'wait') redis.connect().catch(() => {});
  return new Promise((resolve) => {
    const done = (ready: boolean) => {
      clearTimeout(timer);
      redis.off('ready', onReady);
      redis.off('end', onEnd);
      resolve(ready);
    };
    const onReady = () => done(true);
    const onEnd = () => done(false);
    const timer = setTimeout(() => done(false), timeoutMs);
    timer.unref?.();
    redis.on('ready', onReady);
    redis.on('end', onEnd);
  });
}
