import { fileURLToPath } from 'node:url';
import {
  type AuditEvent,
  type AuditSink,
  type Entitlements,
  type IsolationMode,
  MtPaasError,
  parseTenantId,
  type Tenant,
  type TenantDirectory,
  type TenantId,
  type TenantListOptions,
  type TenantPage,
  type TenantStatus,
  type UsageRecord,
  type UsageSink,
} from '@mt-paas/context';
import { and, asc, eq, gt, inArray, type SQL, sql } from 'drizzle-orm';
import type pg from 'pg';
import { type CatalogTables, createCatalogTables, DEFAULT_CATALOG_SCHEMA } from './catalog-schema.js';
import { createPgDriver, openEmbeddedDatabase, type SqlDriver } from './driver.js';
import { applyMigrations, readMigrationsFolder } from './migrator.js';
import { assertIdentifier, quoteIdentifier } from './sql-text.js';
import { mapStorageError } from './storage-errors.js';

/** Options of {@link createCatalog}. */
export interface CatalogOptions {
  /**
   * Postgres URL of the catalog (a role that owns the catalog schema). Falls back to `DATABASE_URL`;
   * without either (and without `driver`/`pool`), the embedded PGlite database is used.
   */
  connectionString?: string;
  /** Use this pool instead of opening one (not closed by `close()`). */
  pool?: pg.Pool;
  /** Use this driver (e.g. the embedded database from `openEmbeddedDatabase()`); not closed by `close()`. */
  driver?: SqlDriver;
  /** Postgres schema the catalog tables live in. @default 'mt_paas' */
  schema?: string;
  /** Where PGlite keeps its files when the embedded database is used; `'memory'` for none. @default '.data/pglite' */
  dataDir?: string;
  /** Pool size when the catalog opens its own pool. @default 5 */
  maxConnections?: number;
}

/** A tenant as written by the vendor or the provisioning service. */
export interface TenantInput {
  id: string;
  name: string;
  /** @default 'provisioning' on insert */
  status?: TenantStatus;
  /** @default 'free' on insert */
  plan?: string;
  adminEmail?: string | null;
  adminName?: string | null;
  institution?: string | null;
  contact?: string | null;
  description?: string | null;
  /** The marketplace's application id. */
  applicationId?: string | number | null;
  applicationKind?: 'demo' | 'service' | null;
  placement?: { mode: IsolationMode; location?: string | null };
  metadata?: Record<string, unknown>;
}

/** Fields {@link TenantWriter.update} may change. */
export type TenantPatch = Partial<Omit<TenantInput, 'id'>>;

/** Options of {@link TenantWriter.setStatus}. */
export interface SetStatusOptions {
  /** Stored in `<status>_reason` (suspended, blocked, deleted, purged) and in the block record. */
  reason?: string;
  /** When the change happened. @default now */
  at?: Date;
  /** For `blocked`: message shown to users, and when the block ends by itself. */
  block?: { message?: string; blockAt?: Date; until?: Date };
}

/** Entitlements as stored: the plan's features and limits plus subscription dates. */
export interface EntitlementsInput extends Entitlements {
  expiresAt?: Date | null;
  graceUntil?: Date | null;
  /** Where they came from (`plan`, `marketplace`, `override`). @default 'plan' */
  source?: string;
}

/** Catalog write helpers for vendors and the provisioning service. */
export interface TenantWriter {
  /** Inserts the tenant or updates the given fields of an existing one. Returns the stored tenant. */
  upsert(input: TenantInput): Promise<Tenant>;
  /** Changes fields of an existing tenant. @throws `TENANT_NOT_FOUND` */
  update(tenantId: string, patch: TenantPatch): Promise<Tenant>;
  /** Moves the tenant to `status`, stamping `<status>_at`/`_reason`. @throws `TENANT_NOT_FOUND` */
  setStatus(tenantId: string, status: TenantStatus, options?: SetStatusOptions): Promise<Tenant>;
  /** Replaces the tenant's entitlements (and its `plan`). @throws `TENANT_NOT_FOUND` */
  setEntitlements(tenantId: string, entitlements: EntitlementsInput): Promise<Tenant>;
  /** Maps host names (lower-cased, no port) to the tenant. A domain owned by another tenant → `CONFLICT`. */
  addDomains(
    tenantId: string,
    domains: ReadonlyArray<string | { domain: string; kind: 'subdomain' | 'custom' }>,
  ): Promise<void>;
  /** Unmaps host names from the tenant. */
  removeDomains(tenantId: string, domains: readonly string[]): Promise<void>;
  /** Deletes the tenant row and everything that references it (domains, entitlements, port block). Storage is not touched. */
  remove(tenantId: string): Promise<void>;
}

