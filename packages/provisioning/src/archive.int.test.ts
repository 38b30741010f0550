import { mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { isMtPaasError } from '@mt-paas/context';
import { describeWithPostgres, useTestDatabase } from '@mt-paas/test-env';
import * as tar from 'tar';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { users } from './__fixtures__/app-schema.js';
import { openEnvironment, type ProvisioningEnvironment } from './__fixtures__/environment.js';
import { readTenantData, seedTenantData } from './__fixtures__/tenant-data.js';
import type { Provisioner, StorageMode } from './provisioner.js';

const MODES: StorageMode[] = ['row', 'schema', 'database'];

describeWithPostgres('export / import', () => {
  const database = useTestDatabase({ label: 'archive' });
  let environment: ProvisioningEnvironment;
  let provisioner: Provisioner;
  let folder: string;

  const makeProvisioner = (signingKey?: string) =>
    environment.provisioner({
      archive: signingKey === undefined ? {} : { signingKey },
      hooks: {
        afterOnboard: ({ scope }) =>
          scope.run((tx) =>
            tx.insert(users).values({ email: 'admin@x.ac.kr', role: 'admin' }).onConflictDoNothing(),
          ),
      },
    });
  const dataOf = (id: string, mode: StorageMode) =>
    readTenantData(provisioner.tenantDbFor(mode).forTenant(id));

  beforeAll(async () => {
    environment = await openEnvironment(database.url, 'ar');
    provisioner = makeProvisioner();
    folder = await mkdtemp(join(tmpdir(), 'mtp-archive-test-'));
  });
  afterAll(async () => {
    await environment?.close();
    if (folder) await rm(folder, { recursive: true, force: true });
  });

  describe.each(MODES)('from %s mode', (from) => {
    it.each(MODES)(
      `round-trips into %s mode: same rows, ids and awkward text; manifest describes it`,
      async (to) => {
        const id = `ar_${from.slice(0, 3)}_${to.slice(0, 3)}`;
        await provisioner.onboard({ id, name: `Archive ${from}→${to}`, mode: from, plan: 'pro' });
        await seedTenantData(provisioner.tenantDbFor(from), id);
        const before = await dataOf(id, from);
        expect(before.courses).toHaveLength(6);

        const { file, manifest } = await provisioner.exportTenant(id, { directory: folder });
        expect(manifest).toMatchObject({
          tenantId: id,
          mode: from,
          migrationVersion: '0001_users',
          encoding: 'copy-text',
          tenant: { name: `Archive ${from}→${to}`, plan: 'pro', status: 'active' },
        });
        expect(Object.fromEntries(manifest.tables.map((table) => [table.name, table.rows]))).toEqual({
          courses: 6,
          enrollments: 12,
          users: 2,
        });
        const order = manifest.tables.map((table) => table.name);
        expect(order.indexOf('courses')).toBeLessThan(order.indexOf('enrollments')); // parents first

        await provisioner.offboard(id);
        await provisioner.purge(id, { force: true });
        const restored = await provisioner.importTenant(file, { mode: to });
        expect(restored).toMatchObject({ id, status: 'active', placement: { mode: to }, plan: 'pro' });
        expect(await dataOf(id, to)).toEqual(before);
        const jobs = (await provisioner.jobs(id)).map((job) => `${job.action}:${job.state}`);
        expect(jobs.slice(0, 2)).toEqual(['import:succeeded', 'purge:succeeded']);
      },
    );
  });

  it('refuses to import over a live tenant, naming its state', async () => {
    await provisioner.onboard({ id: 'ar_live', name: 'Live', mode: 'schema' });
    const { file } = await provisioner.exportTenant('ar_live', { directory: folder });
    try {
      await provisioner.importTenant(file);
      expect.unreachable();
    } catch (error) {
      expect(isMtPaasError(error, 'CONFLICT')).toBe(true);
      expect((error as Error).message).toContain('it is active');
    }
  });

  it('exports before purge when configured, and the purge keeps the archive', async () => {
    const exporting = environment.provisioner({ exportBeforePurge: { directory: folder } });
    await exporting.onboard({ id: 'ar_purged', name: 'Purged', mode: 'database' });
    await seedTenantData(exporting.tenantDbFor('database'), 'ar_purged');
    let archive: string | undefined;
    const withHook = environment.provisioner({
      exportBeforePurge: { directory: folder },
      hooks: {
        beforePurge: (context) => {
          archive = context.archive;
        },
      },
    });
    await withHook.offboard('ar_purged');
    await withHook.purge('ar_purged', { force: true });
    expect(archive).toMatch(/ar_purged-.*\.mtpaas\.tgz$/);
    const restored = await withHook.importTenant(archive!);
    expect(restored.status).toBe('active');
    expect(
      (await readTenantData(withHook.tenantDbFor('database').forTenant('ar_purged'))).courses,
    ).toHaveLength(6);
  });

  describe('a tampered or unsafe archive is refused, and nothing is written', () => {
    let good: string;
    const scratch: string[] = [];
    afterAll(async () => {
      for (const path of scratch) await rm(path, { recursive: true, force: true });
    });
    let unpacked: string;
    const repack = async (name: string, change: (dir: string) => Promise<void>, entries?: string[]) => {
      const dir = await mkdtemp(join(tmpdir(), 'mtp-tamper-'));
      scratch.push(dir, `${dir}-evil.copy`);
      await tar.extract({ file: good, cwd: dir });
      await change(dir);
      const out = join(folder, `${name}.mtpaas.tgz`);
      const listed = entries ?? [
        'manifest.json',
        ...(
          JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8')) as {
            tables: Array<{ file: string }>;
          }
        ).tables.map((table) => table.file),
      ];
      const climb = `../${basename(dir)}-evil.copy`; // an entry that leaves the extraction folder
      await tar.create(
        { gzip: true, cwd: dir, file: out, preservePaths: true },
        listed.map((entry) => (entry === 'CLIMB' ? climb : entry)),
      );
      return out;
    };
    const expectRefused = async (file: string, pattern: RegExp, code = 'INVALID_REQUEST') => {
      try {
        await provisioner.importTenant(file);
        expect.unreachable('must be refused');
      } catch (error) {
        expect(isMtPaasError(error), String(error)).toBe(true);
        expect((error as { code: string }).code).toBe(code);
        expect((error as Error).message).toMatch(pattern);
      }
      expect((await environment.catalog.directory.get('ar_tamper' as never))?.status).toBe('purged');
    };

    beforeAll(async () => {
      await provisioner.onboard({ id: 'ar_tamper', name: 'Tamper', mode: 'row' });
      await seedTenantData(provisioner.tenantDbFor('row'), 'ar_tamper');
      good = (await provisioner.exportTenant('ar_tamper', { directory: folder })).file;
      await provisioner.offboard('ar_tamper');
      await provisioner.purge('ar_tamper', { force: true });
      unpacked = folder;
    });

    it('a changed data byte (sha256)', async () => {
      const file = await repack('byte', async (dir) => {
        const path = join(dir, 'data/courses.copy');
        const text = await readFile(path, 'utf8');
        await writeFile(path, text.replace('c1', 'c9'));
      });
      await expectRefused(file, /courses\.copy does not match its sha256/);
    });

    it('a row count that disagrees with the manifest', async () => {
      const file = await repack('count', async (dir) => {
        const manifest = JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8'));
        manifest.tables[0].rows += 1;
        await writeFile(join(dir, 'manifest.json'), JSON.stringify(manifest));
      });
      await expectRefused(file, /has 6 rows, the manifest says 7/);
    });

    it('a path that climbs out (..), an absolute path, an unknown file', async () => {
      let outside = '';
      const climbing = await repack(
        'climb',
        async (dir) => {
          outside = `../${basename(dir)}-evil.copy`;
          await writeFile(join(dir, outside), 'x\n');
        },
        ['manifest.json', 'data/courses.copy', 'data/enrollments.copy', 'data/users.copy', 'CLIMB'],
      );
      expect(outside).not.toBe('');
      await expectRefused(climbing, /unexpected or unsafe entries|cannot be unpacked/);
      const extra = await repack(
        'extra',
        async (dir) => {
          await writeFile(join(dir, 'data/secrets.copy'), 'x\n');
        },
        [
          'manifest.json',
          'data/courses.copy',
          'data/enrollments.copy',
          'data/users.copy',
          'data/secrets.copy',
        ],
      );
      await expectRefused(extra, /data\/secrets\.copy is not in the manifest/);
      const absolute = await repack('absolute', async () => {}, [
        'manifest.json',
        'data/courses.copy',
        'data/enrollments.copy',
        'data/users.copy',
        join(unpacked, 'byte.mtpaas.tgz'),
      ]);
      await expectRefused(absolute, /unexpected or unsafe entries/);
    });

    it('a symlink in place of a data file', async () => {
      const file = await repack('link', async (dir) => {
        await rm(join(dir, 'data/users.copy'));
        await symlink('/etc/passwd', join(dir, 'data/users.copy'));
      });
      await expectRefused(file, /unexpected or unsafe entries: data\/users\.copy \(SymbolicLink\)/);
    });

    it('a missing data file, a manifest that does not parse, another format version', async () => {
      const missing = await repack('missing', async () => {}, [
        'manifest.json',
        'data/courses.copy',
        'data/users.copy',
      ]);
      await expectRefused(missing, /data\/enrollments\.copy is missing/);
      const garbage = await repack(
        'garbage',
        async (dir) => {
          await writeFile(join(dir, 'manifest.json'), '{"format": "zip"');
        },
        ['manifest.json', 'data/courses.copy'],
      );
      await expectRefused(garbage, /manifest\.json does not parse/);
      const version = await repack('version', async (dir) => {
        const manifest = JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8'));
        manifest.formatVersion = 2;
        await writeFile(join(dir, 'manifest.json'), JSON.stringify(manifest));
      });
      await expectRefused(version, /manifest\.json does not parse/);
    });

    it('a migration version other than the service’s (CONFLICT), and a forged manifest under a signing key', async () => {
      const older = await repack('older', async (dir) => {
        const manifest = JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8'));
        manifest.migrationVersion = '0000_app_init';
        await writeFile(join(dir, 'manifest.json'), JSON.stringify(manifest));
      });
      await expectRefused(
        older,
        /archive is at migration 0000_app_init, this service at 0001_users/,
        'CONFLICT',
      );

      const signer = makeProvisioner('k3y-of-the-vendor');
      await signer.onboard({ id: 'ar_signed', name: 'Signed', mode: 'schema' });
      const signed = (await signer.exportTenant('ar_signed', { directory: folder })).file;
      await signer.offboard('ar_signed');
      await signer.purge('ar_signed', { force: true });
      good = signed;
      const forged = await repack('forged', async (dir) => {
        const manifest = JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8'));
        manifest.tenant.plan = 'enterprise';
        await writeFile(join(dir, 'manifest.json'), JSON.stringify(manifest));
      });
      await expect(signer.importTenant(forged)).rejects.toThrow(/signature does not match/);
      await expect(makeProvisioner('another-key').importTenant(signed)).rejects.toThrow(
        /signature does not match/,
      );
      expect((await signer.importTenant(signed)).status).toBe('active');
    });
  });
});
