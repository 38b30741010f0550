import { fileURLToPath } from 'node:url';
import { childExited, describeWithPostgres, startTsChild, useTestDatabase } from '@mt-paas/test-env';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { users } from './__fixtures__/app-schema.js';
import { openEnvironment, type ProvisioningEnvironment } from './__fixtures__/environment.js';

const CHILD = fileURLToPath(new URL('./__fixtures__/onboard-child.ts', import.meta.url));

/** Starts the child; resolves with it once `marker` appears on its stdout (or rejects when it exits first). */
const startChild = (input: Record<string, unknown>, marker: string) =>
  startTsChild({ script: CHILD, input, marker });
const exited = childExited;

describeWithPostgres('onboarding killed mid-way (SIGKILL) and run again', () => {
  const database = useTestDatabase({ label: 'kill' });
  let environment: ProvisioningEnvironment;

  beforeAll(async () => {
    environment = await openEnvironment(database.url, 'kl');
  });
  afterAll(async () => {
    await environment?.close();
  });

  const cases = [
    ['row', 'afterOnboard'],
    ['schema', 'afterOnboard'],
    ['database', 'afterOnboard'],
    ['schema', 'beforeOnboard'],
    ['database', 'beforeOnboard'],
  ] as const;

  it.each(cases)(
    '%s mode, killed in %s: the rerun completes with no orphan storage and one admin',
    async (mode, hang) => {
      const tenantId = `kl_${mode.slice(0, 3)}_${hang.slice(0, 5).toLowerCase()}`;
      const base = {
        adminUrl: environment.adminUrl,
        appUrl: environment.appUrl,
        mode,
        databasePrefix: environment.databasePrefix,
        tenantId,
      };
      const first = startChild({ ...base, hang }, `HANGING ${hang}`);
      await first.seen;
      first.child.kill('SIGKILL');
      await exited(first.child);

      const stuck = await environment.catalog.directory.get(tenantId as never);
      expect(stuck?.status).toBe('provisioning');
      const [job] = await environment.query<{ state: string; attempts: number }>(
        `SELECT state, attempts FROM mt_paas.provisioning_jobs WHERE tenant_id = $1`,
        [tenantId],
      );
      expect(job).toEqual({ state: 'running', attempts: 1 }); // the killed process never finished it

      const second = startChild(base, 'ONBOARDED active');
      await second.seen;
      expect(await exited(second.child)).toBe(0);

      expect((await environment.catalog.directory.get(tenantId as never))?.status).toBe('active');
      const jobs = await environment.query<{ state: string; attempts: number; action: string }>(
        `SELECT action, state, attempts FROM mt_paas.provisioning_jobs WHERE tenant_id = $1`,
        [tenantId],
      );
      expect(jobs).toEqual([{ action: 'onboard', state: 'succeeded', attempts: 2 }]);
      const admins = await environment.tenantDbs[mode]
        .forTenant(tenantId)
        .run((tx) => tx.select({ email: users.email }).from(users));
      expect(admins).toEqual([{ email: 'admin@killed.ac.kr' }]);
      // No orphan: exactly the tenant's own schema / database, nothing half-named beside it.
      const schemas = await environment.query(`SELECT nspname FROM pg_namespace WHERE nspname LIKE $1`, [
        `%${tenantId}%`,
      ]);
      const databases = await environment.query(`SELECT datname FROM pg_database WHERE datname LIKE $1`, [
        `%${tenantId}%`,
      ]);
      expect(schemas).toHaveLength(mode === 'schema' ? 1 : 0);
      expect(databases).toHaveLength(mode === 'database' ? 1 : 0);
      const migrations = await environment.query(
        `SELECT version FROM mt_paas.tenant_migrations WHERE tenant_id = $1 ORDER BY version`,
        [mode === 'row' ? '*' : tenantId],
      );
      expect(migrations.map((row) => row.version)).toEqual(['0000_app_init', '0001_users']);
    },
  );
});
