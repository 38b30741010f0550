import { randomBytes } from 'node:crypto';
import { MtPaasError } from '@mt-paas/context';
import { type MarketplaceEventType, parseEvent, signWebhook } from '@mt-paas/marketplace';
import { and, asc, desc, eq, inArray, lte, sql } from 'drizzle-orm';
import type { PgDatabase, PgQueryResultHKT } from 'drizzle-orm/pg-core';
import type { FaultSwitch } from './faults.js';
import { deliveries, deliveryAttempts, services } from './schema.js';

/** The drizzle database (Postgres or PGlite) or a transaction of it. */
export type Db = PgDatabase<PgQueryResultHKT>;

/** A service as the outbox needs it. */
export type ServiceRow = typeof services.$inferSelect;
/** A delivery row. */
export type DeliveryRow = typeof deliveries.$inferSelect;

/** The route of the events protocol (`@mt-paas/marketplace`'s `EVENTS_ROUTE`). */
export const EVENTS_PATH = '/api/mt-paas/v1/events';

/** How a delivery authenticates on the wire (decided when it is sent, from the service's secrets). */
type Auth = 'signature' | 'api-key' | 'legacy-secret';

interface Route {
  path: string;
  body: Record<string, unknown>;
  auth: Auth;
}

/** A new message id in the Standard Webhooks style. */
export function newMessageId(): string {
  return `msg_${randomBytes(16).toString('base64url')}`;
}

function unsupported(service: ServiceRow, type: string, why: string): MtPaasError {
  return new MtPaasError(
    'CONFLICT',
    `Service "${service.id}" speaks the legacy protocol and ${why}, so "${type}" cannot be delivered to it; register a webhook signing secret (whsec_…) for it.`,
    { details: { service_id: service.id, event_type: type } },
  );
}

/**
 * Where and how an event goes. `signed` services get every event as a Standard Webhooks envelope on
 * `/api/mt-paas/v1/events`; `legacy` services get the seed's routes and bodies (seed 002 §5.3, §6;
 * seed 001 §5.2) with their own authentication — signed where the seed's route has no secret of its
 * own (the kill switch) and the service has a signing secret.
 */
function routeOf(
  service: ServiceRow,
  type: MarketplaceEventType,
  data: Record<string, unknown>,
  occurredAt: Date,
): Route {
  const signable = service.webhookSecrets.length > 0;
  if (service.protocol === 'signed') {
    if (!signable) throw unsupported(service, type, 'has no signing secret');
    return {
      path: EVENTS_PATH,
      body: { type, version: 1, timestamp: occurredAt.toISOString(), data },
      auth: 'signature',
    };
  }
  const webhookAuth: Auth | undefined =
    service.legacySecret !== null ? 'legacy-secret' : signable ? 'signature' : undefined;
  const occurred = { occurred_at: occurredAt.toISOString() };
  const tenantPath = (action: string) =>
    `/api/v1/services/${encodeURIComponent(service.id)}/tenants/${encodeURIComponent(String(data.tenant_id))}/${action}`;
  switch (type) {
    case 'tenant.provision_requested':
      return {
        path: '/api/tenant/create',
        body: {
          tenant_id: data.tenant_id,
          tenant_name: data.tenant_name,
          admin_email: data.admin_email,
          ...(data.admin_name === undefined ? {} : { admin_name: data.admin_name }),
          application_id: data.application_id,
          application_kind: data.application_kind,
        },
        auth: 'api-key',
      };
    case 'service.cancelled':
      if (webhookAuth === undefined)
        throw unsupported(service, type, 'has neither a legacy secret nor a signing secret');
      return {
        path: '/api/tenant/webhook/service-cancelled',
        body: { application_id: data.application_id, ...occurred },
        auth: webhookAuth,
      };
    case 'user.deleted':
      if (webhookAuth === undefined)
        throw unsupported(service, type, 'has neither a legacy secret nor a signing secret');
      return {
        path: '/api/tenant/webhook/user-deleted',
        body: { event: 'user.deleted', ...data },
        auth: webhookAuth,
      };
    case 'tenant.blocked': {
      const { tenant_id: _tenant, ...body } = data;
      return {
        path: tenantPath('block'),
        body: { ...body, ...occurred },
        auth: signable ? 'signature' : 'api-key',
      };
    }
    case 'tenant.unblocked': {
      const { tenant_id: _tenant, ...body } = data;
      return {
        path: tenantPath('unblock'),
        body: { ...body, ...occurred },
        auth: signable ? 'signature' : 'api-key',
      };
    }
    case 'subscription.updated':
      if (!signable)
        throw unsupported(service, type, 'the seed has no subscription route and it has no signing secret');
      return {
        path: EVENTS_PATH,
        body: { type, version: 1, timestamp: occurredAt.toISOString(), data },
        auth: 'signature',
      };
  }
}

