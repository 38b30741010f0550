/**
 * The fixture app's tenant migrations (courses, enrollments: drizzle-kit output of
 * `packages/db/src/__fixtures__/app-schema.ts`), shared by the db and provisioning integration tests so the
 * SQL lives in one place.
 */
import { createHash } from 'node:crypto';
import {
  cpSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The folder of the fixture app's drizzle-kit migrations (`0000_app_init`), to pass as `migrationsFolder`. */
export const APP_FIXTURE_MIGRATIONS = fileURLToPath(new URL('../fixtures/app-migrations', import.meta.url));

/**
 * An extra folder with the fixture app's `users` tenant table (`0001_users`: email unique per tenant, role),
 * for tests that seed an admin at onboarding: `appFixtureMigrationsWith(APP_FIXTURE_USERS_MIGRATION)`.
 */
export const APP_FIXTURE_USERS_MIGRATION = fileURLToPath(
  new URL('../fixtures/app-users-migration', import.meta.url),
);

interface Journal {
  entries: Array<{ idx: number; version: string; when: number; tag: string; breakpoints: boolean }>;
}

/**
 * The fixture app's migrations followed by every `*.sql` file of `extraFolder` (in name order, the file name
 * without `.sql` as the tag) — a package that needs more tables keeps only its own migrations. Returns a folder
 * under the OS temp dir named by a hash of all the SQL: built once, reused by later runs and by child
 * processes, and safe to build from concurrent processes (written aside, then renamed into place).
 */
export function appFixtureMigrationsWith(extraFolder: string): string {
  const extras = readdirSync(extraFolder)
    .filter((name) => name.endsWith('.sql'))
    .sort()
    .map((name) => ({
      tag: name.slice(0, -'.sql'.length),
      sql: readFileSync(join(extraFolder, name), 'utf8'),
    }));
  const journalPath = join(APP_FIXTURE_MIGRATIONS, 'meta', '_journal.json');
  const journalText = readFileSync(journalPath, 'utf8');
  const hash = createHash('sha256').update(journalText);
  for (const name of readdirSync(APP_FIXTURE_MIGRATIONS)
    .filter((entry) => entry.endsWith('.sql'))
    .sort()) {
    hash.update(name).update(readFileSync(join(APP_FIXTURE_MIGRATIONS, name)));
  }
  for (const extra of extras) hash.update(extra.tag).update(extra.sql);
  const target = join(tmpdir(), `mtp-app-migrations-${hash.digest('hex').slice(0, 16)}`);
  if (existsSync(join(target, 'meta', '_journal.json'))) return target;

  const staging = mkdtempSync(join(tmpdir(), 'mtp-app-migrations-staging-'));
  cpSync(APP_FIXTURE_MIGRATIONS, staging, { recursive: true });
  const journal = JSON.parse(journalText) as Journal;
  const last = journal.entries.at(-1);
  if (last === undefined) throw new Error(`${journalPath} has no entries`);
  for (const [index, extra] of extras.entries()) {
    writeFileSync(join(staging, `${extra.tag}.sql`), extra.sql);
    journal.entries.push({
      idx: journal.entries.length,
      version: last.version,
      when: last.when + 100_000 * (index + 1),
      tag: extra.tag,
      breakpoints: true,
    });
  }
  writeFileSync(join(staging, 'meta', '_journal.json'), `${JSON.stringify(journal, null, 2)}\n`);
  try {
    renameSync(staging, target);
  } catch (error) {
    // Another process put the same content in place first.
    rmSync(staging, { recursive: true, force: true });
    if (!existsSync(join(target, 'meta', '_journal.json'))) throw error;
  }
  return target;
}