/** The central catalog. */
export interface Catalog {
  /** The catalog's Postgres schema. */
  readonly schema: string;
  /** The drizzle tables of this catalog schema. */
  readonly tables: CatalogTables;
  /** The connection the catalog uses (shared with `createTenantDb` for the embedded database). */
  readonly driver: SqlDriver;
  /** Postgres-backed {@link TenantDirectory}. */
  readonly directory: TenantDirectory;
  /** Write helpers. */
  readonly tenants: TenantWriter;
  /** Usage ledger sink; idempotent by `(tenantId, idempotencyKey)`. */
  readonly usage: UsageSink;
  /** Append-only audit log sink. */
  readonly audit: AuditSink;
  /** Applies the catalog migrations (same as `migrateCatalog(catalog)`). Returns the tags applied. */
  migrate(): Promise<string[]>;
  /** Closes what the catalog opened. */
  close(): Promise<void>;
}

/** Folder of the catalog's drizzle-kit migrations, shipped in the package. */
export const CATALOG_MIGRATIONS_FOLDER = fileURLToPath(new URL('../drizzle/catalog', import.meta.url));

/**
 * Opens the central catalog.
 *
 * @example
 * const catalog = await createCatalog({ connectionString: process.env.DATABASE_URL });
 * await catalog.migrate();
 * await catalog.tenants.upsert({ id: 'univ_8', name: 'Gwangju University', status: 'active' });
 * const tenant = await catalog.directory.get(parseTenantId('univ_8'));
 */
