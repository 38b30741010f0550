import {
  bigint,
  doublePrecision,
  integer,
  jsonb,
  pgSchema,
  primaryKey,
  text,
  timestamp,
} from 'drizzle-orm/pg-core';

/**
 * The simulator's own tables, in their own Postgres schema (`market_sim`) so that it can share a
 * database with a service's catalog (`mt_paas`) without touching it.
 */
export const sim = pgSchema('market_sim');

const at = (name: string) => timestamp(name, { withTimezone: true, mode: 'date' });

/** Services registered with the market: where to call them and with which secrets. */
export const services = sim.table('services', {
  id: text('id').primaryKey(),
  name: text('name').notNull(),
  baseUrl: text('base_url').notNull(),
  /** `legacy`: the seed 002 routes; `signed`: Standard Webhooks to `/api/mt-paas/v1/events`. */
  protocol: text('protocol').notNull(),
  /** `whsec_…` secrets, the first signs (all sign during a rotation). */
  webhookSecrets: jsonb('webhook_secrets').$type<string[]>().notNull(),
  legacySecret: text('legacy_secret'),
  apiKey: text('api_key').notNull(),
  ssoCallbackPath: text('sso_callback_path').notNull(),
  createdAt: at('created_at').notNull().defaultNow(),
});

/** Service health from heartbeats. */
export const serviceHealth = sim.table('service_health', {
  serviceId: text('service_id').primaryKey(),
  lastSeenAt: at('last_seen_at').notNull(),
  reportedStatus: text('reported_status').notNull(),
  activeTenants: jsonb('active_tenants').$type<string[]>().notNull(),
  metrics: jsonb('metrics').$type<Record<string, unknown>>().notNull(),
  beats: integer('beats').notNull().default(0),
});

/** Marketplace members. */
export const users = sim.table('users', {
  id: integer('id').primaryKey().generatedAlwaysAsIdentity(),
  email: text('email').notNull().unique(),
  name: text('name').notNull(),
  institutionId: text('institution_id'),
  status: text('status').notNull().default('active'),
  deletedAt: at('deleted_at'),
  createdAt: at('created_at').notNull().defaultNow(),
});

/** Universities and other institutions; the tenant id of their applications. */
export const institutions = sim.table('institutions', {
  id: text('id').primaryKey(),
  name: text('name').notNull(),
  createdAt: at('created_at').notNull().defaultNow(),
});

/** Service applications (seed 002 §5.2): requested → approved → completed | rejected. */
export const applications = sim.table('applications', {
  id: integer('id').primaryKey().generatedAlwaysAsIdentity(),
  serviceId: text('service_id').notNull(),
  userId: integer('user_id').notNull(),
  institutionId: text('institution_id').notNull(),
  tenantId: text('tenant_id').notNull(),
  kind: text('kind').notNull(),
  plan: text('plan').notNull(),
  status: text('status').notNull(),
  demoExpiresAt: at('demo_expires_at'),
  rejectReason: text('reject_reason'),
  accessUrl: text('access_url'),
  createdAt: at('created_at').notNull().defaultNow(),
  updatedAt: at('updated_at').notNull().defaultNow(),
});

/** Tenants the market created on services, with their subscription. */
export const tenants = sim.table(
  'tenants',
  {
    serviceId: text('service_id').notNull(),
    tenantId: text('tenant_id').notNull(),
    applicationId: integer('application_id').notNull(),
    name: text('name').notNull(),
    adminEmail: text('admin_email').notNull(),
    /** `provisioning`, `active`, `blocked`, `cancelled`, `deleted`, `expired`. */
    status: text('status').notNull(),
    /** What the service last reported (status syncs). */
    reportedStatus: text('reported_status'),
    plan: text('plan').notNull(),
    expiresAt: at('expires_at'),
    accessUrl: text('access_url'),
    createdAt: at('created_at').notNull().defaultNow(),
    updatedAt: at('updated_at').notNull().defaultNow(),
  },
  (table) => [primaryKey({ columns: [table.serviceId, table.tenantId] })],
);

/**
 * The market's own outbox and delivery log: one row per webhook, signed when sent, retried on a
 * schedule until delivered or out of attempts; replayable by hand.
 */
