import { randomBytes } from 'node:crypto';
import { DEFAULT_PLANS } from '@mt-paas/config';
import { MtPaasError, tenantIdProblem } from '@mt-paas/context';
import { generateWebhookSecret } from '@mt-paas/marketplace';
import { and, asc, desc, eq, gt, isNotNull, lte, ne, notExists, sql } from 'drizzle-orm';
import type { FaultSwitch } from './faults.js';
import { createOutbox, type Db, type DeliveryRow, type Outbox, type ServiceRow } from './outbox.js';
import {
  applications,
  auditAlerts,
  deliveries,
  deliveryAttempts,
  institutions,
  reportKeys,
  serviceHealth,
  services,
  statusSyncs,
  tenants,
  usageRecords,
  users,
} from './schema.js';
import { createSsoIssuer, type SsoAlgorithm, type SsoIssuer } from './sso-issuer.js';

/** Options of {@link createMarket}. */
export interface MarketOptions {
  db: Db;
  faults: FaultSwitch;
  /** The simulator's public URL: the SSO issuer (a function when it is known only after listening). */
  publicUrl: string | (() => string);
  /** Seconds before each retry of a failed delivery. @default [1, 5, 30, 120, 600] */
  retrySchedule?: readonly number[];
  /** Timeout of one delivery attempt. @default 10000 */
  deliveryTimeoutMs?: number;
  /** Expected heartbeat interval. @default 30 */
  heartbeatIntervalSeconds?: number;
  /** A service is `down` after this many missed heartbeats. @default 3 */
  missedBeats?: number;
  /** Algorithm of SSO keys. @default 'RS256' */
  ssoAlgorithm?: SsoAlgorithm;
  /** How long a rotated-out SSO key stays in the JWKS. @default 3600 */
  ssoRetiredKeySeconds?: number;
  /** Lifetime of a login token. @default 120 */
  ssoTokenSeconds?: number;
  fetch?: typeof fetch;
}

/** A plan of seed 003 as the simulator offers it (`@mt-paas/config`'s built-in plans). */
export interface Plan {
  id: string;
  name: string;
  rpm: number | null;
  sla: string | null;
  features: Record<string, boolean>;
  quotas: Record<string, { limit: number | null; period: string; enforcement: string }>;
}

/** The four tiers of seed 003, from `@mt-paas/config`'s `DEFAULT_PLANS`. */
export const PLANS: readonly Plan[] = Object.entries(DEFAULT_PLANS).map(([id, plan]) => ({
  id,
  name: plan.name,
  rpm: plan.rpm,
  sla: 'sla' in plan ? plan.sla : null,
  features: { ...plan.features },
  quotas: Object.fromEntries(
    Object.entries(plan.quotas).map(([meter, quota]) => [
      meter,
      {
        limit: quota.limit === 'unlimited' ? null : quota.limit,
        period: quota.period,
        enforcement: quota.enforcement,
      },
    ]),
  ),
}));

function planOf(id: string): Plan {
  const plan = PLANS.find((candidate) => candidate.id === id);
  if (plan === undefined) {
    throw new MtPaasError(
      'INVALID_REQUEST',
      `Unknown plan "${id}"; the plans are ${PLANS.map((p) => p.id).join(', ')}.`,
    );
  }
  return plan;
}

function notFound(what: string, id: string | number, list: string): MtPaasError {
  return new MtPaasError('ROUTE_NOT_FOUND', `No ${what} "${id}"; list them with GET ${list}.`, {
    details: { [what]: id },
  });
}

/** Input of {@link Market.registerService}. */
export interface ServiceInput {
  id: string;
  name?: string;
  baseUrl: string;
  protocol: 'legacy' | 'signed';
  /** Generated when left out (`whsec_…`); `[]` for a legacy service that does not sign. */
  webhookSecrets?: string[];
  legacySecret?: string | null;
  /** Generated when left out. */
  apiKey?: string;
  ssoCallbackPath?: string;
}

