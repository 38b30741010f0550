import {
  type AuditSink,
  type IsolationMode,
  MtPaasError,
  parseTenantId,
  type Tenant,
  type TenantEvent,
  type TenantEventBus,
  type TenantId,
  type TenantStatus,
} from '@mt-paas/context';
import type { Catalog, EntitlementsInput, TenantDb, TenantScope } from '@mt-paas/db';
import { eq } from 'drizzle-orm';
import {
  createIsolationModeStore,
  type IsolationModeStore,
  type PlacementStrategy,
} from './isolation-mode.js';
import { createJobLog, type JobLog, type ProvisioningJob } from './jobs.js';
import { type LifecycleAction, planTransition } from './lifecycle.js';
import { createTenantLock, type TenantLock } from './tenant-lock.js';
import {
  type ArchiveOptions,
  type ExportOptions,
  type ExportResult,
  exportTenantArchive,
  type ImportOptions,
  importTenantArchive,
  type MoveOptions,
  moveTenantStorage,
  type TransferContext,
} from './tenant-transfer.js';

/** The isolation modes a provisioner stores tenants in (`docker` uses the `database` tenant db). */
export type StorageMode = 'row' | 'schema' | 'database';

/** What {@link Provisioner.onboard} takes: the marketplace's tenant fields (seed 002 `/tenant/create`). */
export interface OnboardInput {
  id: string;
  name: string;
  /** @default 'free' */
  plan?: string;
  adminEmail?: string;
  adminName?: string;
  institution?: string;
  contact?: string;
  description?: string;
  applicationId?: string | number;
  applicationKind?: 'demo' | 'service';
  /** Isolation mode of this tenant. @default the provisioner's `defaultMode` */
  mode?: IsolationMode;
  /** Host names mapped to the tenant (`hallym.keli.example.ac.kr`). */
  domains?: string[];
  /** Entitlements to store with the tenant. */
  entitlements?: EntitlementsInput;
  metadata?: Record<string, unknown>;
}

/** What every hook receives. */
export interface HookContext {
  tenant: Tenant;
  /** The job this step belongs to (`attempts` > 1 when a killed or failed run is resumed). */
  job: ProvisioningJob;
}

/** Hooks an app registers to take part in the lifecycle. A hook that throws fails the job. */
export interface ProvisioningHooks {
  /** Before any storage is created (validate the input, reserve things elsewhere). Runs on every attempt. */
  beforeOnboard?(context: HookContext & { input: OnboardInput }): unknown;
  /**
   * After the tenant's storage exists and is migrated, before it turns `active`: seed the admin user and
   * sample data through `scope.run(tx => …)`. Runs at least once: a run killed after the hook committed
   * runs it again, so write it idempotently (a unique key and `ON CONFLICT DO NOTHING`).
   */
  afterOnboard?(context: HookContext & { input: OnboardInput; scope: TenantScope }): unknown;
  /** After the tenant is soft-deleted. */
  afterOffboard?(context: HookContext): unknown;
  /** Before the tenant's storage is dropped (the export, if configured, has been written). */
  beforePurge?(context: HookContext & { archive?: string }): unknown;
  /** After the tenant's storage is dropped. */
  afterPurge?(context: HookContext): unknown;
  /** After every transition (suspend, resume, block, …), once the new state is stored. */
  afterTransition?(context: HookContext & { action: LifecycleAction; from: TenantStatus }): unknown;
}

