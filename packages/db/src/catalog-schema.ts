import { sql } from 'drizzle-orm';
import {
  bigint,
  check,
  doublePrecision,
  index,
  integer,
  jsonb,
  pgSchema,
  primaryKey,
  text,
  timestamp,
  uniqueIndex,
  uuid,
} from 'drizzle-orm/pg-core';

/** The Postgres schema the catalog lives in unless configured otherwise. */
export const DEFAULT_CATALOG_SCHEMA = 'mt_paas';

const timestamptz = (name: string) => timestamp(name, { withTimezone: true, mode: 'date' });

/**
 * The central catalog's tables in the Postgres schema `schemaName`.
 * The checked-in migrations are generated for `mt_paas`; `migrateCatalog()` rewrites the schema name.
 */
export function createCatalogTables(schemaName: string = DEFAULT_CATALOG_SCHEMA) {
  const schema = pgSchema(schemaName);

  const tenants = schema.table(
    'tenants',
    {
      id: text('id').primaryKey(),
      name: text('name').notNull(),
      status: text('status').notNull().default('provisioning'),
      plan: text('plan').notNull().default('free'),
      adminEmail: text('admin_email'),
      adminName: text('admin_name'),
      institution: text('institution'),
      contact: text('contact'),
      description: text('description'),
      /** The marketplace's application (subscription request) id. */
      applicationId: text('application_id'),
      applicationKind: text('application_kind'),
      placementMode: text('placement_mode').notNull().default('row'),
      placementLocation: text('placement_location'),
      blockReason: text('block_reason'),
      blockMessage: text('block_message'),
      blockAt: timestamptz('block_at'),
      blockUntil: timestamptz('block_until'),
      metadata: jsonb('metadata').$type<Record<string, unknown>>().notNull().default({}),
      createdAt: timestamptz('created_at').notNull().defaultNow(),
      updatedAt: timestamptz('updated_at').notNull().defaultNow(),
      suspendedAt: timestamptz('suspended_at'),
      suspendedReason: text('suspended_reason'),
      blockedAt: timestamptz('blocked_at'),
      blockedReason: text('blocked_reason'),
      deletedAt: timestamptz('deleted_at'),
      deletedReason: text('deleted_reason'),
      purgedAt: timestamptz('purged_at'),
      purgedReason: text('purged_reason'),
    },
    (t) => [
      check(
        'tenants_status_check',
        sql`${t.status} in ('provisioning', 'active', 'grace', 'suspended', 'blocked', 'deleted', 'purged')`,
      ),
      check(
        'tenants_application_kind_check',
        sql`${t.applicationKind} is null or ${t.applicationKind} in ('demo', 'service')`,
      ),
      check(
        'tenants_placement_mode_check',
        sql`${t.placementMode} in ('row', 'schema', 'database', 'docker')`,
      ),
      index('tenants_status_idx').on(t.status),
      index('tenants_application_idx').on(t.applicationId),
    ],
  );

  const tenantDomains = schema.table(
    'tenant_domains',
    {
      domain: text('domain').primaryKey(),
      tenantId: text('tenant_id')
        .notNull()
        .references(() => tenants.id, { onDelete: 'cascade' }),
      kind: text('kind').notNull().default('custom'),
      verifiedAt: timestamptz('verified_at'),
      createdAt: timestamptz('created_at').notNull().defaultNow(),
    },
    (t) => [
      check('tenant_domains_kind_check', sql`${t.kind} in ('subdomain', 'custom')`),
      check('tenant_domains_lower_check', sql`${t.domain} = lower(${t.domain})`),
      index('tenant_domains_tenant_idx').on(t.tenantId),
    ],
  );

  const entitlements = schema.table('entitlements', {
    tenantId: text('tenant_id')
      .primaryKey()
      .references(() => tenants.id, { onDelete: 'cascade' }),
    plan: text('plan').notNull(),
    features: jsonb('features').$type<Record<string, boolean>>().notNull().default({}),
    limits: jsonb('limits')
      .$type<{ rpm: number | null; quotas: Record<string, unknown> }>()
      .notNull()
      .default({ rpm: null, quotas: {} }),
    expiresAt: timestamptz('expires_at'),
    graceUntil: timestamptz('grace_until'),
    /** Where these entitlements came from: `plan`, `marketplace`, `override`, … */
    source: text('source').notNull().default('plan'),
    updatedAt: timestamptz('updated_at').notNull().defaultNow(),
  });

  const usageLedger = schema.table(
    'usage_ledger',
    {
      id: bigint('id', { mode: 'number' }).primaryKey().generatedAlwaysAsIdentity(),
      tenantId: text('tenant_id').notNull(),
      meter: text('meter').notNull(),
      periodStart: timestamptz('period_start'),
      quantity: doublePrecision('quantity').notNull(),
      at: timestamptz('at').notNull(),
      idempotencyKey: text('idempotency_key').notNull(),
      attributes: jsonb('attributes').$type<Record<string, string>>(),
      recordedAt: timestamptz('recorded_at').notNull().defaultNow(),
    },
    (t) => [
      uniqueIndex('usage_ledger_idempotency_idx').on(t.tenantId, t.idempotencyKey),
      index('usage_ledger_meter_idx').on(t.tenantId, t.meter, t.periodStart),
    ],
  );

  const auditLog = schema.table(
    'audit_log',
    {
      id: bigint('id', { mode: 'number' }).primaryKey().generatedAlwaysAsIdentity(),
      at: timestamptz('at').notNull(),
      type: text('type').notNull(),
      severity: text('severity').notNull(),
      tenantId: text('tenant_id'),
      targetTenantId: text('target_tenant_id'),
      actor: jsonb('actor').$type<{ userId?: string; ip?: string; service?: string }>(),
      requestId: text('request_id'),
      details: jsonb('details').$type<Record<string, unknown>>(),
      recordedAt: timestamptz('recorded_at').notNull().defaultNow(),
    },
    (t) => [
      check('audit_log_severity_check', sql`${t.severity} in ('low', 'medium', 'high', 'critical')`),
      index('audit_log_tenant_idx').on(t.tenantId, t.at),
      index('audit_log_type_idx').on(t.type, t.at),
    ],
  );

  const outbox = schema.table(
    'outbox',
    {
      eventId: text('event_id').primaryKey(),
      tenantId: text('tenant_id'),
      type: text('type').notNull(),
      payload: jsonb('payload').notNull(),
      attempts: integer('attempts').notNull().default(0),
      nextAttemptAt: timestamptz('next_attempt_at').notNull().defaultNow(),
      lastError: text('last_error'),
      deliveredAt: timestamptz('delivered_at'),
      createdAt: timestamptz('created_at').notNull().defaultNow(),
    },
    (t) => [index('outbox_pending_idx').on(t.nextAttemptAt).where(sql`${t.deliveredAt} is null`)],
  );

  const webhookReceipts = schema.table(
    'webhook_receipts',
    {
      webhookId: text('webhook_id').primaryKey(),
      type: text('type'),
      tenantId: text('tenant_id'),
      receivedAt: timestamptz('received_at').notNull().defaultNow(),
      /** `processed`, `ignored`, `failed`, … */
      result: text('result'),
      details: jsonb('details').$type<Record<string, unknown>>(),
      /** Events with the same tenant and ordering key apply in `occurred_at` order (`access`, `subscription`, …). */
      orderingKey: text('ordering_key'),
      /** When the marketplace says the event happened; an older event than the last applied one is ignored. */
      occurredAt: timestamptz('occurred_at'),
    },
    (t) => [index('webhook_receipts_ordering_idx').on(t.tenantId, t.orderingKey, t.occurredAt)],
  );

  const provisioningJobs = schema.table(
    'provisioning_jobs',
    {
      id: uuid('id').primaryKey().defaultRandom(),
      tenantId: text('tenant_id').notNull(),
      action: text('action').notNull(),
      step: text('step'),
      state: text('state').notNull().default('pending'),
      attempts: integer('attempts').notNull().default(0),
      error: text('error'),
      details: jsonb('details').$type<Record<string, unknown>>(),
      /**
       * The id of the outbox message that reported this transition's status to the marketplace
       * (`@mt-paas/framework`); null until reported.
       */
      statusReport: text('status_report'),
      createdAt: timestamptz('created_at').notNull().defaultNow(),
      updatedAt: timestamptz('updated_at').notNull().defaultNow(),
    },
    (t) => [
      check(
        'provisioning_jobs_state_check',
        sql`${t.state} in ('pending', 'running', 'succeeded', 'failed', 'cancelled')`,
      ),
      index('provisioning_jobs_tenant_idx').on(t.tenantId, t.createdAt),
      // Sweeps read only unfinished jobs, and status reports only unreported transitions: both stay small
      // while the table grows with every transition.
      index('provisioning_jobs_open_idx')
        .on(t.action, t.createdAt)
        .where(sql`${t.state} in ('pending', 'running', 'failed')`),
      index('provisioning_jobs_unreported_idx')
        .on(t.action, t.updatedAt)
        .where(sql`${t.state} = 'succeeded' and ${t.statusReport} is null`),
    ],
  );

  const tenantMigrations = schema.table(
    'tenant_migrations',
    {
      /** The tenant id, or `*` for the shared tables of row mode. */
      tenantId: text('tenant_id').notNull(),
      version: text('version').notNull(),
      hash: text('hash').notNull(),
      appliedAt: timestamptz('applied_at').notNull().defaultNow(),
    },
    (t) => [primaryKey({ name: 'tenant_migrations_pkey', columns: [t.tenantId, t.version] })],
  );

  /**
   * Host-port blocks of `docker`-mode tenants (`@mt-paas/provisioning`'s port allocator): the block index is the
   * primary key and the tenant id is unique, so the database itself refuses a block given twice.
   */
  const portBlocks = schema.table(
    'port_blocks',
    {
      block: integer('block').primaryKey(),
      tenantId: text('tenant_id')
        .notNull()
        .unique('port_blocks_tenant_id_unique')
        .references(() => tenants.id, { onDelete: 'cascade' }),
      firstPort: integer('first_port').notNull(),
      lastPort: integer('last_port').notNull(),
      allocatedAt: timestamptz('allocated_at').notNull().defaultNow(),
    },
    (t) => [check('port_blocks_block_check', sql`${t.block} >= 0`)],
  );

  return {
    tenants,
    tenantDomains,
    entitlements,
    usageLedger,
    auditLog,
    outbox,
    webhookReceipts,
    provisioningJobs,
    tenantMigrations,
    portBlocks,
  };
}

/** The catalog tables of one catalog schema. */
export type CatalogTables = ReturnType<typeof createCatalogTables>;