/** Options of {@link createOutbox}. */
export interface OutboxOptions {
  db: Db;
  faults: FaultSwitch;
  /** Seconds to wait before each retry; the delivery fails after the last one. */
  retrySchedule: readonly number[];
  /** Timeout of one attempt. */
  timeoutMs: number;
  /** How long a claimed row stays leased. */
  leaseSeconds?: number;
  /** Called after a delivery succeeded (2xx) or finally failed, in a transaction of its own. */
  onSettled?: (delivery: DeliveryRow, outcome: { ok: boolean; response: unknown }, db: Db) => Promise<void>;
  fetch?: typeof fetch;
}

/** The market's outbox: webhook rows written with the change that caused them, sent by {@link Outbox.runOnce}. */
export interface Outbox {
  /** Writes a delivery (in `db`, e.g. the caller's transaction). The data is checked with the marketplace package's schemas. */
  enqueue(
    db: Db,
    service: ServiceRow,
    type: MarketplaceEventType,
    data: Record<string, unknown>,
    options?: { tenantId?: string; occurredAt?: Date },
  ): Promise<DeliveryRow>;
  /** Sends what is due (and releases a complete out-of-order batch); returns how many attempts were made. */
  runOnce(): Promise<number>;
  /** Sends one delivery now, whatever its status (a replay by hand). */
  replay(id: string): Promise<DeliveryRow>;
  start(pollMs: number): void;
  stop(): Promise<void>;
}

const RETRYABLE = new Set([408, 425, 429]);