/** Options of {@link createProvisioner}. */
export interface ProvisionerOptions {
  /** The central catalog (tenants, `provisioning_jobs`). */
  catalog: Catalog;
  /**
   * A tenant db per isolation mode in use (`createTenantDb` with the app's `migrationsFolder`).
   * Tenants are stored by the tenant db of their placement mode; `docker` tenants by `database`.
   */
  tenantDbs: Partial<Record<StorageMode, TenantDb>>;
  /** Mode of a new tenant when {@link OnboardInput.mode} is not given. @default 'row' */
  defaultMode?: IsolationMode;
  /** Every transition is published here (cache invalidation, kill switch on every instance). */
  events?: TenantEventBus;
  /** Every transition is audited here. @default the catalog's audit log */
  audit?: AuditSink;
  hooks?: ProvisioningHooks;
  /** Days an offboarded tenant's data is kept (restorable) before `purge` may drop it. @default 30 */
  retentionDays?: number;
  /**
   * Write an export archive (see `exportTenant`) into this directory before a purge drops the storage.
   * The purge fails, and keeps the data, when the export fails.
   */
  exportBeforePurge?: { directory: string };
  /** Who acts (recorded in the audit log and the jobs). @default 'mt-paas-provisioning' */
  actor?: string;
  /** How long to wait for another process provisioning the same tenant (ms). @default 120000 */
  lockTimeoutMs?: number;
  /** Placement strategies by mode (the `docker` strategy from `createDockerPlacement`). */
  placements?: Partial<Record<IsolationMode, PlacementStrategy>>;
  /** Export, import and move (and `exportBeforePurge`) need this. */
  archive?: ArchiveOptions;
}

/** Options of the transitions that take a reason. */
export interface TransitionOptions {
  reason?: string;
}

/** Options of {@link Provisioner.block}. */
export interface BlockOptions extends TransitionOptions {
  /** Shown to the tenant's users. */
  message?: string;
  /** When the block lifts by itself. */
  until?: Date;
  /** When the block takes effect (grace before the block). */
  blockAt?: Date;
}

/** Options of {@link Provisioner.purge}. */
export interface PurgeOptions extends TransitionOptions {
  /** Purge before the retention period has passed. @default false */
  force?: boolean;
  /** Override the provisioner's `exportBeforePurge` for this call (`false`: no export). */
  exportTo?: string | false;
}

/** The tenant lifecycle over the catalog. */
export interface Provisioner {
  readonly catalog: Catalog;
  /**
   * Onboards a tenant: catalog row (`provisioning`) → storage created and migrated → hooks → `active`.
   * Idempotent (an active tenant is returned as is) and resumable (a killed run is completed by the
   * next call). Concurrent calls for one id are serialised.
   */
  onboard(input: OnboardInput): Promise<Tenant>;
  /** active | grace → suspended. Repeating it is a no-op. */
  suspend(tenantId: string, options?: TransitionOptions): Promise<Tenant>;
  /** suspended → active. */
  resume(tenantId: string, options?: TransitionOptions): Promise<Tenant>;
  /** active | grace | suspended → blocked (the kill switch). Repeating it is a no-op. */
  block(tenantId: string, options?: BlockOptions): Promise<Tenant>;
  /** blocked → active. */
  unblock(tenantId: string, options?: TransitionOptions): Promise<Tenant>;
  /** Soft delete: any live state → deleted; the data is kept for `retentionDays` and can be restored. */
  offboard(tenantId: string, options?: TransitionOptions): Promise<Tenant>;
  /** deleted → active, with its data. */
  restore(tenantId: string, options?: TransitionOptions): Promise<Tenant>;
  /** deleted → purged: the storage is dropped (after the export, when configured). Irreversible. */
  purge(tenantId: string, options?: PurgeOptions): Promise<Tenant>;
  /** Purges every deleted tenant whose retention has passed. Returns the ids purged. */
  purgeExpired(): Promise<string[]>;
  /** When an offboarded tenant may be purged (undefined when it is not deleted). */
  retainedUntil(tenantId: string): Promise<Date | undefined>;
  /** The tenant, or `TENANT_NOT_FOUND`. */
  get(tenantId: string): Promise<Tenant>;
  /** The tenant's provisioning jobs, newest first. */
  jobs(tenantId: string, options?: { limit?: number }): Promise<ProvisioningJob[]>;
  /**
   * Writes a portable archive of the tenant's data (`.mtpaas.tgz`: `manifest.json` with mode, migration
   * version, row counts and sha256 checksums, and one PostgreSQL COPY file per table — the same format
   * for every mode). Reads one consistent snapshot; the tenant keeps running.
   */
  exportTenant(tenantId: string, options?: ExportOptions): Promise<ExportResult>;
  /**
   * Restores an archive into a new or purged tenant id, in the archive's mode or `options.mode`. Refuses a
   * tampered or unsafe archive (`INVALID_REQUEST`) and a migration version other than this service's (`CONFLICT`).
   */
  importTenant(file: string, options?: ImportOptions): Promise<Tenant>;
  /**
   * Moves a live tenant between row, schema and database modes: writes pause (a router answers 503 with
   * Retry-After), reads go on, the copy is verified, the placement switches in one statement, the old
   * storage is dropped last.
   */
  moveTenant(tenantId: string, toMode: StorageMode, options?: MoveOptions): Promise<Tenant>;
  /** The store of an isolation mode (scope, storage, export / import). @throws `CONFIG_INVALID` when not configured. */
  storeFor(mode: IsolationMode): IsolationModeStore;
  /** The tenant db that stores tenants of `mode`. @throws `CONFIG_INVALID` when none is configured. */
  tenantDbFor(mode: IsolationMode): TenantDb;
  /** Runs `fn` holding the tenant's provisioning lock (used by export / import / move). @internal */
  withTenantLock<T>(tenantId: string, fn: () => Promise<T>): Promise<T>;
  /** The job log. @internal */
  readonly jobLog: JobLog;
  /** Publishes and audits a transition. @internal */
  announce(action: LifecycleAction, tenant: Tenant, details?: Record<string, unknown>): Promise<void>;
}

