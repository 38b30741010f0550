// Helpers shared by the bench scripts: flags, statistics, machine info, a throw-away Postgres database,
// result files and the generated sections of docs/performance.md.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import pg from 'pg';

export const benchDir = fileURLToPath(new URL('..', import.meta.url));
export const repoRoot = join(benchDir, '..');
export const resultsDir = join(benchDir, 'results');
export const performanceDoc = join(repoRoot, 'docs', 'performance.md');

export const adminUrl =
  process.env.MT_PAAS_BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
export const redisUrl = process.env.MT_PAAS_BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';

/** Parses `--flag value` options; unknown flags are an error (a typo must not run another bench). */
export function flags(argv, spec, usage) {
  try {
    const { values, positionals } = parseArgs({
      args: argv,
      options: { help: { type: 'boolean', short: 'h' }, ...spec },
      allowPositionals: true,
      strict: true,
    });
    if (values.help) {
      console.log(usage);
      process.exit(0);
    }
    if (positionals.length > 0) throw new Error(`unexpected argument "${positionals[0]}"`);
    return values;
  } catch (error) {
    console.error(`${error.message}\n\n${usage}`);
    process.exit(2);
  }
}

/** A positive number from a flag, or exit 2 with the flag's name. */
export function positive(name, value, { integer = false } = {}) {
  const number = Number(value);
  if (!Number.isFinite(number) || number <= 0 || (integer && !Number.isInteger(number))) {
    console.error(`--${name} must be a positive ${integer ? 'integer' : 'number'} (got "${value}")`);
    process.exit(2);
  }
  return number;
}

export const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
};

/** (max - min) / median, in percent: how far the rounds disagree. */
export const spread = (values) => {
  const middle = median(values);
  return middle === 0 ? 0 : ((Math.max(...values) - Math.min(...values)) / middle) * 100;
};

export function machineInfo() {
  const cpus = os.cpus();
  return {
    cpus: cpus.length,
    cpuModel: cpus[0]?.model ?? 'unknown',
    totalMemoryMb: Math.round(os.totalmem() / 2 ** 20),
    node: process.version,
    platform: `${os.platform()} ${os.release()}`,
    loadAverage: os.loadavg().map((value) => Number(value.toFixed(2))),
  };
}

export const timestamp = () =>
  new Date()
    .toISOString()
    .replace(/[:.]/g, '-')
    .replace(/-\d{3}Z$/, 'Z');

export function withDatabase(url, database) {
  const parsed = new URL(url);
  parsed.pathname = `/${database}`;
  return parsed.toString();
}

export function withUser(url, user, password) {
  const parsed = new URL(url);
  parsed.username = user;
  parsed.password = password;
  return parsed.toString();
}

/** Drops (if left over) and creates `name`; returns its URL. */
export async function freshDatabase(name) {
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  return withDatabase(adminUrl, name);
}

export async function dropDatabase(name) {
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  } finally {
    await admin.end();
  }
}

/** Drops a role the bench created (after its database is gone, nothing else refers to it). */
export async function dropRole(name) {
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    await admin.query(`DROP ROLE IF EXISTS ${name}`);
  } finally {
    await admin.end();
  }
}

/** Every Redis key matching `pattern` (SCAN, never KEYS: the Redis may be shared). */
export async function scanKeys(redis, pattern) {
  const found = [];
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    cursor = next;
    found.push(...keys);
  } while (cursor !== '0');
  return found;
}

/** Deletes every Redis key under `prefix`. */
export async function deleteRedisKeys(redis, prefix) {
  const keys = await scanKeys(redis, `${prefix}*`);
  let deleted = 0;
  for (let index = 0; index < keys.length; index += 500)
    deleted += await redis.del(...keys.slice(index, index + 500));
  return deleted;
}

/** Writes `bench/results/<name>` (or `dir/<name>`); returns the path relative to the repo root. */
export function writeResult(name, content, dir = resultsDir) {
  mkdirSync(dir, { recursive: true });
  const path = join(dir, name);
  writeFileSync(path, content);
  return relative(repoRoot, path);
}

/** A markdown table from a header row and rows of cells. */
export function table(header, rows) {
  const line = (cells) => `| ${cells.join(' | ')} |`;
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n');
}

const DOC_INTRO = `# Performance

What the mt-paas layers cost, measured by the scripts in \`bench/\` (private package \`@mt-paas/bench\`).
Each \`## …\` section below is written by one script and replaced as a whole when it runs again;
the raw numbers of every run are in \`bench/results/\`.

| command | measures |
| --- | --- |
| \`pnpm bench http\` | the HTTP request path, layer by layer, on Fastify, Express and Hono |
| \`pnpm bench limits\` | rate limit and quota decisions per second and their exactness under concurrency |
| \`pnpm bench db\` | tenant-scoped units of work against the same query unscoped |

Smoke test (every script, short cells, non-zero exit on any failure, no timing asserted):
\`pnpm bench http --quick && pnpm bench limits --quick\`.
`;

/**
 * Replaces the section that starts with `heading` (a `## ` line) up to the next `## ` heading in
 * docs/performance.md, or appends it; creates the file when absent.
 */
export function updateDocSection(heading, body) {
  let doc;
  try {
    doc = readFileSync(performanceDoc, 'utf8');
  } catch {
    doc = DOC_INTRO;
  }
  const section = `${heading}\n\n${body.trim()}\n`;
  const lines = doc.split('\n');
  const start = lines.findIndex((line) => line.trim() === heading);
  if (start === -1) {
    doc = `${doc.trimEnd()}\n\n${section}`;
  } else {
    let end = lines.findIndex((line, index) => index > start && /^## /.test(line));
    if (end === -1) end = lines.length;
    const before = lines.slice(0, start).join('\n').trimEnd();
    const after = lines.slice(end).join('\n').trim();
    doc = `${before}\n\n${section}${after === '' ? '' : `\n${after}\n`}`;
  }
  mkdirSync(dirname(performanceDoc), { recursive: true });
  writeFileSync(performanceDoc, doc);
  return relative(repoRoot, performanceDoc);
}

export const fmt = (value, digits = 0) =>
  value === undefined || value === null || Number.isNaN(value) ? '—' : Number(value).toFixed(digits);
