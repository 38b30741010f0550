import { createHash } from 'node:crypto';
import { afterAll, beforeAll } from 'vitest';
import { currentFileLabel } from './file-scope.js';
import { dropDatabase, quoteIdentifier, withClient, withDatabase } from './postgres-admin.js';
import { DATABASE_PREFIX, randomSuffix, slug } from './run-id.js';
import { providedTestEnv } from './test-backend.js';
import { TestEnvError } from './test-env-error.js';
import type { AvailableService } from './types.js';

/** A named template database: built once per run by `setup`, then cloned for every test file that asks. */
export interface TestTemplate {
  /** `^[a-z][a-z0-9_]{0,23}$`; unique per run (two definitions with one name share one template). */
  readonly name: string;
  /**
   * Fills the template, e.g. runs migrations. Receives an admin URL of the template database.
   * Close every connection you open before returning (a template with open connections cannot be cloned).
   */
  readonly setup: (url: string) => Promise<void>;
}

export interface CreateTestDatabaseOptions {
  /** Clone this template (a {@link defineTestTemplate} result, or the name of one defined in this file). @default an empty database */
  template?: TestTemplate | string;
  /** Readable part of the database name. @default the test file's name */
  label?: string;
}

/** A fresh database of its own, on the run's Postgres server. */
export interface TestDatabase {
  /** Database name, `mtp_t_<runId>_<label>_<random>`. */
  readonly name: string;
  /** Admin (superuser or CREATEDB role) URL of this database. Use `createAppRole(url)` where RLS is under test. */
  readonly url: string;
  /** `server_version_num` of the server. */
  readonly serverVersion: number | undefined;
  /** Drops the database, terminating connections left open. Idempotent. */
  drop(): Promise<void>;
}

const TEMPLATE_NAME = /^[a-z][a-z0-9_]{0,23}$/;
const templates = new Map<string, TestTemplate>();
const templateBuilds = new Map<TestTemplate, Promise<string>>();

/**
 * Declares a template database. Nothing happens until a test file asks `createTestDatabase({ template })`:
 * the first asker (across all workers, serialized by an advisory lock) builds it; everyone clones it.
 */
export function defineTestTemplate(name: string, setup: (url: string) => Promise<void>): TestTemplate {
  if (!TEMPLATE_NAME.test(name)) {
    throw new TestEnvError(
      'TEST_TEMPLATE_NAME',
      `template name "${name}" must match ${TEMPLATE_NAME}: a lower-case letter, then up to 23 lower-case letters, digits or "_" (e.g. "notes", "catalog_v2")`,
    );
  }
  const template: TestTemplate = Object.freeze({ name, setup });
  templates.set(name, template);
  return template;
}

/** The Postgres server of this run; throws (with the skip reason) when there is none. */
export function requirePostgres(context?: {
  skip: (note?: string) => void;
}): AvailableService & { serverVersion?: number } {
  const postgres = providedTestEnv().backend.postgres;
  if (postgres.available) return postgres;
  context?.skip(postgres.reason);
  throw new TestEnvError(
    'TEST_POSTGRES_UNAVAILABLE',
    `This test needs a Postgres server. ${postgres.reason} Guard it with describeWithPostgres() / itWithPostgres().`,
  );
}

/**
 * Four characters naming the project and the setup code: two packages (or two different setups) that pick
 * the same template name get two templates; identical definitions in one package share one.
 */
function templateScope(projectName: string, template: TestTemplate): string {
  const digest = createHash('sha256').update(`${projectName}\u0000${template.setup.toString()}`).digest();
  return (digest.readUInt32BE(0) % 36 ** 4).toString(36).padStart(4, '0');
}

async function buildTemplate(
  server: AvailableService & { serverVersion?: number },
  runId: string,
  projectName: string,
  template: TestTemplate,
) {
  const scope = templateScope(projectName, template);
  const finalName = `${DATABASE_PREFIX}${runId}_tpl_${scope}_${template.name}`;
  const buildingName = `${DATABASE_PREFIX}${runId}_tpb_${scope}_${template.name}`;
  await withClient(server.url, async (client) => {
    // Advisory locks are per database: every worker takes this one on the same admin database.
    await client.query('SELECT pg_advisory_lock(hashtext($1))', [finalName]);
    try {
      const exists = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [finalName]);
      if (exists.rowCount) return;
      await dropDatabase(client, buildingName, server.serverVersion);
      await client.query(`CREATE DATABASE ${quoteIdentifier(buildingName)}`);
      try {
        await template.setup(withDatabase(server.url, buildingName));
      } catch (error) {
        await dropDatabase(client, buildingName, server.serverVersion).catch(() => {});
        throw new TestEnvError(
          'TEST_TEMPLATE_SETUP_FAILED',
          `setup of test template "${template.name}" failed: ${error instanceof Error ? error.message : String(error)}. ` +
            'Fix the setup function given to defineTestTemplate(); its half-built database was dropped, so the next run builds it afresh.',
          { cause: error },
        );
      }
      // Connections the setup forgot would block the rename and every clone.
      await client.query(
        'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()',
        [buildingName],
      );
      await renameWhenFree(client, buildingName, finalName);
      // Nobody may connect to the template: a stray connection would make `CREATE DATABASE ... TEMPLATE` fail.
      await client.query(`ALTER DATABASE ${quoteIdentifier(finalName)} WITH ALLOW_CONNECTIONS false`);
    } finally {
      await client.query('SELECT pg_advisory_unlock(hashtext($1))', [finalName]).catch(() => {});
    }
  });
  return finalName;
}