/** Input of {@link Market.createApplication}. */
export interface ApplicationInput {
  serviceId: string;
  userId: number;
  kind: 'demo' | 'service';
  plan?: string;
  /** @default the user's institution id */
  tenantId?: string;
  /** For a demo: when it ends. @default 14 days after approval */
  demoExpiresAt?: Date;
}

/** Usage totals per tenant, meter and period. */
export interface UsageTotal {
  serviceId: string;
  tenantId: string;
  meter: string;
  period: string;
  quantity: number;
  records: number;
}

/** The simulated marketplace. */
export type Market = ReturnType<typeof createMarket>;

export function createMarket(options: MarketOptions) {
  const { db, faults } = options;
  const interval = options.heartbeatIntervalSeconds ?? 30;
  const missed = options.missedBeats ?? 3;

  const outbox: Outbox = createOutbox({
    db,
    faults,
    retrySchedule: options.retrySchedule ?? [1, 5, 30, 120, 600],
    timeoutMs: options.deliveryTimeoutMs ?? 10_000,
    ...(options.fetch === undefined ? {} : { fetch: options.fetch }),
    onSettled: settled,
  });
  const sso: SsoIssuer = createSsoIssuer({
    db,
    issuer: options.publicUrl,
    ...(options.ssoAlgorithm === undefined ? {} : { algorithm: options.ssoAlgorithm }),
    ...(options.ssoRetiredKeySeconds === undefined
      ? {}
      : { retiredKeySeconds: options.ssoRetiredKeySeconds }),
    ...(options.ssoTokenSeconds === undefined ? {} : { tokenSeconds: options.ssoTokenSeconds }),
  });

  /** What a settled delivery changes in the market's view. */
  async function settled(delivery: DeliveryRow, outcome: { ok: boolean; response: unknown }, tx: Db) {
    if (delivery.eventType !== 'tenant.provision_requested' || delivery.tenantId === null) return;
    const where = and(eq(tenants.serviceId, delivery.serviceId), eq(tenants.tenantId, delivery.tenantId));
    const [tenant] = await tx.select().from(tenants).where(where);
    if (tenant === undefined) return;
    if (!outcome.ok) {
      if (tenant.status === 'provisioning') {
        await tx.update(tenants).set({ status: 'provisioning_failed', updatedAt: new Date() }).where(where);
      }
      return;
    }
    const response = (outcome.response ?? {}) as { access_url?: unknown; data?: unknown };
    const accessUrl = typeof response.access_url === 'string' ? response.access_url : null;
    if (tenant.status === 'provisioning' || tenant.status === 'provisioning_failed') {
      await tx.update(tenants).set({ status: 'active', accessUrl, updatedAt: new Date() }).where(where);
    }
    await tx
      .update(applications)
      .set({ status: 'completed', accessUrl, updatedAt: new Date() })
      .where(and(eq(applications.id, tenant.applicationId), eq(applications.status, 'approved')));
  }

  async function service(id: string): Promise<ServiceRow> {
    const [row] = await db.select().from(services).where(eq(services.id, id));
    if (row === undefined) throw notFound('service', id, '/sim/v1/services');
    return row;
  }

  async function tenant(serviceId: string, tenantId: string) {
    const [row] = await db
      .select()
      .from(tenants)
      .where(and(eq(tenants.serviceId, serviceId), eq(tenants.tenantId, tenantId)));
    if (row === undefined) throw notFound('tenant', `${serviceId}/${tenantId}`, '/sim/v1/tenants');
    return row;
  }

  function health(row: typeof serviceHealth.$inferSelect | undefined, now = Date.now()) {
    if (row === undefined)
      return { status: 'unknown', last_seen_at: null, metrics: {}, active_tenants: [], beats: 0 };
    const down = now - row.lastSeenAt.getTime() > interval * missed * 1000;
    return {
      status: down ? 'down' : row.reportedStatus,
      reported_status: row.reportedStatus,
      last_seen_at: row.lastSeenAt.toISOString(),
      metrics: row.metrics,
      active_tenants: row.activeTenants,
      beats: row.beats,
    };
  }

  function subscriptionData(row: typeof tenants.$inferSelect) {
    const plan = planOf(row.plan);
    return {
      tenant_id: row.tenantId,
      plan: plan.id,
      features: plan.features,
      limits: { rpm: plan.rpm, quotas: plan.quotas },
      expires_at: row.expiresAt?.toISOString() ?? null,
    };
  }

  async function setTenant(
    serviceId: string,
    tenantId: string,
    patch: Partial<typeof tenants.$inferInsert>,
    tx: Db,
  ) {
    await tx
      .update(tenants)
      .set({ ...patch, updatedAt: new Date() })
      .where(and(eq(tenants.serviceId, serviceId), eq(tenants.tenantId, tenantId)));
  }

  async function block(
    serviceId: string,
    tenantId: string,
    input: { reason: string; message?: string; gracePeriodHours?: number; status?: string },
  ) {
    const svc = await service(serviceId);
    const current = await tenant(serviceId, tenantId);
    return db.transaction(async (tx) => {
      const t = tx as unknown as Db;
      await setTenant(serviceId, tenantId, { status: input.status ?? 'blocked' }, t);
      const delivery = await outbox.enqueue(
        t,
        svc,
        'tenant.blocked',
        {
          tenant_id: current.tenantId,
          reason: input.reason,
          block_at: new Date().toISOString(),
          grace_period_hours: input.gracePeriodHours ?? 0,
          ...(input.message === undefined ? {} : { message: input.message }),
        },
        { tenantId },
      );
      return { tenant_id: tenantId, status: input.status ?? 'blocked', delivery_id: delivery.id };
    });
  }

  return {
    outbox,
    sso,
    plans: () => PLANS,

    // ─── services ───────────────────────────────────────────────────────────
    async registerService(input: ServiceInput) {
      const values = {
        id: input.id,
        name: input.name ?? input.id,
        baseUrl: input.baseUrl.replace(/\/+$/, ''),
        protocol: input.protocol,
        webhookSecrets: input.webhookSecrets ?? [generateWebhookSecret()],
        legacySecret: input.legacySecret ?? null,
        apiKey: input.apiKey ?? `sk_sim_${randomBytes(18).toString('base64url')}`,
        ssoCallbackPath: input.ssoCallbackPath ?? '/auth/marketplace/callback',
      };
      if (values.protocol === 'signed' && values.webhookSecrets.length === 0) {
        throw new MtPaasError(
          'INVALID_REQUEST',
          'A "signed" service needs at least one webhook signing secret (whsec_…); leave webhook_secrets out to have one generated.',
        );
      }
      const [row] = await db
        .insert(services)
        .values(values)
        .onConflictDoUpdate({ target: services.id, set: { ...values, id: undefined } as never })
        .returning();
      return row as ServiceRow;
    },
    service,
    async listServices() {
      const rows = await db.select().from(services).orderBy(asc(services.id));
      const beats = await db.select().from(serviceHealth);
      return rows.map((row) => ({ ...row, health: health(beats.find((beat) => beat.serviceId === row.id)) }));
    },
    async serviceByApiKey(apiKey: string) {
      const [row] = await db.select().from(services).where(eq(services.apiKey, apiKey));
      return row;
    },

    // ─── institutions and users ─────────────────────────────────────────────
    async createInstitution(input: { id: string; name: string }) {
      const problem = tenantIdProblem(input.id);
      if (problem !== undefined) {
        throw new MtPaasError(
          'INVALID_TENANT_ID',
          `Institution id "${input.id}" becomes the tenant id and ${problem}.`,
        );
      }
      const [row] = await db
        .insert(institutions)
        .values(input)
        .onConflictDoUpdate({ target: institutions.id, set: { name: input.name } })
        .returning();
      return row;
    },
    listInstitutions: () => db.select().from(institutions).orderBy(asc(institutions.id)),
    async createUser(input: { email: string; name: string; institutionId?: string }) {
      if (input.institutionId !== undefined) {
        const [inst] = await db.select().from(institutions).where(eq(institutions.id, input.institutionId));
        if (inst === undefined) throw notFound('institution', input.institutionId, '/sim/v1/institutions');
      }
      const existing = await db.select().from(users).where(eq(users.email, input.email));
      if (existing.length > 0) {
        throw new MtPaasError(
          'CONFLICT',
          `A user with e-mail "${input.email}" exists (id ${existing[0]?.id}).`,
        );
      }
      const [row] = await db
        .insert(users)
        .values({ email: input.email, name: input.name, institutionId: input.institutionId ?? null })
        .returning();
      return row;
    },
    listUsers: () => db.select().from(users).orderBy(asc(users.id)),
    /** Deletes a member: `user.deleted` to every service they applied to. */
    async deleteUser(id: number) {
      const [user] = await db.select().from(users).where(eq(users.id, id));
      if (user === undefined) throw notFound('user', id, '/sim/v1/users');
      if (user.status === 'deleted') throw new MtPaasError('CONFLICT', `User ${id} is already deleted.`);
      const [inst] =
        user.institutionId === null
          ? []
          : await db.select().from(institutions).where(eq(institutions.id, user.institutionId));
      const applied = await db
        .selectDistinct({ serviceId: applications.serviceId })
        .from(applications)
        .where(and(eq(applications.userId, id), ne(applications.status, 'rejected')));
      const deletedAt = new Date();
      // Read before the transaction: on PGlite (one connection) a read outside it would wait for it.
      const targets = await Promise.all(applied.map(({ serviceId }) => service(serviceId)));
      return db.transaction(async (tx) => {
        const t = tx as unknown as Db;
        await t.update(users).set({ status: 'deleted', deletedAt }).where(eq(users.id, id));
        const sent: string[] = [];
        for (const svc of targets) {
          const serviceId = svc.id;
          const delivery = await outbox.enqueue(t, svc, 'user.deleted', {
            user_id: id,
            email: user.email,
            ...(inst === undefined ? {} : { university_name: inst.name }),
            deleted_at: deletedAt.toISOString(),
          });
          sent.push(delivery.id);
          await t
            .update(tenants)
            .set({ status: 'deleted', updatedAt: deletedAt })
            .where(and(eq(tenants.serviceId, serviceId), eq(tenants.adminEmail, user.email)));
        }
        return { user_id: id, status: 'deleted', deliveries: sent };
      });
    },

    // ─── applications ───────────────────────────────────────────────────────
    async createApplication(input: ApplicationInput) {
      await service(input.serviceId);
      const [user] = await db.select().from(users).where(eq(users.id, input.userId));
      if (user === undefined) throw notFound('user', input.userId, '/sim/v1/users');
      if (user.status === 'deleted') throw new MtPaasError('CONFLICT', `User ${input.userId} is deleted.`);
      const tenantId = input.tenantId ?? user.institutionId;
      if (tenantId === null || tenantId === undefined) {
        throw new MtPaasError(
          'INVALID_REQUEST',
          `User ${user.id} has no institution: give "tenant_id" for the application.`,
        );
      }
      const problem = tenantIdProblem(tenantId);
      if (problem !== undefined)
        throw new MtPaasError('INVALID_TENANT_ID', `Tenant id "${tenantId}" ${problem}.`);
      const plan = planOf(input.plan ?? (input.kind === 'demo' ? 'free' : 'starter')).id;
      const [row] = await db
        .insert(applications)
        .values({
          serviceId: input.serviceId,
          userId: user.id,
          institutionId: user.institutionId ?? tenantId,
          tenantId,
          kind: input.kind,
          plan,
          status: 'requested',
          demoExpiresAt: input.demoExpiresAt ?? null,
        })
        .returning();
      return row;
    },
    listApplications: () => db.select().from(applications).orderBy(desc(applications.id)),
    async application(id: number) {
      const [row] = await db.select().from(applications).where(eq(applications.id, id));
      if (row === undefined) throw notFound('application', id, '/sim/v1/applications');
      return row;
    },
    /** requested → approved; the tenant is created on the service (`tenant.provision_requested`). */
    async approve(id: number) {
      const app = await this.application(id);
      if (app.status !== 'requested') {
        throw new MtPaasError(
          'CONFLICT',
          `Application ${id} is ${app.status}; only a requested application can be approved.`,
        );
      }
      const svc = await service(app.serviceId);
      const [user] = await db.select().from(users).where(eq(users.id, app.userId));
      const [inst] = await db.select().from(institutions).where(eq(institutions.id, app.institutionId));
      const [existing] = await db
        .select()
        .from(tenants)
        .where(and(eq(tenants.serviceId, app.serviceId), eq(tenants.tenantId, app.tenantId)));
      if (existing !== undefined && existing.status !== 'deleted' && existing.status !== 'cancelled') {
        throw new MtPaasError(
          'CONFLICT',
          `Tenant "${app.tenantId}" already exists on "${app.serviceId}" (${existing.status}).`,
        );
      }
      const demoExpiresAt =
        app.kind === 'demo' ? (app.demoExpiresAt ?? new Date(Date.now() + 14 * 86_400_000)) : null;
      return db.transaction(async (tx) => {
        const t = tx as unknown as Db;
        await t
          .update(applications)
          .set({ status: 'approved', demoExpiresAt, updatedAt: new Date() })
          .where(eq(applications.id, id));
        const values = {
          serviceId: app.serviceId,
          tenantId: app.tenantId,
          applicationId: id,
          name: inst?.name ?? app.tenantId,
          adminEmail: user?.email ?? '',
          status: 'provisioning',
          plan: app.plan,
          expiresAt: demoExpiresAt,
          accessUrl: null,
        };
        await t
          .insert(tenants)
          .values(values)
          .onConflictDoUpdate({
            target: [tenants.serviceId, tenants.tenantId],
            set: { ...values, updatedAt: new Date() },
          });
        const delivery = await outbox.enqueue(
          t,
          svc,
          'tenant.provision_requested',
          {
            tenant_id: app.tenantId,
            tenant_name: inst?.name ?? app.tenantId,
            admin_email: user?.email,
            ...(user === undefined ? {} : { admin_name: user.name }),
            ...(inst === undefined ? {} : { institution: inst.name }),
            application_id: id,
            application_kind: app.kind,
            plan: app.plan,
            ...(demoExpiresAt === null ? {} : { demo_expires_at: demoExpiresAt.toISOString() }),
          },
          { tenantId: app.tenantId },
        );
        // The seed's create body has no plan: a legacy service that can verify signatures hears it next.
        const followUp =
          svc.protocol === 'legacy' && svc.webhookSecrets.length > 0
            ? await outbox.enqueue(
                t,
                svc,
                'subscription.updated',
                subscriptionData({ ...values, expiresAt: demoExpiresAt } as typeof tenants.$inferSelect),
                {
                  tenantId: app.tenantId,
                },
              )
            : undefined;
        return {
          application_id: id,
          status: 'approved',
          tenant_id: app.tenantId,
          delivery_id: delivery.id,
          ...(followUp === undefined ? {} : { subscription_delivery_id: followUp.id }),
        };
      });
    },
    async reject(id: number, reason?: string) {
      const app = await this.application(id);
      if (app.status !== 'requested') {
        throw new MtPaasError(
          'CONFLICT',
          `Application ${id} is ${app.status}; only a requested application can be rejected.`,
        );
      }
      await db
        .update(applications)
        .set({ status: 'rejected', rejectReason: reason ?? null, updatedAt: new Date() })
        .where(eq(applications.id, id));
      return { application_id: id, status: 'rejected' };
    },
    /** The user cancelled the service: `service.cancelled`. */
    async cancel(id: number, reason?: string) {
      const app = await this.application(id);
      if (app.status !== 'approved' && app.status !== 'completed') {
        throw new MtPaasError(
          'CONFLICT',
          `Application ${id} is ${app.status}; only an approved or completed application can be cancelled.`,
        );
      }
      const svc = await service(app.serviceId);
      return db.transaction(async (tx) => {
        const t = tx as unknown as Db;
        await t
          .update(applications)
          .set({ status: 'cancelled', updatedAt: new Date() })
          .where(eq(applications.id, id));
        await setTenant(app.serviceId, app.tenantId, { status: 'cancelled' }, t);
        const delivery = await outbox.enqueue(
          t,
          svc,
          'service.cancelled',
          { application_id: id, tenant_id: app.tenantId, ...(reason === undefined ? {} : { reason }) },
          { tenantId: app.tenantId },
        );
        return { application_id: id, status: 'cancelled', delivery_id: delivery.id };
      });
    },

    // ─── tenants and subscriptions ──────────────────────────────────────────
    listTenants: () => db.select().from(tenants).orderBy(asc(tenants.serviceId), asc(tenants.tenantId)),
    tenant,
    block,
    async unblock(serviceId: string, tenantId: string, input: { reason?: string; message?: string }) {
      const svc = await service(serviceId);
      await tenant(serviceId, tenantId);
      return db.transaction(async (tx) => {
        const t = tx as unknown as Db;
        await setTenant(serviceId, tenantId, { status: 'active' }, t);
        const delivery = await outbox.enqueue(
          t,
          svc,
          'tenant.unblocked',
          {
            tenant_id: tenantId,
            ...(input.reason === undefined ? {} : { reason: input.reason }),
            ...(input.message === undefined ? {} : { message: input.message }),
          },
          { tenantId },
        );
        return { tenant_id: tenantId, status: 'active', delivery_id: delivery.id };
      });
    },
    /** Upgrade / downgrade / renewal: `subscription.updated`. */
    async changePlan(serviceId: string, tenantId: string, input: { plan: string; expiresAt?: Date | null }) {
      const svc = await service(serviceId);
      const current = await tenant(serviceId, tenantId);
      const plan = planOf(input.plan);
      return db.transaction(async (tx) => {
        const t = tx as unknown as Db;
        const expiresAt = input.expiresAt === undefined ? current.expiresAt : input.expiresAt;
        await setTenant(serviceId, tenantId, { plan: plan.id, expiresAt }, t);
        const data = subscriptionData({ ...current, plan: plan.id, expiresAt });
        const delivery = await outbox.enqueue(t, svc, 'subscription.updated', data, { tenantId });
        return { ...data, delivery_id: delivery.id };
      });
    },
    async subscription(serviceId: string, tenantId: string) {
      const [row] = await db
        .select()
        .from(tenants)
        .where(and(eq(tenants.serviceId, serviceId), eq(tenants.tenantId, tenantId)));
      return row === undefined ? undefined : subscriptionData(row);
    },
    /** Demos and subscriptions past their end are blocked (`demo_expired` / `subscription_expired`). */
    async expireDue(now = new Date()) {
      const due = await db
        .select()
        .from(tenants)
        .where(and(eq(tenants.status, 'active'), isNotNull(tenants.expiresAt), lte(tenants.expiresAt, now)));
      const expired: Array<{ service_id: string; tenant_id: string; reason: string }> = [];
      for (const row of due) {
        const [app] = await db.select().from(applications).where(eq(applications.id, row.applicationId));
        const reason = app?.kind === 'demo' ? 'demo_expired' : 'subscription_expired';
        await block(row.serviceId, row.tenantId, {
          reason,
          status: 'expired',
          message:
            reason === 'demo_expired'
              ? 'The demo period has ended.'
              : 'The subscription has expired; renew it.',
        });
        expired.push({ service_id: row.serviceId, tenant_id: row.tenantId, reason });
      }
      return expired;
    },

    // ─── deliveries ─────────────────────────────────────────────────────────
    async listDeliveries(filter: { serviceId?: string; status?: string; limit?: number } = {}) {
      const conditions = [
        ...(filter.serviceId === undefined ? [] : [eq(deliveries.serviceId, filter.serviceId)]),
        ...(filter.status === undefined ? [] : [eq(deliveries.status, filter.status)]),
      ];
      return db
        .select()
        .from(deliveries)
        .where(conditions.length === 0 ? undefined : and(...conditions))
        .orderBy(desc(deliveries.seq))
        .limit(filter.limit ?? 200);
    },
    async delivery(id: string) {
      const [row] = await db.select().from(deliveries).where(eq(deliveries.id, id));
      if (row === undefined) throw notFound('delivery', id, '/sim/v1/deliveries');
      const attempts = await db
        .select()
        .from(deliveryAttempts)
        .where(eq(deliveryAttempts.deliveryId, id))
        .orderBy(asc(deliveryAttempts.attempt));
      return { ...row, attempts };
    },

    // ─── reports from services ──────────────────────────────────────────────
    /** Runs `fn` unless `Idempotency-Key` was seen; true when it ran. */
    async once(
      serviceId: string,
      key: string | undefined,
      path: string,
      fn: (tx: Db) => Promise<void>,
    ): Promise<boolean> {
      return db.transaction(async (tx) => {
        const t = tx as unknown as Db;
        if (key !== undefined) {
          const inserted = await t
            .insert(reportKeys)
            .values({ serviceId, key, path })
            .onConflictDoNothing()
            .returning({ key: reportKeys.key });
          if (inserted.length === 0) return false;
        }
        await fn(t);
        return true;
      });
    },
    async heartbeat(
      serviceId: string,
      body: { status: string; active_tenants: string[]; metrics: Record<string, unknown> },
    ) {
      const values = {
        serviceId,
        lastSeenAt: new Date(),
        reportedStatus: body.status,
        activeTenants: body.active_tenants,
        metrics: body.metrics,
        beats: 1,
      };
      await db
        .insert(serviceHealth)
        .values(values)
        .onConflictDoUpdate({
          target: serviceHealth.serviceId,
          set: { ...values, beats: sql`${serviceHealth.beats} + 1` },
        });
    },
    async health(serviceId: string) {
      await service(serviceId);
      const [row] = await db.select().from(serviceHealth).where(eq(serviceHealth.serviceId, serviceId));
      return health(row);
    },
    async recordUsage(
      tx: Db,
      serviceId: string,
      records: ReadonlyArray<{
        tenant_id: string;
        meter: string;
        quantity: number;
        at: string;
        period_start?: string | null | undefined;
        idempotency_key: string;
      }>,
    ) {
      let accepted = 0;
      for (const record of records) {
        const at = new Date(record.at);
        const period =
          record.period_start !== undefined && record.period_start !== null
            ? new Date(record.period_start).toISOString()
            : new Date(Date.UTC(at.getUTCFullYear(), at.getUTCMonth(), 1)).toISOString();
        const inserted = await tx
          .insert(usageRecords)
          .values({
            serviceId,
            idempotencyKey: record.idempotency_key,
            tenantId: record.tenant_id,
            meter: record.meter,
            quantity: record.quantity,
            at,
            period,
          })
          .onConflictDoNothing()
          .returning({ key: usageRecords.idempotencyKey });
        accepted += inserted.length;
      }
      return { accepted, duplicates: records.length - accepted };
    },
    async usageTotals(filter: { serviceId?: string; tenantId?: string } = {}): Promise<UsageTotal[]> {
      const conditions = [
        ...(filter.serviceId === undefined ? [] : [eq(usageRecords.serviceId, filter.serviceId)]),
        ...(filter.tenantId === undefined ? [] : [eq(usageRecords.tenantId, filter.tenantId)]),
      ];
      const rows = await db
        .select({
          serviceId: usageRecords.serviceId,
          tenantId: usageRecords.tenantId,
          meter: usageRecords.meter,
          period: usageRecords.period,
          quantity: sql<number>`sum(${usageRecords.quantity})`.mapWith(Number),
          records: sql<number>`count(*)`.mapWith(Number),
        })
        .from(usageRecords)
        .where(conditions.length === 0 ? undefined : and(...conditions))
        .groupBy(usageRecords.serviceId, usageRecords.tenantId, usageRecords.meter, usageRecords.period)
        .orderBy(
          asc(usageRecords.serviceId),
          asc(usageRecords.tenantId),
          asc(usageRecords.meter),
          asc(usageRecords.period),
        );
      return rows;
    },
    async recordStatus(
      tx: Db,
      serviceId: string,
      body: { tenant_id: string; status: string; reason?: string | null; timestamp: string },
    ) {
      await tx.insert(statusSyncs).values({
        serviceId,
        tenantId: body.tenant_id,
        status: body.status,
        reason: body.reason ?? null,
        at: new Date(body.timestamp),
      });
      // Reports can arrive out of order (an outbox retrying after an outage): the tenant shows the status
      // of the newest report by its `timestamp`, not the last one to arrive.
      const at = new Date(body.timestamp);
      await tx
        .update(tenants)
        .set({ reportedStatus: body.status, updatedAt: new Date() })
        .where(
          and(
            eq(tenants.serviceId, serviceId),
            eq(tenants.tenantId, body.tenant_id),
            notExists(
              tx
                .select({ one: sql`1` })
                .from(statusSyncs)
                .where(
                  and(
                    eq(statusSyncs.serviceId, serviceId),
                    eq(statusSyncs.tenantId, body.tenant_id),
                    gt(statusSyncs.at, at),
                  ),
                ),
            ),
          ),
        );
    },
    listStatusSyncs: () => db.select().from(statusSyncs).orderBy(desc(statusSyncs.id)).limit(200),
    async recordAuditAlert(
      tx: Db,
      body: {
        service_id: string;
        alert_type: string;
        severity: string;
        details: Record<string, unknown>;
        timestamp: string;
      },
    ) {
      await tx.insert(auditAlerts).values({
        serviceId: body.service_id,
        alertType: body.alert_type,
        severity: body.severity,
        details: body.details,
        at: new Date(body.timestamp),
      });
    },
    listAuditAlerts: () => db.select().from(auditAlerts).orderBy(desc(auditAlerts.id)).limit(200),

    // ─── SSO ────────────────────────────────────────────────────────────────
    /** A login token for `userId` on the service's tenant, and the callback URL that carries it. */
    async openAs(input: { serviceId: string; userId: number; tenantId?: string; roles?: string[] }) {
      const svc = await service(input.serviceId);
      const [user] = await db.select().from(users).where(eq(users.id, input.userId));
      if (user === undefined) throw notFound('user', input.userId, '/sim/v1/users');
      if (user.status === 'deleted') throw new MtPaasError('FORBIDDEN', `User ${input.userId} is deleted.`);
      const tenantId = input.tenantId ?? user.institutionId;
      if (tenantId === null || tenantId === undefined) {
        throw new MtPaasError(
          'INVALID_REQUEST',
          `User ${user.id} has no institution: name the tenant ("tenant_id").`,
        );
      }
      const issued = await sso.issue({
        serviceId: svc.id,
        tenantId,
        userId: `user_${user.id}`,
        email: user.email,
        name: user.name,
        roles: input.roles ?? ['member'],
      });
      const url = new URL(`${svc.baseUrl}${svc.ssoCallbackPath}`);
      url.searchParams.set('token', issued.token);
      url.searchParams.set('tenant', tenantId);
      return { ...issued, url: url.toString() };
    },
  };
}