const DAY_MS = 86_400_000;

const AUDIT: Record<LifecycleAction, { type: string; severity: 'low' | 'medium' | 'high' }> = {
  onboard: { type: 'tenant_onboarded', severity: 'low' },
  suspend: { type: 'tenant_suspended', severity: 'medium' },
  resume: { type: 'tenant_resumed', severity: 'low' },
  block: { type: 'tenant_blocked', severity: 'high' },
  unblock: { type: 'tenant_unblocked', severity: 'medium' },
  offboard: { type: 'tenant_offboarded', severity: 'medium' },
  restore: { type: 'tenant_restored', severity: 'medium' },
  purge: { type: 'tenant_purged', severity: 'high' },
  move: { type: 'tenant_moved', severity: 'medium' },
  import: { type: 'tenant_imported', severity: 'medium' },
};

/**
 * Creates the tenant lifecycle service.
 *
 * @example
 * const provisioner = createProvisioner({ catalog, tenantDbs: { schema: tenantDb }, defaultMode: 'schema',
 *   hooks: { afterOnboard: ({ scope, input }) => scope.run((tx) => tx.insert(users).values({ email: input.adminEmail, role: 'admin' }).onConflictDoNothing()) } });
 * await provisioner.onboard({ id: 'hallym', name: 'Hallym University', adminEmail: 'admin@hallym.ac.kr' });
 */
