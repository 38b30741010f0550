import { readFileSync, statSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  createTenantDb,
  type DatabaseModeOptions,
  placementAppPassword,
  placementAppUrl,
  placementPasswordFingerprint,
} from '@mt-paas/db';
import { assertIsolation } from '@mt-paas/db/testing';
import { describeWithPostgres, useTestDatabase } from '@mt-paas/test-env';
import { sql } from 'drizzle-orm';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { courses } from './__fixtures__/app-schema.js';
import {
  FIXTURE_MIGRATIONS,
  openEnvironment,
  type ProvisioningEnvironment,
} from './__fixtures__/environment.js';
import {
  type SecondCluster,
  secondClusterSkipReason,
  startSecondCluster,
} from './__fixtures__/second-cluster.js';
import { createDockerPlacement, type DockerRunner } from './docker-placement.js';
import { createIsolationModeStore, type PlacementStrategy } from './isolation-mode.js';
import { createProvisioner, type Provisioner } from './provisioner.js';
import { testIsolationModeStore } from './testing.js';

const TEMPLATES = fileURLToPath(new URL('../../../templates/', import.meta.url));
const skip = secondClusterSkipReason();

/** A Docker engine stand-in: answers or not, and records the commands it was given. */
function fakeDocker(
  answers: boolean,
  onRun?: (args: readonly string[]) => Promise<void>,
): DockerRunner & { commands: string[][] } {
  const commands: string[][] = [];
  return {
    commands,
    available: async () => answers,
    async run(args) {
      commands.push([...args]);
      await onRun?.(args);
    },
  };
}

async function queryOn<R extends pg.QueryResultRow>(url: string, text: string): Promise<R[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<R>(text)).rows;
  } finally {
    await client.end();
  }
}