export async function createCatalog(options: CatalogOptions = {}): Promise<Catalog> {
  const schema = assertIdentifier(options.schema ?? DEFAULT_CATALOG_SCHEMA, 'catalog schema');
  const connectionString = options.connectionString ?? process.env.DATABASE_URL;
  let driver: SqlDriver;
  let ownsDriver = false;
  if (options.driver !== undefined) driver = options.driver;
  else if (options.pool !== undefined) driver = createPgDriver({ pool: options.pool });
  else if (connectionString !== undefined && connectionString !== '') {
    driver = createPgDriver({ connectionString, max: options.maxConnections ?? 5 });
    ownsDriver = true;
  } else {
    driver = await openEmbeddedDatabase(options.dataDir === undefined ? {} : { dataDir: options.dataDir });
    ownsDriver = true;
  }
  const tables = createCatalogTables(schema);
  const db = driver.db;
  const { tenants, tenantDomains, entitlements, usageLedger, auditLog } = tables;

  const guard = async <T>(where: string, fn: () => Promise<T>): Promise<T> => {
    try {
      return await fn();
    } catch (error) {
      throw mapStorageError(error, `catalog ${where}`);
    }
  };

  const domainsSql = sql<
    string[] | null
  >`(select coalesce(array_agg(d.domain order by d.domain), '{}') from ${sql.raw(
    `${quoteIdentifier(schema)}.${quoteIdentifier('tenant_domains')}`,
  )} d where d.tenant_id = ${tenants.id})`;

  const selectTenants = () =>
    db
      .select({ tenant: tenants, entitlements, domains: domainsSql })
      .from(tenants)
      .leftJoin(entitlements, eq(entitlements.tenantId, tenants.id));

  async function getTenant(tenantId: string): Promise<Tenant | undefined> {
    const rows = await guard('get', () => selectTenants().where(eq(tenants.id, tenantId)).limit(1));
    const row = rows[0];
    return row === undefined ? undefined : toTenant(row.tenant, row.entitlements, row.domains ?? []);
  }

  async function mustGet(tenantId: string): Promise<Tenant> {
    const tenant = await getTenant(tenantId);
    if (tenant === undefined) throw tenantNotFound(tenantId);
    return tenant;
  }

  const directory: TenantDirectory = {
    get: (tenantId) => getTenant(tenantId),
    async resolveDomain(domain) {
      const host = domain.trim().toLowerCase().replace(/:\d+$/, '').replace(/\.$/, '');
      const rows = await guard('resolveDomain', () =>
        db
          .select({ tenantId: tenantDomains.tenantId })
          .from(tenantDomains)
          .where(eq(tenantDomains.domain, host))
          .limit(1),
      );
      const found = rows[0];
      return found === undefined ? undefined : (found.tenantId as TenantId);
    },
    async list(listOptions: TenantListOptions = {}): Promise<TenantPage> {
      const limit = Math.min(Math.max(listOptions.limit ?? 100, 1), 1000);
      const conditions: SQL[] = [];
      if (listOptions.status !== undefined && listOptions.status.length > 0) {
        conditions.push(inArray(tenants.status, [...listOptions.status]));
      }
      if (listOptions.cursor !== undefined) conditions.push(gt(tenants.id, decodeCursor(listOptions.cursor)));
      const rows = await guard('list', () =>
        selectTenants()
          .where(conditions.length > 0 ? and(...conditions) : undefined)
          .orderBy(asc(tenants.id))
          .limit(limit + 1),
      );
      const page = rows
        .slice(0, limit)
        .map((row) => toTenant(row.tenant, row.entitlements, row.domains ?? []));
      const last = page.at(-1);
      return rows.length > limit && last !== undefined
        ? { tenants: page, nextCursor: Buffer.from(last.id).toString('base64url') }
        : { tenants: page };
    },
  };

  const columnsOf = (input: TenantPatch) => {
    const values: Partial<typeof tenants.$inferInsert> = {};
    if (input.name !== undefined) values.name = input.name;
    if (input.status !== undefined) values.status = input.status;
    if (input.plan !== undefined) values.plan = input.plan;
    if (input.adminEmail !== undefined) values.adminEmail = input.adminEmail;
    if (input.adminName !== undefined) values.adminName = input.adminName;
    if (input.institution !== undefined) values.institution = input.institution;
    if (input.contact !== undefined) values.contact = input.contact;
    if (input.description !== undefined) values.description = input.description;
    if (input.applicationId !== undefined) {
      values.applicationId = input.applicationId === null ? null : String(input.applicationId);
    }
    if (input.applicationKind !== undefined) values.applicationKind = input.applicationKind;
    if (input.placement !== undefined) {
      values.placementMode = input.placement.mode;
      values.placementLocation = input.placement.location ?? null;
    }
    if (input.metadata !== undefined) values.metadata = input.metadata;
    return values;
  };

  /** Updates the tenant row `tenantId` (bumping updated_at) and reads it back; TENANT_NOT_FOUND when absent. */
  const updateTenant = async (
    where: string,
    tenantId: string,
    values: Partial<typeof tenants.$inferInsert>,
  ): Promise<Tenant> => {
    const rows = await guard(where, () =>
      db
        .update(tenants)
        .set({ ...values, updatedAt: sql`now()` })
        .where(eq(tenants.id, tenantId))
        .returning({ id: tenants.id }),
    );
    if (rows.length === 0) throw tenantNotFound(tenantId);
    return mustGet(tenantId);
  };

  const writer: TenantWriter = {
    async upsert(input) {
      const id = parseTenantId(input.id);
      const values = columnsOf(input);
      await guard('upsert', () =>
        db
          .insert(tenants)
          .values({ ...values, id, name: input.name })
          .onConflictDoUpdate({ target: tenants.id, set: { ...values, updatedAt: sql`now()` } }),
      );
      return mustGet(id);
    },
    update(tenantId, patch) {
      return updateTenant('update', tenantId, columnsOf(patch));
    },
    async setStatus(tenantId, status, statusOptions = {}) {
      const at = statusOptions.at ?? new Date();
      const reason = statusOptions.reason ?? null;
      const values: Partial<typeof tenants.$inferInsert> = { status };
      if (status === 'suspended') Object.assign(values, { suspendedAt: at, suspendedReason: reason });
      if (status === 'deleted') Object.assign(values, { deletedAt: at, deletedReason: reason });
      if (status === 'purged') Object.assign(values, { purgedAt: at, purgedReason: reason });
      if (status === 'blocked') {
        Object.assign(values, {
          blockedAt: at,
          blockedReason: reason,
          blockReason: reason ?? 'blocked',
          blockMessage: statusOptions.block?.message ?? null,
          blockAt: statusOptions.block?.blockAt ?? null,
          blockUntil: statusOptions.block?.until ?? null,
        });
      } else if (status === 'active' || status === 'grace') {
        Object.assign(values, { blockReason: null, blockMessage: null, blockAt: null, blockUntil: null });
      }
      return updateTenant('setStatus', tenantId, values);
    },
    async setEntitlements(tenantId, input) {
      const values = {
        plan: input.plan,
        features: { ...input.features },
        limits: { rpm: input.limits.rpm, quotas: { ...input.limits.quotas } },
        expiresAt: input.expiresAt ?? null,
        graceUntil: input.graceUntil ?? null,
        source: input.source ?? 'plan',
      };
      await guard('setEntitlements', () =>
        db.transaction(async (tx) => {
          const rows = await tx
            .update(tenants)
            .set({ plan: input.plan, updatedAt: sql`now()` })
            .where(eq(tenants.id, tenantId))
            .returning({ id: tenants.id });
          if (rows.length === 0) throw tenantNotFound(tenantId);
          await tx
            .insert(entitlements)
            .values({ tenantId, ...values })
            .onConflictDoUpdate({ target: entitlements.tenantId, set: { ...values, updatedAt: sql`now()` } });
        }),
      );
      return mustGet(tenantId);
    },
    async addDomains(tenantId, domains) {
      if (domains.length === 0) return;
      const rows = domains.map((entry) => {
        const domain = normaliseDomain(typeof entry === 'string' ? entry : entry.domain);
        const kind = typeof entry === 'string' ? 'custom' : entry.kind;
        return { domain, kind, tenantId };
      });
      await guard('addDomains', () =>
        db.transaction(async (tx) => {
          const owner = await tx.select({ id: tenants.id }).from(tenants).where(eq(tenants.id, tenantId));
          if (owner.length === 0) throw tenantNotFound(tenantId);
          await tx.insert(tenantDomains).values(rows).onConflictDoNothing();
          const stored = await tx
            .select({ domain: tenantDomains.domain, tenantId: tenantDomains.tenantId })
            .from(tenantDomains)
            .where(
              inArray(
                tenantDomains.domain,
                rows.map((row) => row.domain),
              ),
            );
          const taken = stored.filter((row) => row.tenantId !== tenantId).map((row) => row.domain);
          if (taken.length > 0) {
            throw new MtPaasError(
              'CONFLICT',
              `Domain ${taken.join(', ')} already belongs to another tenant; remove it there first.`,
              { details: { domains: taken } },
            );
          }
        }),
      );
    },
    async removeDomains(tenantId, domains) {
      if (domains.length === 0) return;
      await guard('removeDomains', () =>
        db
          .delete(tenantDomains)
          .where(
            and(
              eq(tenantDomains.tenantId, tenantId),
              inArray(tenantDomains.domain, domains.map(normaliseDomain)),
            ),
          ),
      );
    },
    async remove(tenantId) {
      await guard('remove', () => db.delete(tenants).where(eq(tenants.id, tenantId)));
    },
  };

  const usage: UsageSink = {
    async record(records: readonly UsageRecord[]) {
      if (records.length === 0) return;
      const values = records.map((record) => ({
        tenantId: parseTenantId(record.tenantId),
        meter: record.meter,
        quantity: record.quantity,
        at: record.at,
        periodStart: record.periodStart === undefined ? null : new Date(record.periodStart),
        idempotencyKey: record.idempotencyKey,
        attributes: record.attributes === undefined ? null : { ...record.attributes },
      }));
      await guard('usage', () => db.insert(usageLedger).values(values).onConflictDoNothing());
    },
  };

  const audit: AuditSink = {
    async record(event: AuditEvent) {
      await guard('audit', () =>
        db.insert(auditLog).values({
          at: event.at,
          type: event.type,
          severity: event.severity,
          tenantId: event.tenantId ?? null,
          targetTenantId: event.targetTenantId ?? null,
          actor: event.actor === undefined ? null : { ...event.actor },
          requestId: event.requestId ?? null,
          details: event.details === undefined ? null : { ...event.details },
        }),
      );
    },
  };

  const catalog: Catalog = {
    schema,
    tables,
    driver,
    directory,
    tenants: writer,
    usage,
    audit,
    migrate: () => migrateCatalog(catalog),
    async close() {
      if (ownsDriver) await driver.close();
    },
  };
  return catalog;
}