async function renameWhenFree(client: import('pg').Client, from: string, to: string): Promise<void> {
  // Terminated backends take a moment to exit; the rename fails with 55006 until they have.
  for (let attempt = 0; ; attempt++) {
    try {
      await client.query(`ALTER DATABASE ${quoteIdentifier(from)} RENAME TO ${quoteIdentifier(to)}`);
      return;
    } catch (error) {
      if ((error as { code?: string }).code !== '55006' || attempt >= 50) throw error;
      await client.query(
        'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()',
        [from],
      );
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

function ensureTemplate(
  server: AvailableService & { serverVersion?: number },
  runId: string,
  projectName: string,
  template: TestTemplate,
) {
  let build = templateBuilds.get(template);
  if (!build) {
    build = buildTemplate(server, runId, projectName, template);
    templateBuilds.set(template, build);
    build.catch(() => templateBuilds.delete(template));
  }
  return build;
}

/**
 * Creates a fresh database for the calling test file (empty, or cloned from a template with
 * `CREATE DATABASE ... TEMPLATE`). Everything the run creates is also dropped by the last global teardown,
 * and by the next run if this one crashes.
 */
export async function createTestDatabase(options: CreateTestDatabaseOptions = {}): Promise<TestDatabase> {
  const { backend, projectName } = providedTestEnv();
  const server = requirePostgres();
  let template: TestTemplate | undefined;
  if (typeof options.template === 'string') {
    template = templates.get(options.template);
    if (!template) {
      throw new TestEnvError(
        'TEST_TEMPLATE_UNKNOWN',
        `no test template named "${options.template}" is defined in this test file; call defineTestTemplate("${options.template}", setup) first`,
      );
    }
  } else {
    template = options.template;
  }
  const templateName = template
    ? await ensureTemplate(server, backend.runId, projectName, template)
    : undefined;
  const name = `${DATABASE_PREFIX}${backend.runId}_${slug(options.label ?? currentFileLabel('db'), 16)}_${randomSuffix(6)}`;
  await withClient(server.url, async (client) => {
    await client.query(
      `CREATE DATABASE ${quoteIdentifier(name)}${templateName ? ` TEMPLATE ${quoteIdentifier(templateName)}` : ''}`,
    );
  });
  let dropped: Promise<void> | undefined;
  return {
    name,
    url: withDatabase(server.url, name),
    serverVersion: server.serverVersion,
    drop() {
      dropped ??= withClient(server.url, (client) => dropDatabase(client, name, server.serverVersion));
      return dropped;
    },
  };
}

/** A {@link TestDatabase} whose fields are readable once the file's `beforeAll` ran. */
export interface TestDatabaseHandle {
  readonly name: string;
  readonly url: string;
  readonly serverVersion: number | undefined;
  /** The underlying database object. */
  readonly database: TestDatabase;
}

/**
 * Registers `beforeAll` (create) and `afterAll` (drop) for the current file or describe block and returns
 * a handle: `const db = useTestDatabase(); it('…', () => connect(db.url))`.
 * When no Postgres server is available it does nothing (guard the tests with `describeWithPostgres`).
 */
export function useTestDatabase(options: CreateTestDatabaseOptions = {}): TestDatabaseHandle {
  let database: TestDatabase | undefined;
  beforeAll(async () => {
    if (!providedTestEnv().backend.postgres.available) return;
    database = await createTestDatabase(options);
  });
  afterAll(async () => {
    await database?.drop();
  });
  const get = (): TestDatabase => {
    if (database) return database;
    const postgres = providedTestEnv().backend.postgres;
    throw new TestEnvError(
      'TEST_DATABASE_NOT_READY',
      postgres.available
        ? 'the test database is created in beforeAll: read its fields inside hooks or tests, not at collection time'
        : `no test database: ${postgres.reason}`,
    );
  };
  return {
    get name() {
      return get().name;
    },
    get url() {
      return get().url;
    },
    get serverVersion() {
      return get().serverVersion;
    },
    get database() {
      return get();
    },
  };
}
