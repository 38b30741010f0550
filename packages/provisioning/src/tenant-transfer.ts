import { rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { MtPaasError, parseTenantId, type Tenant } from '@mt-paas/context';
import { readMigrationsFolder, WRITE_FREEZE_KEY } from '@mt-paas/db';
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

/**
 * Metadata key that pauses a tenant's writes while it is moved: every tenant db (`@mt-paas/db`) runs the
 * tenant's units READ ONLY and refuses a write with 503 + Retry-After. Re-exported from `@mt-paas/db`.
 */
export { WRITE_FREEZE_KEY };

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
   * Move: how long to wait after pausing writes (and after switching placement) so that every instance
   * has seen it — at least the `tenantCacheTtlMs` of every instance's tenant dbs and the routers'
   * `cacheTtlMs` (the provisioner's own tenant dbs forget the tenant at once).
   * @default the largest `tenantCacheTtlMs` of the provisioner's tenant dbs, at least 1500
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
  /**
   * Called when the move reaches a step (`freeze`, `copy`, `load`, `verify`, `switch`, `drop-old`), after
   * the step is recorded on the job (progress output). A step that throws aborts the move the way a
   * failure of that step would: before `switch` the tenant stays on its old placement, writable again,
   * and the partial target storage is dropped.
   */
  onStep?: (step: MoveStep) => void | Promise<void>;
}

/** The steps of a move, in order. */
export type MoveStep = 'freeze' | 'copy' | 'load' | 'verify' | 'switch' | 'drop-old';

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
 * Moves a live tenant between row, schema and database modes: writes paused (every tenant db runs the
 * tenant's units READ ONLY and answers a write with 503 + Retry-After; reads go on), data copied and
 * verified, placement switched in one UPDATE, old storage dropped after verification. A failure before
 * the switch leaves the tenant on its old placement, writable again, with the partial target dropped and
 * the job recorded as failed; run the move again.
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
  const tenantDbs = MOVABLE.flatMap((mode) => {
    try {
      return [provisioner.tenantDbFor(mode)];
    } catch {
      return [];
    }
  });
  const settleMs =
    options.settleMs ??
    context.options.settleMs ??
    Math.max(1500, ...tenantDbs.map((tenantDb) => tenantDb.tenantCacheTtlMs));
  const { catalog } = provisioner;
  const tenants = catalog.tables.tenants;
  /** This process's tenant dbs see a new placement or pause at once; other instances after their cache TTL. */
  const forget = () => {
    for (const tenantDb of tenantDbs) tenantDb.forget(tenantId);
  };
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
    const step = async (name: MoveStep) => {
      await provisioner.jobLog.step(job.id, name);
      await options.onStep?.(name);
    };
    const freeze = {
      reason: 'move',
      since: new Date().toISOString(),
      retryAfterSeconds: Math.max(1, Math.ceil((settleMs * 3) / 1000)),
    };
    const setFreeze = async (on: boolean) => {
      await catalog.driver.db
        .update(tenants)
        .set({
          metadata: on
            ? sql`${tenants.metadata} || ${JSON.stringify({ [WRITE_FREEZE_KEY]: freeze })}::jsonb`
            : sql`${tenants.metadata} - ${WRITE_FREEZE_KEY}`,
          updatedAt: sql`now()`,
        })
        .where(eq(tenants.id, tenantId));
      forget();
    };
    const relocated: Tenant = { ...tenant, placement: { mode: toMode } };
    let targetCreated = false;
    let switched = false;
    const staging = await stagingFolder(tenantId);
    try {
      await setFreeze(true);
      await step('freeze');
      await provisioner.announce('move', await provisioner.get(tenantId), {
        phase: 'writes-paused',
        job: job.id,
      });
      await sleep(settleMs);

      await step('copy');
      const tables = await fromStore.exportTables(tenant, staging, { lockTables: fromMode !== 'row' });
      targetCreated = true; // from here on a failure drops whatever part of the target exists
      // A copy left by a move that crashed before its switch (the tenant never was in the target mode,
      // so whatever is there is that copy) goes first.
      await toStore.dropStorage(relocated);
      await toStore.createStorage(relocated);
      await step('load');
      await toStore.importTables(relocated, staging, tables);

      await step('verify');
      const [sourceNow, copied] = await Promise.all([
        fromStore.checksumTables(tenant, tables),
        toStore.checksumTables(relocated, tables),
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

      await step('switch');
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
      switched = true;
      forget();
      const moved = await provisioner.get(tenantId);
      await provisioner.announce('move', moved, {
        phase: 'switched',
        from: fromMode,
        to: toMode,
        job: job.id,
      });

      await sleep(settleMs); // reads still routed to the old placement finish
      await step('drop-old');
      await fromStore.dropStorage(tenant);
      await toStore.createStorage(moved); // re-records its migrations (the drop forgot the tenant's)
      await provisioner.jobLog.succeed(job.id, {
        rows: Object.fromEntries(tables.map((t) => [t.name, t.rows])),
      });
      return moved;
    } catch (error) {
      await provisioner.jobLog.fail(job.id, error).catch(() => {});
      if (!switched) {
        const current = (await provisioner.get(tenantId).catch(() => undefined)) ?? tenant;
        if (targetCreated) {
          await toStore.dropStorage(relocated).catch(() => {});
          // the target's drop forgot the tenant's migration records, which the source shares
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
