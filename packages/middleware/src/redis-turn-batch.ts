import type { Redis } from 'ioredis';

type Call = () => void;
const queues = new WeakMap<Redis, Call[]>();

/**
 * Issues `call` for `redis` in the check phase of the current event-loop turn (`setImmediate`) together
 * with every other call queued for the same client in that turn, one after the other in the same tick.
 *
 * Why: ioredis's auto-pipelining joins the commands issued in one tick (it flushes on `process.nextTick`),
 * but an HTTP server handles each request in its own socket callback, and Node drains the `nextTick` queue
 * after every callback, so each request's `EVALSHA` went out in a write of its own and its answer came back
 * in a read of its own. Deferred to the check phase, the limit calls of every request read in one poll
 * phase leave in one write and their answers arrive together. Each call is still its own command with its
 * own answer, timeout and error (the queue is FIFO, the scripts atomic in Redis), so decisions are the same.
 *
 * Only for clients with `enableAutoPipelining` (as {@link createRedisClient} builds them): without it each
 * command is written on its own anyway and the deferral would only add latency, so `call` runs at once.
 */
export function inTurnBatch<T>(redis: Redis, call: () => Promise<T>): Promise<T> {
  if (redis.options?.enableAutoPipelining !== true) return call();
  return new Promise<T>((resolve, reject) => {
    let queue = queues.get(redis);
    if (queue === undefined) {
      queue = [];
      queues.set(redis, queue);
    }
    if (queue.length === 0) setImmediate(flush, redis);
    queue.push(() => {
      try {
        call().then(resolve, reject);
      } catch (error) {
        reject(error);
      }
    });
  });
}

function flush(redis: Redis): void {
  const queue = queues.get(redis);
  if (queue === undefined) return;
  queues.set(redis, []);
  for (const call of queue) call();
}
