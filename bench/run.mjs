// pnpm bench <http | limits | db> [options] — the entry point of the root `pnpm bench` script.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const scripts = {
  http: './http.bench.mjs',
  limits: './limits.bench.mjs',
  db: './db-scoping.bench.mjs',
};
const [command, ...rest] = process.argv.slice(2);
const script = scripts[command];
if (script === undefined) {
  console.error(
    `usage: pnpm bench <${Object.keys(scripts).join(' | ')}> [options]   (pnpm bench <name> --help for the options)`,
  );
  process.exit(2);
}
// A separate node process per bench: the benches fork servers and must own their process tree.
const result = spawnSync(process.execPath, [fileURLToPath(new URL(script, import.meta.url)), ...rest], {
  stdio: 'inherit',
});
process.exit(result.status ?? 1);