/**
 * Applies the catalog's checked-in drizzle-kit migrations to the catalog schema (rewriting `mt_paas`
 * to the configured schema). Idempotent and safe to run from several instances at once (advisory lock).
 *
 * @returns the migration tags applied by this call.
 */
export async function migrateCatalog(catalog: Pick<Catalog, 'schema' | 'driver'>): Promise<string[]> {
  const migrations = readMigrationsFolder(CATALOG_MIGRATIONS_FOLDER);
  const target = quoteIdentifier(catalog.schema);
  const rewrite =
    catalog.schema === DEFAULT_CATALOG_SCHEMA
      ? undefined
      : (statement: string) => statement.replaceAll(`"${DEFAULT_CATALOG_SCHEMA}"`, target);
  try {
    return await catalog.driver.transaction((session) =>
      applyMigrations(session, {
        migrations,
        ledgerSchema: catalog.schema,
        lockKey: `catalog:${catalog.schema}`,
        ...(rewrite === undefined ? {} : { rewrite }),
      }),
    );
  } catch (error) {
    throw mapStorageError(error, 'catalog migrations');
  }
}

function tenantNotFound(tenantId: string): MtPaasError {
  return new MtPaasError(
    'TENANT_NOT_FOUND',
    `Tenant "${tenantId}" is not in the catalog; create it first (catalog.tenants.upsert) or check the id.`,
    { details: { tenantId } },
  );
}

