/**
 * A child process for the kill-mid-onboarding test: onboards one tenant; with MTP_HANG set it signals
 * "HANGING <point>" on stdout at that hook and waits forever (the test then SIGKILLs it).
 */
import { createCatalog, createTenantDb } from '@mt-paas/db';
import { createProvisioner } from '../provisioner.js';
import { users } from './app-schema.js';
import { FIXTURE_MIGRATIONS } from './environment.js';

interface ChildConfig {
  adminUrl: string;
  appUrl: string;
  mode: 'row' | 'schema' | 'database';
  databasePrefix: string;
  tenantId: string;
  hang?: 'beforeOnboard' | 'afterOnboard';
}

const config = JSON.parse(process.env.MTP_CHILD ?? '{}') as ChildConfig;
const hang = async (point: string) => {
  if (config.hang !== point) return;
  process.stdout.write(`HANGING ${point}\n`);
  await new Promise(() => {});
};

const catalog = await createCatalog({ connectionString: config.adminUrl });
const tenantDb = await createTenantDb({
  mode: config.mode,
  catalog,
  connectionString: config.appUrl,
  adminConnectionString: config.adminUrl,
  migrationsFolder: FIXTURE_MIGRATIONS,
  database: { databasePrefix: config.databasePrefix },
});
const provisioner = createProvisioner({
  catalog,
  tenantDbs: { [config.mode]: tenantDb },
  hooks: {
    beforeOnboard: () => hang('beforeOnboard'),
    async afterOnboard({ scope }) {
      await scope.run((tx) =>
        tx.insert(users).values({ email: 'admin@killed.ac.kr', role: 'admin' }).onConflictDoNothing(),
      );
      await hang('afterOnboard');
    },
  },
});
const tenant = await provisioner.onboard({
  id: config.tenantId,
  name: 'Killed University',
  mode: config.mode,
});
process.stdout.write(`ONBOARDED ${tenant.status}\n`);
await tenantDb.close();
await catalog.close();
