import { MtPaasError, type TenantId, tenantIdProblem } from '@mt-paas/context';
import { z } from 'zod';

/**
 * A date-time from the marketplace. ISO 8601; a value without a zone (Python's naive
 * `datetime.isoformat()`, as the seed's `deleted_at`) is read as UTC.
 */
export const marketTime = z.string().transform((value, context): Date => {
  const zoned = /(?:Z|[+-]\d{2}:?\d{2})$/i.test(value) ? value : `${value}Z`;
  const date = /^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?/.test(value)
    ? new Date(zoned.replace(' ', 'T'))
    : new Date(Number.NaN);
  if (Number.isNaN(date.getTime())) {
    context.addIssue({
      code: 'custom',
      message: 'expected an ISO 8601 date-time, e.g. "2026-01-03T12:00:00Z"',
    });
    return z.NEVER;
  }
  return date;
});

/** A tenant id checked against the `@mt-paas/context` grammar. */
export const tenantIdSchema = z.string().transform((value, context): TenantId => {
  const problem = tenantIdProblem(value);
  if (problem !== undefined) {
    context.addIssue({ code: 'custom', message: `is not a valid tenant id: ${problem}` });
    return z.NEVER;
  }
  return value as TenantId;
});

const applicationId = z.union([z.string().min(1).max(200), z.number().int()]).transform(String);
const email = z
  .string()
  .min(3)
  .max(320)
  .regex(/^[^\s@]+@[^\s@]+$/, { error: 'expected an e-mail address' });
const text = (max: number) => z.string().max(max);

/** Data of `tenant.provision_requested` v1: the marketplace approved an application; create the tenant. */
export const provisionRequestedSchema = z
  .object({
    tenant_id: tenantIdSchema,
    tenant_name: z.string().min(1).max(200),
    admin_email: email,
    admin_name: text(200).nullish(),
    institution: text(200).nullish(),
    application_id: applicationId,
    application_kind: z.enum(['demo', 'service']),
    plan: z.string().min(1).max(64).nullish(),
    demo_expires_at: marketTime.nullish(),
  })
  .transform((value) => ({
    tenantId: value.tenant_id,
    tenantName: value.tenant_name,
    adminEmail: value.admin_email,
    adminName: value.admin_name ?? undefined,
    institution: value.institution ?? undefined,
    applicationId: value.application_id,
    applicationKind: value.application_kind,
    plan: value.plan ?? undefined,
    demoExpiresAt: value.demo_expires_at ?? undefined,
  }));

/** A quota as `@mt-paas/context`'s `QuotaLimit` (`limit: null` is unlimited). */
const quota = z.object({
  limit: z.number().nonnegative().nullable(),
  period: z.enum(['hourly', 'daily', 'monthly', 'never']).default('monthly'),
  enforcement: z.enum(['block', 'throttle', 'alert', 'overage']).default('block'),
});

/** Data of `subscription.updated` v1: the tenant's plan, features and limits changed. */
export const subscriptionUpdatedSchema = z
  .object({
    tenant_id: tenantIdSchema,
    plan: z.string().min(1).max(64),
    features: z.record(z.string(), z.boolean()).default({}),
    limits: z
      .object({
        rpm: z.number().int().positive().nullish(),
        quotas: z.record(z.string(), quota).default({}),
      })
      .prefault({}),
    expires_at: marketTime.nullish(),
    grace_period_hours: z
      .number()
      .nonnegative()
      .max(24 * 366)
      .nullish(),
  })
  .transform((value) => ({
    tenantId: value.tenant_id,
    plan: value.plan,
    features: value.features,
    limits: { rpm: value.limits.rpm ?? null, quotas: value.limits.quotas },
    expiresAt: value.expires_at ?? null,
    gracePeriodHours: value.grace_period_hours ?? undefined,
  }));

/** Data of `service.cancelled` v1: the application was cancelled; stop serving its tenant. */
export const serviceCancelledSchema = z
  .object({
    application_id: applicationId,
    tenant_id: tenantIdSchema.nullish(),
    reason: text(500).nullish(),
  })
  .transform((value) => ({
    applicationId: value.application_id,
    tenantId: value.tenant_id ?? undefined,
    reason: value.reason ?? undefined,
  }));

/** Data of `user.deleted` v1: a marketplace member left; the tenants they administer go. */
export const userDeletedSchema = z
  .object({
    user_id: z.union([z.number().int(), z.string().min(1).max(200)]).transform(String),
    email,
    university_name: text(200).nullish(),
    deleted_at: marketTime,
  })
  .transform((value) => ({
    userId: value.user_id,
    email: value.email,
    universityName: value.university_name ?? undefined,
    deletedAt: value.deleted_at,
  }));

/** Body of seed 001 §5.2 (`…/block`) and data of `tenant.blocked` v1. */
export const blockSchema = z
  .object({
    reason: z.string().min(1).max(200),
    block_at: marketTime.nullish(),
    grace_period_hours: z
      .number()
      .nonnegative()
      .max(24 * 366)
      .nullish(),
    message: text(2000).nullish(),
  })
  .transform((value) => ({
    reason: value.reason,
    blockAt: value.block_at ?? undefined,
    gracePeriodHours: value.grace_period_hours ?? 0,
    message: value.message ?? undefined,
  }));