export function createOutbox(options: OutboxOptions): Outbox {
  const { db, faults } = options;
  const doFetch = options.fetch ?? fetch;
  const leaseSeconds = options.leaseSeconds ?? 60;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<unknown> = Promise.resolve();
  let stopped = true;

  async function serviceOf(id: string): Promise<ServiceRow> {
    const [service] = await db.select().from(services).where(eq(services.id, id));
    if (service === undefined) {
      throw new MtPaasError('ROUTE_NOT_FOUND', `Service "${id}" is not registered.`);
    }
    return service;
  }

  function headersFor(service: ServiceRow, row: DeliveryRow, auth: Auth): Record<string, string> {
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      'user-agent': 'mt-paas-market-sim',
    };
    if (auth === 'signature') {
      Object.assign(
        headers,
        signWebhook({ id: row.id, timestamp: new Date(), body: row.body, secrets: service.webhookSecrets }),
      );
    } else {
      headers['idempotency-key'] = row.id;
      if (auth === 'api-key') headers['x-api-key'] = service.apiKey;
      else headers['x-webhook-secret'] = service.legacySecret ?? '';
    }
    return headers;
  }

  async function send(
    row: DeliveryRow,
    manual: boolean,
  ): Promise<{ status?: number; text?: string; error?: string; retryAfter?: number }> {
    const service = await serviceOf(row.serviceId);
    const auth = authOf(row);
    const headers = headersFor(service, row, auth);
    const started = Date.now();
    let result: { status?: number; text?: string; error?: string; retryAfter?: number };
    try {
      const response = await doFetch(row.url, {
        method: row.method,
        headers,
        body: row.body,
        signal: AbortSignal.timeout(options.timeoutMs),
      });
      const text = await response.text();
      const retryAfter = Number(response.headers.get('retry-after'));
      result = {
        status: response.status,
        text: text.slice(0, 10_000),
        ...(Number.isFinite(retryAfter) && retryAfter > 0 ? { retryAfter } : {}),
      };
    } catch (error) {
      result = { error: error instanceof Error ? `${error.name}: ${error.message}` : String(error) };
    }
    await recordAttempt(row.id, headers, result, Date.now() - started, manual);
    return result;
  }

  async function recordAttempt(
    id: string,
    headers: Record<string, string>,
    result: { status?: number; text?: string; error?: string },
    durationMs: number,
    manual: boolean,
  ): Promise<number> {
    const [counted] = await db
      .update(deliveries)
      .set({ attempts: sql`${deliveries.attempts} + 1` })
      .where(eq(deliveries.id, id))
      .returning({ attempts: deliveries.attempts });
    const attempt = counted?.attempts ?? 1;
    const shown = { ...headers };
    for (const secret of ['x-api-key', 'x-webhook-secret']) if (secret in shown) shown[secret] = '***';
    await db.insert(deliveryAttempts).values({
      deliveryId: id,
      attempt,
      at: new Date(),
      requestHeaders: shown,
      responseStatus: result.status ?? null,
      responseBody: result.text ?? null,
      error: result.error ?? null,
      durationMs,
      manual: manual ? 1 : 0,
    });
    return attempt;
  }

  function parseJson(text: string | undefined): unknown {
    if (text === undefined || text === '') return null;
    try {
      return JSON.parse(text);
    } catch {
      return text;
    }
  }

  async function settle(row: DeliveryRow, ok: boolean, response: unknown): Promise<void> {
    if (options.onSettled === undefined) return;
    await db.transaction(async (tx) => {
      await options.onSettled?.(row, { ok, response }, tx as unknown as Db);
    });
  }

  /** One attempt (or a fault instead of it) and its bookkeeping. */
  async function deliver(row: DeliveryRow, manual: boolean): Promise<DeliveryRow> {
    if (!manual && faults.takeDeliveryFault('drop')) {
      await recordAttempt(row.id, {}, { error: 'dropped by fault injection (never sent)' }, 0, false);
      const [dropped] = await db
        .update(deliveries)
        .set({ status: 'dropped', lastError: 'dropped by fault injection; replay it to send it' })
        .where(eq(deliveries.id, row.id))
        .returning();
      return dropped ?? row;
    }
    const delay = faults.get().deliveries?.delayMs ?? 0;
    if (delay > 0 && !manual) await new Promise((resolve) => setTimeout(resolve, delay));
    let result = await send(row, manual);
    if (!manual && faults.takeDeliveryFault('duplicate')) {
      const second = await send(row, false);
      // The service's answer to the first copy is what counts, unless only the second got through.
      if (!isOk(result.status) && isOk(second.status)) result = second;
    }
    const [current] = await db.select().from(deliveries).where(eq(deliveries.id, row.id));
    const attempts = current?.attempts ?? row.attempts + 1;
    const response = parseJson(result.text);
    if (isOk(result.status)) {
      const [done] = await db
        .update(deliveries)
        .set({
          status: 'delivered',
          lastStatus: result.status,
          lastError: null,
          response,
          deliveredAt: new Date(),
        })
        .where(eq(deliveries.id, row.id))
        .returning();
      if (row.status !== 'delivered') await settle(done ?? row, true, response);
      return done ?? row;
    }
    const retryable = result.status === undefined || result.status >= 500 || RETRYABLE.has(result.status);
    // `attempts` counts automatic and manual attempts alike: a replay uses up a step of the schedule.
    const wait = options.retrySchedule[attempts - 1];
    const keepsRetrying = row.status === 'pending' && retryable && wait !== undefined;
    const next = keepsRetrying
      ? {
          status: 'pending',
          nextAttemptAt: new Date(Date.now() + Math.max(wait, result.retryAfter ?? 0) * 1000),
        }
      : { status: row.status === 'delivered' ? 'delivered' : 'failed' };
    const [updated] = await db
      .update(deliveries)
      .set({
        ...next,
        lastStatus: result.status ?? null,
        lastError: result.error ?? (result.status === undefined ? null : `answered ${result.status}`),
        response,
      })
      .where(eq(deliveries.id, row.id))
      .returning();
    if (next.status === 'failed' && row.status !== 'failed') await settle(updated ?? row, false, response);
    return updated ?? row;
  }

  async function releaseHeld(): Promise<number> {
    const batch = faults.holdBatch();
    if (batch === undefined) {
      // The fault was cleared or replaced while deliveries were held: they go out in the usual order.
      await db
        .update(deliveries)
        .set({ status: 'pending', nextAttemptAt: new Date() })
        .where(eq(deliveries.status, 'held'));
      return 0;
    }
    const held = await db
      .select()
      .from(deliveries)
      .where(eq(deliveries.status, 'held'))
      .orderBy(desc(deliveries.occurredAt), desc(deliveries.seq));
    if (held.length < batch) return 0;
    faults.releasedHold();
    await db
      .update(deliveries)
      .set({ status: 'pending', nextAttemptAt: new Date(Date.now() + leaseSeconds * 1000) })
      .where(
        inArray(
          deliveries.id,
          held.map((row) => row.id),
        ),
      );
    for (const row of held) await deliver({ ...row, status: 'pending' }, false);
    return held.length;
  }

  async function runOnce(): Promise<number> {
    let sent = await releaseHeld();
    const claimed = await db.transaction(async (tx) => {
      const due = await tx
        .select()
        .from(deliveries)
        .where(and(eq(deliveries.status, 'pending'), lte(deliveries.nextAttemptAt, new Date())))
        .orderBy(asc(deliveries.occurredAt), asc(deliveries.seq))
        .limit(25)
        .for('update', { skipLocked: true });
      if (due.length > 0) {
        await tx
          .update(deliveries)
          .set({ nextAttemptAt: new Date(Date.now() + leaseSeconds * 1000) })
          .where(
            inArray(
              deliveries.id,
              due.map((row) => row.id),
            ),
          );
      }
      return due;
    });
    for (const row of claimed) {
      await deliver(row, false);
      sent += 1;
    }
    return sent;
  }

  function tick(pollMs: number) {
    if (stopped) return;
    running = runOnce()
      .catch((error: unknown) => {
        console.error('[market-sim] dispatcher round failed:', error);
      })
      .finally(() => {
        if (!stopped) timer = setTimeout(() => tick(pollMs), pollMs);
      });
  }

  return {
    async enqueue(tx, service, type, data, enqueueOptions = {}) {
      parseEvent(type, 1, data); // what the service's receiver will check: refuse it here first
      const occurredAt = enqueueOptions.occurredAt ?? new Date();
      const route = routeOf(service, type, data, occurredAt);
      const id = newMessageId();
      const base = service.baseUrl.replace(/\/+$/, '');
      const held = faults.takeHold() !== undefined;
      const [row] = await tx
        .insert(deliveries)
        .values({
          id,
          serviceId: service.id,
          tenantId: enqueueOptions.tenantId ?? null,
          eventType: type,
          occurredAt,
          method: 'POST',
          url: `${base}${route.path}`,
          body: JSON.stringify(route.body),
          status: held ? 'held' : 'pending',
          nextAttemptAt: new Date(),
          auth: route.auth,
        })
        .returning();
      if (row === undefined) throw new MtPaasError('INTERNAL', 'The delivery was not written.');
      return row;
    },
    runOnce,
    async replay(id) {
      const [row] = await db.select().from(deliveries).where(eq(deliveries.id, id));
      if (row === undefined)
        throw new MtPaasError(
          'ROUTE_NOT_FOUND',
          `No delivery "${id}"; list them with GET /sim/v1/deliveries.`,
        );
      if (row.status === 'held') {
        throw new MtPaasError(
          'CONFLICT',
          `Delivery "${id}" is held by the out-of-order fault; clear the faults first (DELETE /sim/v1/faults).`,
        );
      }
      return deliver(row, true);
    },
    start(pollMs) {
      if (!stopped) return;
      stopped = false;
      tick(pollMs);
    },
    async stop() {
      stopped = true;
      if (timer !== undefined) clearTimeout(timer);
      await running;
    },
  };
}

function isOk(status: number | undefined): status is number {
  return status !== undefined && status >= 200 && status < 300;
}

function authOf(row: DeliveryRow): Auth {
  return row.auth as Auth;
}
