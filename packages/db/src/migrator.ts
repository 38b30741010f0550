import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { MtPaasError } from '@mt-paas/context';
import type { SqlSession } from './driver.js';
import { quoteIdentifier, quoteLiteral } from './sql-text.js';

/** One drizzle-kit migration: its tag (`0001_add_courses`), a content hash and its statements. */
export interface MigrationFile {
  tag: string;
  hash: string;
  statements: string[];
}

/** Name of the per-target ledger table the migrator keeps next to the migrated tables. */
export const LEDGER_TABLE = '__mt_paas_migrations';

interface Journal {
  entries: Array<{ idx: number; tag: string; breakpoints: boolean }>;
}

/**
 * Reads a drizzle-kit output folder (`meta/_journal.json` + `<tag>.sql`).
 *
 * @throws MtPaasError `CONFIG_INVALID` when the folder or a listed file is missing.
 */
export function readMigrationsFolder(folder: string): MigrationFile[] {
  const journalPath = join(folder, 'meta', '_journal.json');
  if (!existsSync(journalPath)) {
    throw new MtPaasError(
      'CONFIG_INVALID',
      `No drizzle-kit migrations in ${folder} (missing meta/_journal.json). Run \`drizzle-kit generate\` and point migrationsFolder at its "out" folder.`,
      { details: { folder } },
    );
  }
  const journal = JSON.parse(readFileSync(journalPath, 'utf8')) as Journal;
  return journal.entries
    .slice()
    .sort((a, b) => a.idx - b.idx)
    .map((entry) => {
      const path = join(folder, `${entry.tag}.sql`);
      if (!existsSync(path)) {
        throw new MtPaasError(
          'CONFIG_INVALID',
          `Migration ${entry.tag} is in the journal but ${path} is missing.`,
        );
      }
      const text = readFileSync(path, 'utf8');
      const statements = text
        .split('--> statement-breakpoint')
        .map((statement) => statement.trim())
        .filter((statement) => statement.replace(/--[^\n]*/g, '').trim().length > 0);
      return { tag: entry.tag, hash: createHash('sha256').update(text).digest('hex'), statements };
    });
}

/** Where and how {@link applyMigrations} runs. */
export interface ApplyMigrationsOptions {
  migrations: readonly MigrationFile[];
  /** Schema holding the ledger table (created when missing). */
  ledgerSchema: string;
  /** `search_path` for the migration statements (set locally in the transaction). */
  searchPath?: string;
  /** Rewrites each statement before it runs (schema renames). */
  rewrite?: (statement: string) => string;
  /** Serialises concurrent runs on the same target. */
  lockKey: string;
  /** Runs after the migrations, in the same transaction (grants, FORCE RLS …). */
  after?: (session: SqlSession) => Promise<void>;
}

/**
 * Applies the pending migrations of one target in one transaction, under an advisory lock,
 * recording each in the target's ledger table. Idempotent: applied tags are skipped; a tag whose
 * file changed after it was applied is reported as an error.
 *
 * @returns the tags applied by this call.
 */
export async function applyMigrations(
  session: SqlSession,
  options: ApplyMigrationsOptions,
): Promise<string[]> {
  const ledger = `${quoteIdentifier(options.ledgerSchema)}.${quoteIdentifier(LEDGER_TABLE)}`;
  await session.exec(
    `SELECT pg_advisory_xact_lock(hashtext(${quoteLiteral(`mt_paas_migrate:${options.lockKey}`)}));` +
      `CREATE SCHEMA IF NOT EXISTS ${quoteIdentifier(options.ledgerSchema)};` +
      `CREATE TABLE IF NOT EXISTS ${ledger} (version text PRIMARY KEY, hash text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`,
  );
  if (options.searchPath !== undefined) {
    await session.query(`SELECT set_config('search_path', $1, true)`, [quoteIdentifier(options.searchPath)]);
  }
  const { rows } = await session.query<{ version: string; hash: string }>(
    `SELECT version, hash FROM ${ledger}`,
  );
  const applied = new Map(rows.map((row) => [row.version, row.hash]));
  const done: string[] = [];
  for (const migration of options.migrations) {
    const previous = applied.get(migration.tag);
    if (previous !== undefined) {
      if (previous !== migration.hash) {
        throw new MtPaasError(
          'CONFIG_INVALID',
          `Migration ${migration.tag} was changed after it was applied to ${options.lockKey}. Never edit an applied migration; add a new one with drizzle-kit generate.`,
          { details: { tag: migration.tag, target: options.lockKey } },
        );
      }
      continue;
    }
    for (const statement of migration.statements) {
      await session.exec(options.rewrite ? options.rewrite(statement) : statement);
    }
    await session.query(`INSERT INTO ${ledger} (version, hash) VALUES ($1, $2)`, [
      migration.tag,
      migration.hash,
    ]);
    done.push(migration.tag);
  }
  if (options.after) await options.after(session);
  return done;
}