export function createProvisioner(options: ProvisionerOptions): Provisioner {
  const { catalog } = options;
  const defaultMode = options.defaultMode ?? 'row';
  const retentionDays = options.retentionDays ?? 30;
  if (!Number.isFinite(retentionDays) || retentionDays < 0) {
    throw new MtPaasError('CONFIG_INVALID', `retentionDays must be a number ≥ 0, got ${retentionDays}.`);
  }
  const audit = options.audit ?? catalog.audit;
  const hooks = options.hooks ?? {};
  const actor = options.actor ?? 'mt-paas-provisioning';
  const jobLog = createJobLog(catalog);
  const lock: TenantLock = createTenantLock(
    catalog,
    options.lockTimeoutMs === undefined ? {} : { timeoutMs: options.lockTimeoutMs },
  );

  const tenantDbFor = (mode: IsolationMode): TenantDb => {
    const storageMode: StorageMode = mode === 'docker' ? 'database' : mode;
    const tenantDb = options.tenantDbs[storageMode];
    if (tenantDb === undefined) {
      throw new MtPaasError(
        'CONFIG_INVALID',
        `No tenant db for ${mode} mode: pass tenantDbs.${storageMode} (createTenantDb({ mode: '${storageMode}', … })) to the provisioner.`,
        { details: { mode } },
      );
    }
    return tenantDb;
  };

  const stores = new Map<IsolationMode, IsolationModeStore>();
  const storeFor = (mode: IsolationMode): IsolationModeStore => {
    let store = stores.get(mode);
    if (store === undefined) {
      const placement = options.placements?.[mode];
      store = createIsolationModeStore({
        mode,
        catalog,
        tenantDb: tenantDbFor(mode),
        ...(placement === undefined ? {} : { placement }),
        ...(options.archive?.appConnectionString === undefined
          ? {}
          : { appConnectionString: options.archive.appConnectionString }),
        ...(options.archive?.appSchema === undefined ? {} : { appSchema: options.archive.appSchema }),
      });
      stores.set(mode, store);
    }
    return store;
  };

  const mustGet = async (tenantId: TenantId): Promise<Tenant> => {
    const tenant = await catalog.directory.get(tenantId);
    if (tenant === undefined) {
      throw new MtPaasError('TENANT_NOT_FOUND', `Tenant "${tenantId}" is not in the catalog; check the id.`, {
        details: { tenantId },
      });
    }
    return tenant;
  };

  const deletedAt = async (tenantId: TenantId): Promise<Date | undefined> => {
    const table = catalog.tables.tenants;
    const rows = await catalog.driver.db
      .select({ deletedAt: table.deletedAt })
      .from(table)
      .where(eq(table.id, tenantId));
    return rows[0]?.deletedAt ?? undefined;
  };

  const announce = async (action: LifecycleAction, tenant: Tenant, details: Record<string, unknown> = {}) => {
    const at = new Date();
    const event: TenantEvent =
      action === 'block' && tenant.block !== undefined
        ? {
            type: 'tenant.blocked',
            tenantId: tenant.id,
            block: tenant.block,
            at: at.toISOString(),
            origin: actor,
          }
        : action === 'unblock'
          ? { type: 'tenant.unblocked', tenantId: tenant.id, at: at.toISOString(), origin: actor }
          : action === 'purge'
            ? { type: 'tenant.deleted', tenantId: tenant.id, at: at.toISOString(), origin: actor }
            : {
                type: 'tenant.changed',
                tenantId: tenant.id,
                status: tenant.status,
                at: at.toISOString(),
                origin: actor,
              };
    await audit.record({
      type: AUDIT[action].type,
      severity: AUDIT[action].severity,
      tenantId: tenant.id,
      actor: { service: actor },
      details: { action, status: tenant.status, placement: tenant.placement, ...details },
      at,
    });
    await options.events?.publish(event);
  };

  /** Runs a non-onboarding transition as a recorded job under the tenant's lock. */
  const transition = async (
    action: Exclude<LifecycleAction, 'onboard'>,
    rawTenantId: string,
    details: Record<string, unknown>,
    apply: (tenant: Tenant, job: ProvisioningJob, to: TenantStatus) => Promise<Tenant>,
  ): Promise<Tenant> => {
    const tenantId = parseTenantId(rawTenantId);
    return lock.withLock(tenantId, async () => {
      const tenant = await mustGet(tenantId);
      const plan = planTransition(action, tenantId, tenant.status);
      if (plan.kind === 'noop') return tenant;
      const job = await jobLog.start(tenantId, action, { details: { from: tenant.status, ...details } });
      try {
        const next = await apply(tenant, job, plan.to);
        await jobLog.succeed(job.id, { to: next.status });
        await announce(action, next, { from: tenant.status, job: job.id, ...details });
        await hooks.afterTransition?.({ tenant: next, job, action, from: tenant.status });
        return next;
      } catch (error) {
        await jobLog.fail(job.id, error).catch(() => {});
        throw error;
      }
    });
  };

  const withReason = (options: TransitionOptions = {}) =>
    options.reason === undefined ? {} : { reason: options.reason };

  const purgeOne = (rawTenantId: string, purgeOptions: PurgeOptions = {}) =>
    transition(
      'purge',
      rawTenantId,
      { ...withReason(purgeOptions), force: purgeOptions.force === true },
      async (tenant, job) => {
        const deleted = await deletedAt(tenant.id);
        const until = new Date((deleted ?? new Date()).getTime() + retentionDays * DAY_MS);
        if (purgeOptions.force !== true && until.getTime() > Date.now()) {
          throw new MtPaasError(
            'CONFLICT',
            `Tenant "${tenant.id}" is deleted but retained until ${until.toISOString()} (retentionDays ${retentionDays}); purge then, or pass force to purge now.`,
            { details: { tenantId: tenant.id, status: tenant.status, retainedUntil: until.toISOString() } },
          );
        }
        const directory =
          purgeOptions.exportTo === false
            ? undefined
            : (purgeOptions.exportTo ?? options.exportBeforePurge?.directory);
        let archive: string | undefined;
        if (directory !== undefined) {
          await jobLog.step(job.id, 'export');
          archive = (await exportTenantArchive(transferContext(), tenant, { directory })).file;
          await jobLog.step(job.id, 'export', { archive });
        }
        await hooks.beforePurge?.({ tenant, job, ...(archive === undefined ? {} : { archive }) });
        await jobLog.step(job.id, 'drop-storage');
        const dropped = await storeFor(tenant.placement.mode).dropStorage(tenant);
        if (dropped.note !== undefined) await jobLog.step(job.id, 'drop-storage', { storage: dropped.note });
        const domains = tenant.domains ?? [];
        if (domains.length > 0) await catalog.tenants.removeDomains(tenant.id, domains);
        const purged = await catalog.tenants.setStatus(tenant.id, 'purged', withReason(purgeOptions));
        await hooks.afterPurge?.({ tenant: purged, job });
        return purged;
      },
    );

  const transferContext = (): TransferContext => {
    if (options.archive === undefined) {
      throw new MtPaasError(
        'CONFIG_INVALID',
        'Export, import, move and exportBeforePurge need the archive option: { appConnectionString, migrationsFolder }.',
      );
    }
    return { provisioner, options: options.archive };
  };

  const provisioner: Provisioner = {
    catalog,
    jobLog,
    announce,
    tenantDbFor,
    storeFor,
    withTenantLock: async (tenantId, fn) => lock.withLock(parseTenantId(tenantId), fn),

    async onboard(input) {
      const tenantId = parseTenantId(input.id);
      if (typeof input.name !== 'string' || input.name.trim() === '') {
        throw new MtPaasError(
          'INVALID_REQUEST',
          `Onboarding "${tenantId}" needs a name (the institution's display name).`,
        );
      }
      return lock.withLock(tenantId, async () => {
        const existing = await catalog.directory.get(tenantId);
        if (existing !== undefined && planTransition('onboard', tenantId, existing.status).kind === 'noop') {
          return existing;
        }
        const resumed = existing?.status === 'provisioning';
        const mode: IsolationMode = resumed ? existing.placement.mode : (input.mode ?? defaultMode);
        storeFor(mode); // fail before writing anything when the mode is not configured
        const job = await jobLog.start(tenantId, 'onboard', { resume: resumed, details: { mode } });
        try {
          let tenant = await catalog.tenants.upsert({
            id: tenantId,
            name: input.name,
            status: 'provisioning',
            ...(input.plan === undefined ? {} : { plan: input.plan }),
            ...(input.adminEmail === undefined ? {} : { adminEmail: input.adminEmail }),
            ...(input.adminName === undefined ? {} : { adminName: input.adminName }),
            ...(input.institution === undefined ? {} : { institution: input.institution }),
            ...(input.contact === undefined ? {} : { contact: input.contact }),
            ...(input.description === undefined ? {} : { description: input.description }),
            ...(input.applicationId === undefined ? {} : { applicationId: input.applicationId }),
            ...(input.applicationKind === undefined ? {} : { applicationKind: input.applicationKind }),
            ...(input.metadata === undefined ? {} : { metadata: input.metadata }),
            placement: resumed ? existing.placement : { mode },
          });
          await hooks.beforeOnboard?.({ tenant, job, input });
          const store = storeFor(mode);
          const created = await store.createStorage(tenant, {
            job,
            onStep: (step) => jobLog.step(job.id, step),
          });
          tenant = created.tenant;
          await jobLog.step(job.id, 'catalog', { migrations: created.applied });
          if (input.entitlements !== undefined)
            await catalog.tenants.setEntitlements(tenantId, input.entitlements);
          if (input.domains !== undefined && input.domains.length > 0) {
            await catalog.tenants.addDomains(tenantId, input.domains);
          }
          await jobLog.step(job.id, 'hooks.afterOnboard');
          await hooks.afterOnboard?.({ tenant, job, input, scope: store.forTenant(tenantId) });
          await jobLog.step(job.id, 'activate');
          tenant = await catalog.tenants.setStatus(tenantId, 'active');
          await jobLog.succeed(job.id, { to: 'active' });
          await announce('onboard', tenant, { job: job.id, attempts: job.attempts, mode });
          return tenant;
        } catch (error) {
          await jobLog.fail(job.id, error).catch(() => {});
          throw error;
        }
      });
    },

    suspend: (tenantId, transitionOptions = {}) =>
      transition('suspend', tenantId, withReason(transitionOptions), (tenant) =>
        catalog.tenants.setStatus(tenant.id, 'suspended', withReason(transitionOptions)),
      ),
    resume: (tenantId, transitionOptions = {}) =>
      transition('resume', tenantId, withReason(transitionOptions), (tenant) =>
        catalog.tenants.setStatus(tenant.id, 'active'),
      ),
    block: (tenantId, blockOptions = {}) =>
      transition('block', tenantId, withReason(blockOptions), (tenant) =>
        catalog.tenants.setStatus(tenant.id, 'blocked', {
          reason: blockOptions.reason ?? 'blocked',
          block: {
            ...(blockOptions.message === undefined ? {} : { message: blockOptions.message }),
            ...(blockOptions.until === undefined ? {} : { until: blockOptions.until }),
            ...(blockOptions.blockAt === undefined ? {} : { blockAt: blockOptions.blockAt }),
          },
        }),
      ),
    unblock: (tenantId, transitionOptions = {}) =>
      transition('unblock', tenantId, withReason(transitionOptions), (tenant) =>
        catalog.tenants.setStatus(tenant.id, 'active'),
      ),
    offboard: (tenantId, transitionOptions = {}) =>
      transition(
        'offboard',
        tenantId,
        { ...withReason(transitionOptions), retentionDays },
        async (tenant, job) => {
          const deleted = await catalog.tenants.setStatus(
            tenant.id,
            'deleted',
            withReason(transitionOptions),
          );
          await hooks.afterOffboard?.({ tenant: deleted, job });
          return deleted;
        },
      ),
    restore: (tenantId, transitionOptions = {}) =>
      transition('restore', tenantId, withReason(transitionOptions), (tenant) =>
        catalog.tenants.setStatus(tenant.id, 'active'),
      ),
    purge: purgeOne,

    async purgeExpired() {
      const purged: string[] = [];
      let cursor: string | undefined;
      const due: TenantId[] = [];
      do {
        const page = await catalog.directory.list({
          status: ['deleted'],
          limit: 500,
          ...(cursor === undefined ? {} : { cursor }),
        });
        for (const tenant of page.tenants) {
          const deleted = await deletedAt(tenant.id);
          if (deleted !== undefined && deleted.getTime() + retentionDays * DAY_MS <= Date.now())
            due.push(tenant.id);
        }
        cursor = page.nextCursor;
      } while (cursor !== undefined);
      for (const tenantId of due) {
        await purgeOne(tenantId);
        purged.push(tenantId);
      }
      return purged;
    },

    async retainedUntil(rawTenantId) {
      const tenantId = parseTenantId(rawTenantId);
      const tenant = await mustGet(tenantId);
      if (tenant.status !== 'deleted') return undefined;
      const deleted = await deletedAt(tenantId);
      return new Date((deleted ?? new Date()).getTime() + retentionDays * DAY_MS);
    },

    get: async (tenantId) => mustGet(parseTenantId(tenantId)),
    async exportTenant(rawTenantId, exportOptions) {
      const tenant = await mustGet(parseTenantId(rawTenantId));
      const job = await jobLog.start(tenant.id, 'export');
      try {
        const result = await exportTenantArchive(transferContext(), tenant, exportOptions);
        await jobLog.succeed(job.id, { archive: result.file, tables: result.manifest.tables.length });
        return result;
      } catch (error) {
        await jobLog.fail(job.id, error).catch(() => {});
        throw error;
      }
    },
    importTenant: async (file, importOptions) => importTenantArchive(transferContext(), file, importOptions),
    moveTenant: async (tenantId, toMode, moveOptions) =>
      moveTenantStorage(transferContext(), tenantId, toMode, moveOptions),
    jobs: async (tenantId, listOptions) => jobLog.list(parseTenantId(tenantId), listOptions),
  };
  return provisioner;
}
