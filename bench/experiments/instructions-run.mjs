// Experiment (not part of `pnpm bench`): instructions per request of each adapter-cost-server variant, counted
// by valgrind's callgrind — the same count for the same work whatever else the machine is doing, unlike CPU time
// on this shared 2-core machine, where two identical servers differ by ~1 µs per request.
//   node instructions-run.mjs <framework:variant,...> [requests] [warm-up requests]
// Each server runs under `valgrind --tool=callgrind` with Node's `--single-threaded` (no concurrent GC or
// compiler threads, so the JIT's work lands in a fixed order); after the warm-up its counters are zeroed
// (`callgrind_control -z`), `requests` are sent from autocannon (8 connections, the bench's request list), and the
// counters dumped (`callgrind_control -d`): instructions (Ir) / requests. Every thread and GC is in the count; the
// figure to compare leaves out V8's optimizing compiler (see splitDump).
import { execFileSync, fork } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import autocannon from 'autocannon';

const variants = process.argv[2].split(',');
const requests = Number(process.argv[3] ?? 4000);
const warmup = Number(process.argv[4] ?? 8000);
const requestList = Array.from({ length: 100 }, (_, index) => ({
  method: 'GET',
  path: `/items/${(index % 50) + 1}`,
  headers: { 'x-tenant-id': `t${String(index).padStart(4, '0')}` },
}));
const load = (port, amount) =>
  autocannon({ url: `http://127.0.0.1:${port}`, connections: 8, amount, requests: requestList, timeout: 60 });

/**
 * Self instructions of V8's optimizing compilers and of its garbage collector in a callgrind dump. The compiler's
 * share is left out of the comparable figure: Node 20 still tiers code up after 40,000 requests (a one-time cost,
 * run on a background thread at speed), and how much of it lands in the window varies by some 10k per request.
 */
function splitDump(text) {
  const names = new Map();
  let current = '';
  let skipNext = false;
  let compiler = 0;
  let gc = 0;
  for (const line of text.split('\n')) {
    if (skipNext) {
      skipNext = false; // the inclusive cost of a call, not the caller's own
      continue;
    }
    if (line.startsWith('fn=')) {
      const match = /^fn=\((\d+)\)(?: (.*))?$/.exec(line);
      if (match?.[2] !== undefined) names.set(match[1], match[2]);
      current = match === null ? line.slice(3) : (names.get(match[1]) ?? '');
    } else if (line.startsWith('cfn=')) {
      const match = /^cfn=\((\d+)\) (.*)$/.exec(line);
      if (match !== null) names.set(match[1], match[2]);
    } else if (line.startsWith('calls=')) skipNext = true;
    else if (/^[0-9+*-]/.test(line)) {
      const cost = Number(line.split(' ')[1] ?? 0);
      if (/v8::internal::compiler::|maglev|turboshaft/i.test(current)) compiler += cost;
      else if (/Heap|Scavenger|MarkCompact|Marking|Sweeper|Evacuat/.test(current)) gc += cost;
    }
  }
  return { compiler, gc };
}

for (const variant of variants) {
  const dir = mkdtempSync(join(tmpdir(), 'mtp-cg-'));
  const child = fork(new URL('./adapter-cost-server.mjs', import.meta.url), [variant], {
    execPath: 'valgrind',
    execArgv: [
      '--tool=callgrind',
      '--smc-check=all-non-file',
      `--callgrind-out-file=${join(dir, 'cg.out')}`,
      process.execPath,
      '--single-threaded',
      // Under valgrind the process allocates slowly by the clock, so V8's memory reducer starts full GCs that a
      // server at speed never runs (checked with --trace-gc: no mark-compact in 160,000 requests of any variant),
      // and each one flushes bytecode that must then be compiled again. Both are off here.
      '--no-memory-reducer',
      '--no-flush-bytecode',
      // PERFMAP=1: /tmp/perf-<pid>.map names the JIT code's addresses (for attributing the dump by JS function).
      ...(process.env.PERFMAP === '1' ? ['--perf-basic-prof'] : []),
    ],
    stdio: ['ignore', 'ignore', 'ignore', 'ipc'],
  });
  const port = await new Promise((resolve) => child.once('message', (message) => resolve(message.port)));
  const warm = await load(port, warmup);
  execFileSync('callgrind_control', ['-z', String(child.pid)], { stdio: 'ignore' });
  const measured = await load(port, requests);
  execFileSync('callgrind_control', ['-d', String(child.pid)], { stdio: 'ignore' });
  const done = measured.requests.total;
  const dumps = readdirSync(dir).filter((name) => name.startsWith('cg.out.'));
  const text = readFileSync(join(dir, dumps.sort().at(-1)), 'utf8');
  const ir = Number(/^(?:summary|totals): (\d+)/m.exec(text)[1]);
  const { compiler, gc } = splitDump(text);
  const k = (count) => `${(count / done / 1000).toFixed(1)}k`;
  console.log(
    `${variant.padEnd(18)} ${k(ir).padStart(7)} instructions/request, ${k(ir - compiler).padStart(7)} without the JIT compiler (compiler ${k(compiler)}, GC ${k(gc)})  (${done} requests, ${warm.requests.total} warm-up, non-2xx ${measured.non2xx}, ${measured.requests.average} req/s under valgrind)`,
  );
  child.send('close');
  await new Promise((resolve) => child.once('exit', resolve));
  // KEEP=1 keeps the dump for callgrind_annotate (which functions of Node / V8 the instructions are in).
  if (process.env.KEEP === '1') console.log(`  dump: ${join(dir, dumps.sort().at(-1))} (pid ${child.pid})`);
  else rmSync(dir, { recursive: true, force: true });
}