export const deliveries = sim.table('deliveries', {
  id: text('id').primaryKey(),
  /** Order of writing (ties of `occurred_at` within one transaction keep it). */
  seq: bigint('seq', { mode: 'number' }).notNull().generatedAlwaysAsIdentity(),
  serviceId: text('service_id').notNull(),
  tenantId: text('tenant_id'),
  eventType: text('event_type').notNull(),
  /** When the event happened (the envelope's `timestamp`), kept across retries. */
  occurredAt: at('occurred_at').notNull(),
  method: text('method').notNull(),
  url: text('url').notNull(),
  /** `signature` (Standard Webhooks), `api-key` (`X-API-Key`) or `legacy-secret` (`X-Webhook-Secret`). */
  auth: text('auth').notNull(),
  /** The exact body bytes that are signed and sent. */
  body: text('body').notNull(),
  /** `pending`, `delivered`, `failed` (out of attempts or refused), `dropped` (fault injection). */
  status: text('status').notNull(),
  attempts: integer('attempts').notNull().default(0),
  nextAttemptAt: at('next_attempt_at').notNull(),
  lastStatus: integer('last_status'),
  lastError: text('last_error'),
  response: jsonb('response').$type<unknown>(),
  createdAt: at('created_at').notNull().defaultNow(),
  deliveredAt: at('delivered_at'),
});

/** Every attempt of a delivery: the request as sent and the answer. */
export const deliveryAttempts = sim.table(
  'delivery_attempts',
  {
    deliveryId: text('delivery_id').notNull(),
    attempt: integer('attempt').notNull(),
    at: at('at').notNull(),
    requestHeaders: jsonb('request_headers').$type<Record<string, string>>().notNull(),
    responseStatus: integer('response_status'),
    responseBody: text('response_body'),
    error: text('error'),
    durationMs: integer('duration_ms').notNull(),
    manual: integer('manual').notNull().default(0),
  },
  (table) => [primaryKey({ columns: [table.deliveryId, table.attempt] })],
);

/** Usage records reported by services, deduplicated by their idempotency key. */
export const usageRecords = sim.table(
  'usage_records',
  {
    serviceId: text('service_id').notNull(),
    idempotencyKey: text('idempotency_key').notNull(),
    tenantId: text('tenant_id').notNull(),
    meter: text('meter').notNull(),
    quantity: doublePrecision('quantity').notNull(),
    at: at('at').notNull(),
    /** The period the record counts towards (`period_start`, else the month of `at`), `YYYY-MM-DD…`. */
    period: text('period').notNull(),
    receivedAt: at('received_at').notNull().defaultNow(),
  },
  (table) => [primaryKey({ columns: [table.serviceId, table.idempotencyKey] })],
);

/** `Idempotency-Key`s of report calls already processed (a repeat gets 200 and changes nothing). */
export const reportKeys = sim.table(
  'report_keys',
  {
    /** Keys are the service's own: two services may use the same one. */
    serviceId: text('service_id').notNull(),
    key: text('key').notNull(),
    path: text('path').notNull(),
    receivedAt: at('received_at').notNull().defaultNow(),
  },
  (table) => [primaryKey({ columns: [table.serviceId, table.key] })],
);

/** Tenant status syncs from services. */
export const statusSyncs = sim.table('status_syncs', {
  id: bigint('id', { mode: 'number' }).primaryKey().generatedAlwaysAsIdentity(),
  serviceId: text('service_id').notNull(),
  tenantId: text('tenant_id').notNull(),
  status: text('status').notNull(),
  reason: text('reason'),
  at: at('at').notNull(),
  receivedAt: at('received_at').notNull().defaultNow(),
});

/** Audit alerts from services (seed 001 §5.3). */
export const auditAlerts = sim.table('audit_alerts', {
  id: bigint('id', { mode: 'number' }).primaryKey().generatedAlwaysAsIdentity(),
  serviceId: text('service_id').notNull(),
  alertType: text('alert_type').notNull(),
  severity: text('severity').notNull(),
  details: jsonb('details').$type<Record<string, unknown>>().notNull(),
  at: at('at').notNull(),
  receivedAt: at('received_at').notNull().defaultNow(),
});

/** SSO signing keys: the newest active one signs; retired ones stay in the JWKS until `expires_at`. */
export const ssoKeys = sim.table('sso_keys', {
  kid: text('kid').primaryKey(),
  alg: text('alg').notNull(),
  privateJwk: jsonb('private_jwk').$type<Record<string, unknown>>().notNull(),
  publicJwk: jsonb('public_jwk').$type<Record<string, unknown>>().notNull(),
  createdAt: at('created_at').notNull().defaultNow(),
  retiredAt: at('retired_at'),
  /** Leaves the JWKS at this time (set when retired). */
  expiresAt: at('expires_at'),
});