function normaliseDomain(domain: string): string {
  const host = domain.trim().toLowerCase().replace(/:\d+$/, '').replace(/\.$/, '');
  if (!/^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/.test(host) || host.length > 253) {
    throw new MtPaasError('INVALID_REQUEST', `"${domain}" is not a host name (like "univ8.example.com").`);
  }
  return host;
}

function decodeCursor(cursor: string): string {
  return Buffer.from(cursor, 'base64url').toString('utf8');
}

type TenantRow = CatalogTables['tenants']['$inferSelect'];
type EntitlementsRow = CatalogTables['entitlements']['$inferSelect'];

function toTenant(
  row: TenantRow,
  entitlementsRow: EntitlementsRow | null,
  domains: readonly string[],
): Tenant {
  const metadata: Record<string, unknown> = { ...row.metadata };
  for (const [key, value] of [
    ['adminEmail', row.adminEmail],
    ['adminName', row.adminName],
    ['institution', row.institution],
    ['contact', row.contact],
    ['description', row.description],
    ['applicationId', row.applicationId],
    ['applicationKind', row.applicationKind],
  ] as const) {
    if (value !== null) metadata[key] = value;
  }
  const tenant: Tenant = {
    id: row.id as TenantId,
    name: row.name,
    status: row.status as TenantStatus,
    plan: row.plan,
    entitlements: {
      plan: entitlementsRow?.plan ?? row.plan,
      features: { ...(entitlementsRow?.features ?? {}) },
      limits: {
        rpm: entitlementsRow?.limits.rpm ?? null,
        quotas: { ...((entitlementsRow?.limits.quotas ?? {}) as Entitlements['limits']['quotas']) },
      },
    },
    placement:
      row.placementLocation === null
        ? { mode: row.placementMode as IsolationMode }
        : { mode: row.placementMode as IsolationMode, location: row.placementLocation },
    domains,
    metadata,
    createdAt: row.createdAt,
    updatedAt: row.updatedAt,
  };
  if (entitlementsRow?.expiresAt) tenant.expiresAt = entitlementsRow.expiresAt;
  if (entitlementsRow?.graceUntil) tenant.graceUntil = entitlementsRow.graceUntil;
  if (row.blockReason !== null) {
    tenant.block = { reason: row.blockReason };
    if (row.blockMessage !== null) tenant.block.message = row.blockMessage;
    if (row.blockAt !== null) tenant.block.blockAt = row.blockAt;
    if (row.blockUntil !== null) tenant.block.until = row.blockUntil;
  }
  return tenant;
}