describeWithPostgres(
  'docker-per-tenant placement (a second local cluster stands in for the container database)',
  () => {
    describe.skipIf(skip !== undefined)(skip ?? 'second cluster', () => {
      const database = useTestDatabase({ label: 'docker' });
      let environment: ProvisioningEnvironment;
      let cluster: SecondCluster;
      let deployRoot: string;
      const printed: string[] = [];
      const provisionerWith = (docker: DockerRunner): Provisioner => {
        const placement = createDockerPlacement({
          catalog: environment.catalog,
          composeTemplate: join(TEMPLATES, 'docker-compose.template.yml'),
          deployRoot,
          // block 0 = 5438-5447, its db port (offset 2) = 5440: the second cluster
          portRangeStart: cluster.port - 2,
          portRangeSize: 10,
          serviceId: 'keli_tutor',
          baseDomain: 'keli.example.ac.kr',
          database: { host: '127.0.0.1', user: 'postgres' },
          docker,
          log: (line) => printed.push(line),
          databaseReadyTimeoutMs: 10_000,
        });
        return createProvisioner({
          catalog: environment.catalog,
          tenantDbs: environment.tenantDbs,
          defaultMode: 'docker',
          placements: { docker: placement },
        });
      };

      /** A `database` tenant db of the test database whose placement-URL tenants use `database` options. */
      const databaseTenantDb = (database: DatabaseModeOptions) =>
        createTenantDb({
          mode: 'database',
          catalog: environment.catalog,
          connectionString: environment.appUrl,
          adminConnectionString: environment.adminUrl,
          migrationsFolder: FIXTURE_MIGRATIONS,
          database: { maxConnections: 4, connectionsPerTenant: 1, ...database },
        });

      beforeAll(async () => {
        cluster = startSecondCluster(5440);
        environment = await openEnvironment(database.url, 'dk');
        deployRoot = await mkdtemp(join(tmpdir(), 'mtp-deploy-'));
      });
      afterAll(async () => {
        await environment?.close();
        cluster?.drop();
        if (deployRoot) await rm(deployRoot, { recursive: true, force: true });
      });

      it('onboards in docker mode: port block, rendered deploy folder, storage migrated on the tenant server, scoped query there', async () => {
        const provisioner = provisionerWith(fakeDocker(false));
        const tenant = await provisioner.onboard({ id: 'dk_alpha', name: 'Alpha University' });
        expect(tenant.status).toBe('active');
        expect(tenant.placement.mode).toBe('docker');
        expect(tenant.placement.location).toMatch(
          /^postgresql:\/\/postgres:[^@]+@127\.0\.0\.1:5440\/t_dk_alpha$/,
        );

        // the database lives on the second cluster, migrated; not on the main server
        const there = await queryOn<{ datname: string }>(
          cluster.url(),
          `SELECT datname FROM pg_database WHERE datname = 't_dk_alpha'`,
        );
        expect(there).toHaveLength(1);
        const here = await environment.query(`SELECT 1 FROM pg_database WHERE datname = 't_dk_alpha'`);
        expect(here).toEqual([]);
        const ledger = await queryOn<{ version: string }>(
          cluster.url('t_dk_alpha'),
          'SELECT version FROM __mt_paas_migrations ORDER BY version',
        );
        expect(ledger.map((row) => row.version)).toEqual(['0000_app_init', '0001_users']);

        const seen = await provisioner
          .tenantDbFor('docker')
          .forTenant('dk_alpha')
          .run(async (tx) => {
            await tx.insert(courses).values({ title: 'On the container db', code: 'c1' });
            const result = await tx.execute(
              sql`select inet_server_port() as port, current_database() as db, current_user::text as user,
                         count(*)::int as n from courses`,
            );
            return (result as unknown as { rows: unknown[] }).rows[0];
          });
        // as the NOSUPERUSER app role created on the tenant server, not as the placement URL's owner
        expect(seen).toEqual({ port: 5440, db: 't_dk_alpha', user: 'app', n: 1 });
        const [appRole] = await queryOn(
          cluster.url(),
          `SELECT rolsuper, rolbypassrls, rolcanlogin FROM pg_roles WHERE rolname = 'app'`,
        );
        expect(appRole).toEqual({ rolsuper: false, rolbypassrls: false, rolcanlogin: true });
        // the backend's DATABASE_URL and the control plane's units use the same role and password
        const appUrl = await provisioner.tenantDbFor('docker').databaseUrlOf('dk_alpha' as never);
        expect(appUrl).toBe(placementAppUrl(tenant.placement.location!));
        const envFile = readFileSync(join(deployRoot, 'dk_alpha', '.env'), 'utf8');
        expect(/^DATABASE_URL=postgresql:\/\/app:([^@]+)@/m.exec(envFile)?.[1]).toBe(
          new URL(appUrl).password,
        );

        // the deploy folder: three checked files, secrets private, the command printed (no engine)
        const folder = join(deployRoot, 'dk_alpha');
        const compose = parse(readFileSync(join(folder, 'docker-compose.yml'), 'utf8')) as {
          services: Record<string, { ports: string[] }>;
          networks: Record<string, { external?: boolean }>;
        };
        expect(compose.services.backend!.ports).toEqual(['127.0.0.1:5439:8085']);
        expect(compose.services.frontend!.ports).toEqual(['127.0.0.1:5438:80']);
        expect(compose.services.db!.ports).toEqual(['127.0.0.1:5440:5432']);
        expect(compose.networks['servicemarket_service-market-network']).toEqual({ external: true });
        expect(readFileSync(join(folder, 'nginx.conf'), 'utf8')).toContain(
          'server_name dk-alpha.keli.example.ac.kr;',
        );
        expect(statSync(join(folder, '.env')).mode & 0o777).toBe(0o600);
        expect(statSync(folder).mode & 0o777).toBe(0o700);
        expect(printed.join('\n')).toMatch(
          /docker compose --project-directory .*dk_alpha -f .*docker-compose\.yml -p keli_tutor-dk_alpha up -d/,
        );
        const [block] = await environment.query(
          'SELECT tenant_id, block, first_port, last_port FROM mt_paas.port_blocks',
        );
        expect(block).toEqual({ tenant_id: 'dk_alpha', block: 0, first_port: 5438, last_port: 5447 });
      });

      it('re-rendering keeps the block and the password (onboarding again is a no-op; render is stable)', async () => {
        const docker = fakeDocker(false);
        const placement = createDockerPlacement({
          catalog: environment.catalog,
          composeTemplate: join(TEMPLATES, 'docker-compose.template.yml'),
          deployRoot,
          portRangeStart: cluster.port - 2,
          portRangeSize: 10,
          serviceId: 'keli_tutor',
          baseDomain: 'keli.example.ac.kr',
          database: { user: 'postgres' },
          docker,
        });
        const tenant = await environment.catalog.directory.get('dk_alpha' as never);
        const rendered = await placement.render(tenant!);
        expect(rendered.databaseUrl).toBe(tenant!.placement.location);
        expect(rendered.block.index).toBe(0);
        expect(() => placement.directoryOf('../etc')).toThrow();
      });

      it('without an engine and without the container database, onboarding stops at storage and keeps its block for the rerun', async () => {
        const provisioner = provisionerWith(fakeDocker(false));
        // dk_alpha holds block 0; this tenant gets block 1, whose db port (5450) nothing listens on
        const failure = await provisioner
          .onboard({ id: 'dk_nodb', name: 'No engine' })
          .catch((error: unknown) => error);
        expect((failure as { code?: string }).code).toBe('TENANT_STORAGE_UNAVAILABLE');
        expect((await provisioner.get('dk_nodb')).status).toBe('provisioning');
        const [job] = await provisioner.jobs('dk_nodb');
        expect(job).toMatchObject({ action: 'onboard', state: 'failed', step: 'storage' });
        expect(printed.join('\n')).toMatch(/start tenant "dk_nodb" with:\n {2}docker compose .* up -d/);
        const blocks = () =>
          environment.query<{ tenant_id: string; block: number }>(
            `SELECT tenant_id, block FROM mt_paas.port_blocks WHERE tenant_id = 'dk_nodb'`,
          );
        expect(await blocks()).toEqual([{ tenant_id: 'dk_nodb', block: 1 }]);
        await expect(provisioner.onboard({ id: 'dk_nodb', name: 'No engine' })).rejects.toMatchObject({
          code: 'TENANT_STORAGE_UNAVAILABLE',
        });
        expect(await blocks()).toEqual([{ tenant_id: 'dk_nodb', block: 1 }]); // same block, not a second one
        const [again] = await provisioner.jobs('dk_nodb');
        expect(again).toMatchObject({ id: job!.id, attempts: 2, state: 'failed' });
        // giving up: purge frees the block and removes the folder; the unreachable database goes with the volume
        await provisioner.offboard('dk_nodb');
        expect((await provisioner.purge('dk_nodb', { force: true })).status).toBe('purged');
        expect(await blocks()).toEqual([]);
        expect(() => statSync(join(deployRoot, 'dk_nodb'))).toThrow();
        expect(printed.join('\n')).toMatch(/-p keli_tutor-dk_nodb down -v/);
        const [purge] = await provisioner.jobs('dk_nodb');
        expect(purge).toMatchObject({ action: 'purge', state: 'succeeded' });
        expect(String(purge!.details?.storage)).toMatch(/^unreachable .*removed with the container volume$/);
      });

      it('purges: database dropped on the tenant server, deploy folder removed, port block freed and handed out again', async () => {
        const provisioner = provisionerWith(fakeDocker(false));
        await provisioner.offboard('dk_alpha');
        await provisioner.purge('dk_alpha', { force: true });
        expect(
          await queryOn(cluster.url(), `SELECT 1 FROM pg_database WHERE datname = 't_dk_alpha'`),
        ).toEqual([]);
        expect(() => statSync(join(deployRoot, 'dk_alpha'))).toThrow();
        expect(await environment.query('SELECT * FROM mt_paas.port_blocks')).toEqual([]);
        expect(printed.join('\n')).toMatch(/-p keli_tutor-dk_alpha down -v/);

        // with an engine answering, compose up runs and the freed block 0 (db port 5440) is reused
        // The engine stand-in does what the db container's first start does: POSTGRES_DB is created and
        // the rendered init script (mounted into /docker-entrypoint-initdb.d) runs in it as the owner.
        const docker = fakeDocker(true, async (args) => {
          const folder = args[args.indexOf('--project-directory') + 1]!;
          await queryOn(cluster.url(), 'CREATE DATABASE t_dk_beta');
          await queryOn(cluster.url('t_dk_beta'), readFileSync(join(folder, 'initdb.sql'), 'utf8'));
        });
        const beta = await provisionerWith(docker).onboard({ id: 'dk_beta', name: 'Beta' });
        expect(beta.placement.location).toMatch(/@127\.0\.0\.1:5440\/t_dk_beta$/);
        expect(docker.commands).toHaveLength(1);
        expect(docker.commands[0]!.slice(-2)).toEqual(['up', '-d']);
        expect(docker.commands[0]).toContain('keli_tutor-dk_beta');

        // The backend's DATABASE_URL role is no superuser: the tables' forced RLS holds for it.
        const env = readFileSync(join(deployRoot, 'dk_beta', '.env'), 'utf8');
        const backendUrl = /^DATABASE_URL=(.+)$/m
          .exec(env)![1]!
          .replace('@db:5432/', `@127.0.0.1:${cluster.port}/`);
        expect(new URL(backendUrl).username).toBe('app');
        const backend = new pg.Client({ connectionString: backendUrl });
        await backend.connect();
        try {
          const [role] = (
            await backend.query('SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user')
          ).rows;
          expect(role).toEqual({ rolsuper: false, rolbypassrls: false });
          await backend.query('BEGIN');
          await backend.query(`SELECT set_config('app.tenant_id', 'dk_beta', true)`);
          await backend.query(`INSERT INTO courses (title, code) VALUES ('own', 'own')`);
          await expect(
            backend.query(`INSERT INTO courses (tenant_id, title, code) VALUES ('dk_other', 'x', 'x')`),
          ).rejects.toThrow(/row-level security/);
          await backend.query('ROLLBACK');
        } finally {
          await backend.end();
        }
      });

      it('a container database whose app role is a superuser is onboarded but every unit of work is refused', async () => {
        await queryOn(
          cluster.url(),
          `DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'su_app') THEN
             CREATE ROLE su_app LOGIN SUPERUSER; END IF; END $$`,
        );
        const placement = createDockerPlacement({
          catalog: environment.catalog,
          composeTemplate: join(TEMPLATES, 'docker-compose.template.yml'),
          deployRoot,
          portRangeStart: 32_000,
          portRangeSize: 10,
          serviceId: 'keli_tutor',
          baseDomain: 'keli.example.ac.kr',
          database: { user: 'postgres', appUser: 'su_app' },
          docker: fakeDocker(false),
          log: () => {},
        });
        const forwarded: PlacementStrategy = {
          mode: 'docker',
          prepare: async (tenant, job) =>
            (await placement.prepare(tenant, job))?.replace(/:\d+\//, `:${cluster.port}/`),
          release: (tenant) => placement.release(tenant),
        };
        const tenantDb = await databaseTenantDb({
          placementAppRole: 'su_app',
          maxConnections: 2,
          connectionsPerTenant: 1,
        });
        try {
          const provisioner = createProvisioner({
            catalog: environment.catalog,
            tenantDbs: { database: tenantDb },
            defaultMode: 'docker',
            placements: { docker: forwarded },
          });
          expect((await provisioner.onboard({ id: 'dk_su', name: 'Superuser app' })).status).toBe('active');
          const refusal = await tenantDb
            .forTenant('dk_su')
            .run((tx) => tx.insert(courses).values({ title: 'x', code: 'x' }))
            .catch((error: unknown) => error);
          expect(refusal).toMatchObject({ code: 'CONFIG_INVALID' });
          expect((refusal as Error).message).toMatch(/"su_app", which is a SUPERUSER/);
          expect(await queryOn(cluster.url('t_dk_su'), 'SELECT 1 FROM courses')).toEqual([]);
          await provisioner.offboard('dk_su');
          await provisioner.purge('dk_su', { force: true });
          expect(await queryOn(cluster.url(), `SELECT 1 FROM pg_database WHERE datname = 't_dk_su'`)).toEqual(
            [],
          );
        } finally {
          await tenantDb.close();
        }
      });

      it('docker mode passes the isolation mode contract (every container database stood in for by the second cluster)', async () => {
        await queryOn(cluster.url(), 'CREATE ROLE tenant_owner LOGIN CREATEDB NOSUPERUSER NOBYPASSRLS');
        // Every tenant's owner password differs, and all of them share this one server: the app role's
        // password is derived from a control-plane secret per server and role, so all derive one password.
        const placementSecret = 'contract-placement-secret-0123456789';
        const appPassword = placementAppPassword(
          `postgresql://tenant_owner@127.0.0.1:${cluster.port}/x`,
          'app_ct',
          { secret: placementSecret },
        )!;
        // What each container's init script does (initdb.sql, as the image's superuser): the app role exists,
        // with its password and the password's fingerprint, before the NOSUPERUSER owner (which may not
        // create roles) migrates.
        await queryOn(
          cluster.url(),
          `DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'app_ct') THEN
             CREATE ROLE app_ct LOGIN NOSUPERUSER NOBYPASSRLS PASSWORD '${appPassword}'; END IF; END $$;
           COMMENT ON ROLE app_ct IS '${placementPasswordFingerprint(appPassword)}'`,
        );
        const tenantDb = await databaseTenantDb({
          placementAppRole: 'app_ct',
          placementSecret,
          maxConnections: 4,
          connectionsPerTenant: 1,
        });
        const placement = createDockerPlacement({
          catalog: environment.catalog,
          composeTemplate: join(TEMPLATES, 'docker-compose.template.yml'),
          deployRoot,
          portRangeStart: 31_000,
          portRangeSize: 10,
          serviceId: 'keli_tutor',
          baseDomain: 'keli.example.ac.kr',
          // the tenant database's role owns it but is NOSUPERUSER: FORCE ROW LEVEL SECURITY holds inside too
          database: { user: 'tenant_owner', appUser: 'app_ct', placementSecret },
          docker: fakeDocker(false),
          log: () => {},
        });
        // each tenant gets its own block and database name; its db port is forwarded to the one test cluster
        const forwarded: PlacementStrategy = {
          mode: 'docker',
          prepare: async (tenant, job) =>
            (await placement.prepare(tenant, job))?.replace(/:\d+\//, `:${cluster.port}/`),
          release: (tenant) => placement.release(tenant),
        };
        const store = createIsolationModeStore({
          mode: 'docker',
          catalog: environment.catalog,
          tenantDb,
          placement: forwarded,
        });
        const report = await testIsolationModeStore({
          store,
          catalog: environment.catalog,
          table: courses,
          row: (tenantId, index) => ({ title: `${tenantId} course ${index}`, code: `c${index}` }),
          update: { seats: 12 },
          tenants: 4,
        }).finally(() => tenantDb.close());
        assertIsolation(report);
        const blocks = await environment.query<{ tenant_id: string }>(
          `SELECT tenant_id FROM mt_paas.port_blocks WHERE first_port >= 31000 ORDER BY block`,
        );
        // every tenant holds its own block (the first one's was released by dropStorage and taken again)
        expect(blocks.map((block) => block.tenant_id).sort()).toEqual([...report.tenants].sort());
        const databases = await queryOn<{ datname: string }>(
          cluster.url(),
          `SELECT datname FROM pg_database WHERE datname LIKE 't_c_d_%' ORDER BY datname`,
        );
        expect(databases.map((row) => row.datname)).toEqual(report.tenants.map((id) => `t_${id}`).sort());
      });

      it('tenants on one placement server with different owner passwords never rotate the shared app role (SCRAM-checked)', async () => {
        const locationOf = (ownerPassword: string, name: string) =>
          `postgresql://postgres:${ownerPassword}@127.0.0.1:${cluster.port}/${name}`;
        const place = (id: string, ownerPassword: string) =>
          environment.catalog.tenants.upsert({
            id,
            name: id,
            status: 'active',
            placement: { mode: 'database', location: locationOf(ownerPassword, `t_${id}`) },
          });
        const opened: Array<{ close(): Promise<void> }> = [];
        const tenantDbWith = async (database: DatabaseModeOptions) => {
          const tenantDb = await databaseTenantDb(database);
          opened.push(tenantDb);
          return tenantDb;
        };
        const storedPassword = async (role: string) =>
          (
            await queryOn<{ p: string }>(
              cluster.url(),
              `SELECT rolpassword AS p FROM pg_authid WHERE rolname = '${role}'`,
            )
          )[0]?.p;
        const countCourses = (tenantDb: Awaited<ReturnType<typeof tenantDbWith>>, id: string) =>
          tenantDb.forTenant(id).run(async (tx) => (await tx.select().from(courses)).length);
        try {
          // Derived from each owner's password: the second tenant's derivation differs and is refused;
          // the role's password stays what the first tenant logs in with.
          const byOwner = await tenantDbWith({ placementAppRole: 'mtp_pw_owner_app' });
          await place('pw_a', 'ownerPasswordAAAA0123456789');
          await byOwner.createTenantStorage('pw_a');
          await byOwner.forTenant('pw_a').run((tx) => tx.insert(courses).values({ title: 'a', code: 'a' }));
          const before = await storedPassword('mtp_pw_owner_app');
          expect(before).toMatch(/^SCRAM-SHA-256\$/);
          await place('pw_b', 'ownerPasswordBBBB9876543210');
          const refusal = await byOwner.createTenantStorage('pw_b').catch((error: unknown) => error);
          expect(refusal).toMatchObject({ code: 'CONFLICT' });
          expect((refusal as Error).message).toMatch(/database\.placementSecret/);
          expect(await storedPassword('mtp_pw_owner_app')).toBe(before);
          // a new login of tenant A (another instance) still authenticates with its password
          expect(
            await countCourses(await tenantDbWith({ placementAppRole: 'mtp_pw_owner_app' }), 'pw_a'),
          ).toBe(1);

          // Derived from a placement secret per server and role: both tenants share one password and work.
          const secret = 'placement-secret-for-the-test-0123456789';
          const bySecret = await tenantDbWith({
            placementAppRole: 'mtp_pw_secret_app',
            placementSecret: secret,
          });
          await place('pw_c', 'ownerPasswordCCCC0123456789');
          await place('pw_d', 'ownerPasswordDDDD9876543210');
          await bySecret.createTenantStorage('pw_c');
          const afterFirst = await storedPassword('mtp_pw_secret_app');
          await bySecret.createTenantStorage('pw_d');
          expect(await storedPassword('mtp_pw_secret_app')).toBe(afterFirst);
          for (const id of ['pw_c', 'pw_d']) {
            await bySecret.forTenant(id).run((tx) => tx.insert(courses).values({ title: id, code: id }));
          }
          const otherInstance = await tenantDbWith({
            placementAppRole: 'mtp_pw_secret_app',
            placementSecret: secret,
          });
          expect(await countCourses(otherInstance, 'pw_c')).toBe(1);
          expect(await countCourses(otherInstance, 'pw_d')).toBe(1);
          const urlC = new URL(await bySecret.databaseUrlOf('pw_c' as never));
          const urlD = new URL(await bySecret.databaseUrlOf('pw_d' as never));
          expect(urlC.username).toBe('mtp_pw_secret_app');
          expect(urlC.password).toBe(urlD.password);
          // the password is really checked: another secret does not log in
          const wrongSecret = await tenantDbWith({
            placementAppRole: 'mtp_pw_secret_app',
            placementSecret: 'another-secret-0123456789abcdef',
          });
          await expect(countCourses(wrongSecret, 'pw_c')).rejects.toThrow();
          expect(() => placementAppPassword(locationOf('x', 'y'), 'app', { secret: 'short' })).toThrow(
            /16 characters/,
          );
        } finally {
          for (const tenantDb of opened) await tenantDb.close();
          for (const id of ['pw_a', 'pw_b', 'pw_c', 'pw_d']) {
            await queryOn(cluster.url(), `DROP DATABASE IF EXISTS t_${id} WITH (FORCE)`);
          }
        }
      });
    });
  },
);
