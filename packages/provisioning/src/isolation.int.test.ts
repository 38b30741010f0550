import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TenantId } from '@mt-paas/context';
import { assertIsolation, testIsolationMode } from '@mt-paas/db/testing';
import { describeWithPostgres, useTestDatabase } from '@mt-paas/test-env';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { courses } from './__fixtures__/app-schema.js';
import { openEnvironment, type ProvisioningEnvironment } from './__fixtures__/environment.js';
import type { Provisioner, StorageMode } from './provisioner.js';

/**
 * The db isolation contract (`testIsolationMode`) run against tenants whose storage the provisioner made:
 * onboarded, moved from another mode, or imported from another mode's archive. Concurrent tenants
 * must never see or write each other's rows.
 */
describeWithPostgres('tenants made by the provisioner keep the isolation contract', () => {
  const database = useTestDatabase({ label: 'isolation' });
  let environment: ProvisioningEnvironment;
  let provisioner: Provisioner;
  let folder: string;

  beforeAll(async () => {
    environment = await openEnvironment(database.url, 'is');
    provisioner = environment.provisioner({ archive: { settleMs: 50 } });
    folder = await mkdtemp(join(tmpdir(), 'mtp-iso-'));
  });
  afterAll(async () => {
    await environment?.close();
    if (folder) await rm(folder, { recursive: true, force: true });
  });

  const run = async (mode: StorageMode, prefix: string, prepareTenant: (id: TenantId) => Promise<void>) => {
    const report = await testIsolationMode({
      tenantDb: environment.tenantDbs[mode],
      table: courses,
      row: (tenantId, index) => ({ title: `${tenantId} course ${index}`, code: `c${index}` }),
      update: { seats: 12 },
      tenants: 6,
      rowsPerTenant: 3,
      rounds: 2,
      tenantPrefix: prefix,
      prepareTenant,
    });
    assertIsolation(report);
    expect(report.tenants).toHaveLength(6);
    expect(report.checks).toBeGreaterThan(6 * 2 * 3);
  };

  it.each(['row', 'schema', 'database'] as const)('onboarded in %s mode', async (mode) => {
    await run(mode, `ion${mode[0]}_`, async (id) => {
      await provisioner.onboard({ id, name: id, mode });
    });
  });

  it.each([
    ['row', 'schema'],
    ['schema', 'database'],
    ['database', 'row'],
  ] as const)('moved from %s to %s mode', async (from, to) => {
    await run(to, `imv${from[0]}${to[0]}_`, async (id) => {
      await provisioner.onboard({ id, name: id, mode: from });
      await provisioner.moveTenant(id, to);
    });
  });

  it.each([
    ['schema', 'row'],
    ['row', 'database'],
  ] as const)('imported from a %s-mode archive into %s mode', async (from, to) => {
    await run(to, `iim${from[0]}${to[0]}_`, async (id) => {
      await provisioner.onboard({ id, name: id, mode: from });
      const { file } = await provisioner.exportTenant(id, { directory: folder });
      await provisioner.offboard(id);
      await provisioner.purge(id, { force: true });
      await provisioner.importTenant(file, { mode: to });
    });
  });
});