/** Body of `…/unblock` and data of `tenant.unblocked` v1. */
export const unblockSchema = z
  .object({ reason: text(200).nullish(), message: text(2000).nullish() })
  .transform((value) => ({ reason: value.reason ?? undefined, message: value.message ?? undefined }));

const withTenant = <T extends z.ZodType<object>>(schema: T) =>
  z
    .object({ tenant_id: tenantIdSchema })
    .and(schema)
    .transform((value) => {
      const { tenant_id, ...rest } = value as { tenant_id: TenantId } & Record<string, unknown>;
      return { tenantId: tenant_id, ...(rest as z.output<T>) };
    });

/** The versioned event types (and their versions) this package understands. */
export const EVENT_SCHEMAS = {
  'tenant.provision_requested': { 1: provisionRequestedSchema },
  'subscription.updated': { 1: subscriptionUpdatedSchema },
  'service.cancelled': { 1: serviceCancelledSchema },
  'user.deleted': { 1: userDeletedSchema },
  'tenant.blocked': { 1: withTenant(blockSchema) },
  'tenant.unblocked': { 1: withTenant(unblockSchema) },
} as const;

/** A marketplace event type. */
export type MarketplaceEventType = keyof typeof EVENT_SCHEMAS;

/** `tenant.provision_requested` data. */
export type ProvisionRequested = z.output<typeof provisionRequestedSchema>;
/** `subscription.updated` data. */
export type SubscriptionUpdated = z.output<typeof subscriptionUpdatedSchema>;
/** `service.cancelled` data. */
export type ServiceCancelled = z.output<typeof serviceCancelledSchema>;
/** `user.deleted` data. */
export type UserDeleted = z.output<typeof userDeletedSchema>;
/** `tenant.blocked` data. */
export type TenantBlocked = z.output<(typeof EVENT_SCHEMAS)['tenant.blocked'][1]>;
/** `tenant.unblocked` data. */
export type TenantUnblocked = z.output<(typeof EVENT_SCHEMAS)['tenant.unblocked'][1]>;

/** A parsed marketplace event, whatever route it came by. */
export type MarketplaceEvent =
  | { type: 'tenant.provision_requested'; data: ProvisionRequested }
  | { type: 'subscription.updated'; data: SubscriptionUpdated }
  | { type: 'service.cancelled'; data: ServiceCancelled }
  | { type: 'user.deleted'; data: UserDeleted }
  | { type: 'tenant.blocked'; data: TenantBlocked }
  | { type: 'tenant.unblocked'; data: TenantUnblocked };

/** The envelope of `POST /api/mt-paas/v1/events` (the Standard Webhooks payload shape plus a version). */
export const envelopeSchema = z.object({
  type: z.string().min(1).max(100),
  version: z.number().int().positive().default(1),
  timestamp: marketTime,
  data: z.unknown(),
});

/**
 * Events of one tenant with the same ordering key apply in `occurred_at` order: an older event
 * that arrives after a newer one is acknowledged and ignored.
 */
export const ORDERING_KEYS: Readonly<Record<MarketplaceEventType, string | undefined>> = {
  'tenant.provision_requested': 'lifecycle',
  'service.cancelled': 'lifecycle',
  'subscription.updated': 'subscription',
  'tenant.blocked': 'access',
  'tenant.unblocked': 'access',
  'user.deleted': undefined,
};

/** Formats zod issues as one line: `tenant_id: is not a valid tenant id: …; plan: …`. */
export function describeIssues(error: z.ZodError): string {
  return error.issues
    .slice(0, 5)
    .map((issue) => `${issue.path.length === 0 ? 'body' : issue.path.join('.')}: ${issue.message}`)
    .join('; ');
}

/**
 * Parses the data of a versioned event.
 * @throws MtPaasError `INVALID_REQUEST` (400) for an unknown type or version or invalid data.
 */
export function parseEvent(type: string, version: number, data: unknown): MarketplaceEvent {
  const versions = (EVENT_SCHEMAS as Record<string, Record<number, z.ZodType> | undefined>)[type];
  if (versions === undefined || !Object.hasOwn(EVENT_SCHEMAS, type)) {
    throw new MtPaasError(
      'INVALID_REQUEST',
      `Unknown event type "${type.slice(0, 100)}"; this service understands ${Object.keys(EVENT_SCHEMAS).join(', ')}.`,
      { details: { reason: 'unknown_event_type' } },
    );
  }
  const schema = versions[version];
  if (schema === undefined || !Object.hasOwn(versions, version)) {
    throw new MtPaasError(
      'INVALID_REQUEST',
      `Event "${type}" version ${version} is not supported; this service understands version ${Object.keys(versions).join(', ')}.`,
      { details: { reason: 'unknown_event_version' } },
    );
  }
  const parsed = schema.safeParse(data);
  if (!parsed.success) {
    throw new MtPaasError('INVALID_REQUEST', `Invalid "${type}" data: ${describeIssues(parsed.error)}.`, {
      details: { reason: 'invalid_event' },
    });
  }
  return { type, data: parsed.data } as MarketplaceEvent;
}

/** The tenant an event is about, when it names one. */
export function eventTenantId(event: MarketplaceEvent): TenantId | undefined {
  return 'tenantId' in event.data ? (event.data.tenantId as TenantId | undefined) : undefined;
}
