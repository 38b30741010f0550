import { readdirSync, readFileSync } from 'node:fs';

/**
 * CPU time (µs) of this process's main thread and of all its other threads together (V8's GC helpers and
 * compiler, libuv's pool), from Linux's /proc/self/task/<tid>/schedstat (ns on CPU); undefined elsewhere.
 * process.cpuUsage() counts every thread; a CPU profile (--cpu-prof) sees only the main thread.
 */
export function threadCpu() {
  try {
    let main = 0;
    let others = 0;
    for (const tid of readdirSync('/proc/self/task')) {
      const ns = Number(readFileSync(`/proc/self/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
      if (Number(tid) === process.pid) main += ns / 1000;
      else others += ns / 1000;
    }
    return { main, others };
  } catch {
    return undefined;
  }
}
