import { rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { MtPaasError, parseTenantId, type Tenant, type TenantId } from '@mt-paas/context';
import { readMigrationsFolder } from '@mt-paas/db';
import { eq, sql } from 'drizzle-orm';
import {
  ARCHIVE_FORMAT,
  ARCHIVE_FORMAT_VERSION,
  type ArchiveManifest,
  openArchive,
  packArchive,
  signManifest,
  stagingFolder,
} from './archive.js';
import { planTransition } from './lifecycle.js';
import type { Provisioner, StorageMode } from './provisioner.js';
import { digestTable, type StorageTarget, withTenantSession } from './tenant-storage-session.js';

/** Metadata key that pauses a tenant's writes while it is moved (read by `createTenantRouter`). */
export const WRITE_FREEZE_KEY = 'mt_paas_write_freeze';

/** Options of export / import / move (`ProvisionerOptions.archive`). */
export interface ArchiveOptions {
  /** The app role URL (row and schema modes): archives are read and written as the app role, under RLS. */
  appConnectionString?: string;
  /** Row mode: schema of the shared tenant tables. @default 'public' */
  appSchema?: string;
  /** The app's tenant migrations (the version an import must match). */
  migrationsFolder: string;
  /** Signs manifests on export and requires a valid signature on import (HMAC-SHA256). */
  signingKey?: string;
  /**
   * Move: how long to wait after pausing writes (and after switching placement) so that every instance's
   * router has seen it — at least the routers' `cacheTtlMs`. @default 1500
   */
  settleMs?: number;
}

/** Options of `exportTenant`. */
export interface ExportOptions {
  /** Archive path. @default `<directory>/<tenant>-<timestamp>.mtpaas.tgz` */
  file?: string;
  /** Folder for the default file name. @default the current directory */
  directory?: string;
}

/** What `exportTenant` wrote. */
export interface ExportResult {
  file: string;
  manifest: ArchiveManifest;
}

/** Options of `importTenant`. */
export interface ImportOptions {
  /** Isolation mode to restore into. @default the archive's mode */
  mode?: 'row' | 'schema' | 'database' | 'docker';
}

/** Options of `moveTenant`. */
export interface MoveOptions {
  /** @default `archive.settleMs` */
  settleMs?: number;
}

/** Internals the transfer functions need from the provisioner. */
export interface TransferContext {
  provisioner: Provisioner;
  options: ArchiveOptions;
}

async function migrationsOf(context: TransferContext, tenant: Tenant): Promise<string[]> {
  const table = context.provisioner.catalog.tables.tenantMigrations;
  const target = tenant.placement.mode === 'row' ? '*' : tenant.id;
  const rows = await context.provisioner.catalog.driver.db
    .select({ version: table.version })
    .from(table)
    .where(eq(table.tenantId, target));
  return rows.map((row) => row.version).sort();
}

function latestVersion(folder: string): string {
  const migrations = readMigrationsFolder(folder);
  const last = migrations.at(-1);
  if (last === undefined) throw new MtPaasError('CONFIG_INVALID', `No migrations in ${folder}.`);
  return last.tag;
}

/** Digests of the tenant's tables in a storage (rows + sha256 of the COPY text, deterministic order). */
async function digestTables(target: StorageTarget, tenantId: TenantId, tables: ArchiveManifest['tables']) {
  return withTenantSession(
    target,
    tenantId,
    async (client) => {
      const result = new Map<string, { rows: number; sha256: string }>();
      for (const table of tables) result.set(table.name, await digestTable(client, table));
      return result;
    },
    { readOnly: true, isolation: 'repeatable read' },
  );
}

/** Writes the archive of a tenant (no lock: one consistent snapshot). */
export async function exportTenantArchive(
  context: TransferContext,
  tenant: Tenant,
  options: ExportOptions = {},
): Promise<ExportResult> {
  if (tenant.status === 'purged') {
    throw new MtPaasError(
      'CONFLICT',
      `Cannot export tenant "${tenant.id}": it is purged (its storage is gone).`,
      {
        details: { tenantId: tenant.id, status: tenant.status },
      },
    );
  }
  const migrations = await migrationsOf(context, tenant);
  const migrationVersion = migrations.at(-1);
  if (migrationVersion === undefined) {
    throw new MtPaasError(
      'CONFLICT',
      `Tenant "${tenant.id}" has no migrated storage to export (it is ${tenant.status}).`,
    );
  }
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const file = resolve(options.file ?? join(options.directory ?? '.', `${tenant.id}-${stamp}.mtpaas.tgz`));
  const staging = await stagingFolder(tenant.id);
  try {
    const tables = await context.provisioner.storeFor(tenant.placement.mode).exportTables(tenant, staging);
    const metadata = Object.fromEntries(
      Object.entries(tenant.metadata ?? {}).filter(([key]) => key !== WRITE_FREEZE_KEY),
    );
    let manifest: ArchiveManifest = {
      format: ARCHIVE_FORMAT,
      formatVersion: ARCHIVE_FORMAT_VERSION,
      tenantId: tenant.id,
      mode: tenant.placement.mode,
      migrationVersion,
      migrations,
      exportedAt: new Date().toISOString(),
      tenant: { name: tenant.name, plan: tenant.plan, status: tenant.status, metadata },
      encoding: 'copy-text',
      tables,
    };
    if (context.options.signingKey !== undefined)
      manifest = signManifest(manifest, context.options.signingKey);
    await packArchive(staging, manifest, file);
    return { file, manifest };
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}

/** Restores an archive into a new or purged tenant id, in its mode or another. */
export async function importTenantArchive(
  context: TransferContext,
  file: string,
  options: ImportOptions = {},
): Promise<Tenant> {
  const { provisioner } = context;
  const opened = await openArchive(
    file,
    context.options.signingKey === undefined ? {} : { signingKey: context.options.signingKey },
  );
  try {
    const { manifest } = opened;
    const expected = latestVersion(context.options.migrationsFolder);
    if (manifest.migrationVersion !== expected) {
      throw new MtPaasError(
        'CONFLICT',
        `The archive is at migration ${manifest.migrationVersion}, this service at ${expected}: import it with the service version that exported it, or migrate one side first.`,
        { details: { archive: manifest.migrationVersion, service: expected } },
      );
    }
    const tenantId = parseTenantId(manifest.tenantId);
    const mode = options.mode ?? manifest.mode;
    const store = provisioner.storeFor(mode);
    return await provisioner.withTenantLock(tenantId, async () => {
      const existing = await provisioner.catalog.directory.get(tenantId);
      if (existing !== undefined) planTransition('import', tenantId, existing.status);
      const resumed = existing?.status === 'provisioning';
      const job = await provisioner.jobLog.start(tenantId, 'import', {
        resume: resumed,
        details: { archive: file, mode, migrationVersion: manifest.migrationVersion },
      });
      try {
        let tenant = await provisioner.catalog.tenants.upsert({
          id: tenantId,
          name: manifest.tenant.name,
          plan: manifest.tenant.plan,
          status: 'provisioning',
          metadata: manifest.tenant.metadata,
          placement: resumed && existing !== undefined ? existing.placement : { mode },
        });
        ({ tenant } = await store.createStorage(tenant, {
          job,
          onStep: (step) => provisioner.jobLog.step(job.id, step),
        }));
        await provisioner.jobLog.step(job.id, 'load');
        await store.importTables(tenant, opened.directory, manifest.tables);
        const restored = await provisioner.catalog.tenants.setStatus(
          tenantId,
          // a suspended or blocked tenant comes back suspended; any other (active, or deleted when
          // exported before its purge) comes back active
          manifest.tenant.status === 'suspended' || manifest.tenant.status === 'blocked'
            ? 'suspended'
            : 'active',
        );
        await provisioner.jobLog.succeed(job.id, {
          rows: Object.fromEntries(manifest.tables.map((t) => [t.name, t.rows])),
        });
        await provisioner.announce('import', restored, { job: job.id, archive: file, from: manifest.mode });
        return restored;
      } catch (error) {
        await provisioner.jobLog.fail(job.id, error).catch(() => {});
        throw error;
      }
    });
  } finally {
    await opened.dispose();
  }
}

const MOVABLE: readonly StorageMode[] = ['row', 'schema', 'database'];

/**
 * Moves a live tenant between row, schema and database modes: writes paused (routers answer 503 with
 * Retry-After, reads go on), data copied and verified, placement switched in one UPDATE, old storage
 * dropped after verification.
 */
export async function moveTenantStorage(
  context: TransferContext,
  rawTenantId: string,
  toMode: StorageMode,
  options: MoveOptions = {},
): Promise<Tenant> {
  const { provisioner } = context;
  const tenantId = parseTenantId(rawTenantId);
  if (!MOVABLE.includes(toMode)) {
    throw new MtPaasError(
      'INVALID_REQUEST',
      `Cannot move to "${String(toMode)}": use row, schema or database.`,
    );
  }
  const settleMs = options.settleMs ?? context.options.settleMs ?? 1500;
  const { catalog } = provisioner;
  const tenants = catalog.tables.tenants;
  return provisioner.withTenantLock(tenantId, async () => {
    const tenant = await provisioner.get(tenantId);
    planTransition('move', tenantId, tenant.status);
    const fromMode = tenant.placement.mode;
    if (fromMode === toMode) {
      throw new MtPaasError('CONFLICT', `Tenant "${tenantId}" is already in ${toMode} mode.`, {
        details: { tenantId, status: tenant.status, mode: fromMode },
      });
    }
    if (!MOVABLE.includes(fromMode as StorageMode) || tenant.placement.location !== undefined) {
      throw new MtPaasError(
        'CONFLICT',
        `Tenant "${tenantId}" is placed at ${fromMode}${tenant.placement.location ? ` (${tenant.placement.location.replace(/:[^:@/]*@/, ':***@')})` : ''}: only default-named row, schema and database placements can be moved; export and import it instead.`,
        { details: { tenantId, mode: fromMode } },
      );
    }
    const fromStore = provisioner.storeFor(fromMode);
    const toStore = provisioner.storeFor(toMode);
    const job = await provisioner.jobLog.start(tenantId, 'move', { details: { from: fromMode, to: toMode } });
    const freeze = {
      reason: 'move',
      since: new Date().toISOString(),
      retryAfterSeconds: Math.max(1, Math.ceil((settleMs * 3) / 1000)),
    };
    const setFreeze = (on: boolean) =>
      catalog.driver.db
        .update(tenants)
        .set({
          metadata: on
            ? sql`${tenants.metadata} || ${JSON.stringify({ [WRITE_FREEZE_KEY]: freeze })}::jsonb`
            : sql`${tenants.metadata} - ${WRITE_FREEZE_KEY}`,
          updatedAt: sql`now()`,
        })
        .where(eq(tenants.id, tenantId));
    let targetCreated = false;
    const staging = await stagingFolder(tenantId);
    try {
      await provisioner.jobLog.step(job.id, 'freeze');
      await setFreeze(true);
      await provisioner.announce('move', await provisioner.get(tenantId), {
        phase: 'writes-paused',
        job: job.id,
      });
      await sleep(settleMs);

      await provisioner.jobLog.step(job.id, 'copy');
      const tables = await fromStore.exportTables(tenant, staging, { lockTables: fromMode !== 'row' });
      await toStore.createStorage(tenant);
      targetCreated = true;
      const relocated = { ...tenant, placement: { mode: toMode } };
      await toStore.importTables(relocated, staging, tables);
      const source = await fromStore.connect(tenant);
      const destination = await toStore.connect(relocated);

      await provisioner.jobLog.step(job.id, 'verify');
      const [sourceNow, copied] = await Promise.all([
        digestTables(source, tenantId, tables),
        digestTables(destination, tenantId, tables),
      ]);
      for (const table of tables) {
        const before = { rows: table.rows, sha256: table.sha256 };
        for (const [where, digest] of [
          ['source', sourceNow.get(table.name)],
          ['copy', copied.get(table.name)],
        ] as const) {
          if (digest?.rows !== before.rows || digest.sha256 !== before.sha256) {
            throw new MtPaasError(
              'CONFLICT',
              `Move of "${tenantId}" aborted: table "${table.name}" differs in the ${where} after the copy (a write slipped past the pause?). Nothing was switched; run the move again.`,
              { details: { table: table.name, where } },
            );
          }
        }
      }

      await provisioner.jobLog.step(job.id, 'switch');
      // One statement: the new placement and the end of the pause become visible together.
      await catalog.driver.db
        .update(tenants)
        .set({
          placementMode: toMode,
          placementLocation: null,
          metadata: sql`${tenants.metadata} - ${WRITE_FREEZE_KEY}`,
          updatedAt: sql`now()`,
        })
        .where(eq(tenants.id, tenantId));
      const moved = await provisioner.get(tenantId);
      await provisioner.announce('move', moved, {
        phase: 'switched',
        from: fromMode,
        to: toMode,
        job: job.id,
      });

      await sleep(settleMs); // reads still routed to the old placement finish
      await provisioner.jobLog.step(job.id, 'drop-old');
      await fromStore.dropStorage(tenant);
      await toStore.createStorage(moved); // re-records its migrations (the drop forgot the tenant's)
      await provisioner.jobLog.succeed(job.id, {
        rows: Object.fromEntries(tables.map((t) => [t.name, t.rows])),
      });
      return moved;
    } catch (error) {
      await provisioner.jobLog.fail(job.id, error).catch(() => {});
      const current = await provisioner.get(tenantId).catch(() => undefined);
      if (current?.placement.mode === fromMode) {
        if (targetCreated) {
          await toStore.dropStorage(current).catch(() => {});
          await fromStore.createStorage(current).catch(() => {});
        }
        await setFreeze(false).catch(() => {});
        await provisioner.announce('move', current, { phase: 'aborted', job: job.id }).catch(() => {});
      }
      throw error;
    } finally {
      await rm(staging, { recursive: true, force: true });
    }
  });
}
