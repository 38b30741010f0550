import { randomUUID } from 'node:crypto';
import {
  type AuditEvent,
  type AuditSeverity,
  type AuditSink,
  MtPaasError,
  type TenantStatus,
  type UsageRecord,
  type UsageSink,
} from '@mt-paas/context';
import type { SqlDriver, SqlSession } from '@mt-paas/db';
import type { AuditAlert, MarketplaceClient } from './client.js';
import { catalogTable } from './receipts.js';

/** What can be sent to the marketplace through the outbox. */
export type OutboxMessage =
  | { id: string; type: 'usage.report'; tenantId: string; payload: UsageRecordJson }
  | { id: string; type: 'audit.alert'; tenantId?: string | undefined; payload: AuditAlert }
  | { id: string; type: 'tenant.status'; tenantId: string; payload: TenantStatusJson };

/** A usage record as stored in the outbox. */
export interface UsageRecordJson {
  tenantId: string;
  meter: string;
  quantity: number;
  at: string;
  periodStart?: string;
  idempotencyKey: string;
  attributes?: Record<string, string>;
}

/** A tenant status report as stored in the outbox. */
export interface TenantStatusJson {
  tenantId: string;
  status: TenantStatus;
  reason?: string;
  at: string;
}

/** A message handed to a dispatcher, with its delivery state. */
export type ClaimedMessage = OutboxMessage & { attempts: number; createdAt: Date };

/** How far behind the outbox is. */
export interface OutboxStats {
  /** Messages waiting to be delivered (due now or later). */
  pending: number;
  /** Messages the marketplace refused for good (4xx); kept with their error for an operator. */
  parked: number;
  /** Age of the oldest undelivered message in seconds (`null` when none). */
  oldestPendingAgeSeconds: number | null;
}

/** Options of {@link Outbox.enqueue}. */
export interface EnqueueOptions {
  /**
   * The transaction of the state change (e.g. `HandlerContext.transaction`, or `driver.transaction`'s
   * session): the messages commit with it or not at all. @default the outbox's driver (autocommit)
   */
  executor?: SqlSession;
}

/** The catalog's `outbox` table: everything that must reach the marketplace. */
export interface Outbox {
  /** Adds messages; a message whose id is already there (delivered or not) is skipped. Returns how many were added. */
  enqueue(messages: readonly OutboxMessage[], options?: EnqueueOptions): Promise<number>;
  /**
   * Leases up to `limit` due messages to the caller for `leaseSeconds` (`FOR UPDATE SKIP LOCKED`):
   * another instance skips them; if the caller dies, they are due again when the lease ends.
   */
  claim(limit: number, leaseSeconds: number): Promise<ClaimedMessage[]>;
  /** Marks a message delivered. */
  complete(id: string): Promise<void>;
  /** Gives leased messages back undelivered (due now, the attempt not counted), for another round or instance. */
  release(ids: readonly string[]): Promise<void>;
  /** Schedules another attempt after `delaySeconds`, keeping the error. */
  retry(id: string, error: string, delaySeconds: number): Promise<void>;
  /** Stops retrying a message the marketplace refused for good (it stays, with its error). */
  park(id: string, error: string): Promise<void>;
  stats(): Promise<OutboxStats>;
  /** Deletes delivered messages older than `olderThanSeconds`. Returns how many. */
  prune(olderThanSeconds: number): Promise<number>;
}

/** Options of {@link createOutbox}. */
export interface OutboxOptions {
  /** The catalog's driver (`catalog.driver`). */
  driver: SqlDriver;
  /** The catalog's schema (`catalog.schema`). @default 'mt_paas' */
  schema?: string;
}

const ID_PATTERN = /^[\x21-\x7e]{1,300}$/;

/** The outbox in the catalog's `outbox` table. */
export function createOutbox(options: OutboxOptions): Outbox {
  const table = catalogTable(options.schema, 'outbox');
  const { driver } = options;
  return {
    async enqueue(messages, enqueueOptions = {}) {
      if (messages.length === 0) return 0;
      const params: unknown[] = [];
      const rows: string[] = [];
      for (const message of messages) {
        if (!ID_PATTERN.test(message.id)) {
          throw new MtPaasError(
            'INVALID_REQUEST',
            'An outbox message id must be 1 to 300 visible ASCII characters.',
          );
        }
        const at = params.length;
        params.push(message.id, message.tenantId ?? null, message.type, JSON.stringify(message.payload));
        rows.push(`($${at + 1}, $${at + 2}, $${at + 3}, $${at + 4}::jsonb)`);
      }
      const executor = enqueueOptions.executor ?? driver;
      const result = await executor.query(
        `INSERT INTO ${table} (event_id, tenant_id, type, payload) VALUES ${rows.join(', ')}
         ON CONFLICT (event_id) DO NOTHING RETURNING event_id`,
        params,
      );
      return result.rows.length;
    },
    async claim(limit, leaseSeconds) {
      const result = await driver.query<{
        event_id: string;
        tenant_id: string | null;
        type: OutboxMessage['type'];
        payload: unknown;
        attempts: number;
        created_at: Date;
      }>(
        `WITH due AS (
           SELECT event_id FROM ${table}
           WHERE delivered_at IS NULL AND next_attempt_at <= now()
           ORDER BY next_attempt_at, created_at
           LIMIT $1
           FOR UPDATE SKIP LOCKED
         )
         UPDATE ${table} AS o
         SET next_attempt_at = now() + make_interval(secs => $2), attempts = o.attempts + 1
         FROM due WHERE o.event_id = due.event_id
         RETURNING o.event_id, o.tenant_id, o.type, o.payload, o.attempts, o.created_at`,
        [limit, leaseSeconds],
      );
      return result.rows
        .map(
          (row) =>
            ({
              id: row.event_id,
              type: row.type,
              ...(row.tenant_id === null ? {} : { tenantId: row.tenant_id }),
              payload: row.payload,
              attempts: row.attempts,
              createdAt: new Date(row.created_at),
            }) as ClaimedMessage,
        )
        .sort((a, b) => a.createdAt.getTime() - b.createdAt.getTime());
    },
    async complete(id) {
      await driver.query(
        `UPDATE ${table} SET delivered_at = now(), last_error = NULL WHERE event_id = $1 AND delivered_at IS NULL`,
        [id],
      );
    },
    async release(ids) {
      if (ids.length === 0) return;
      await driver.query(
        `UPDATE ${table} SET next_attempt_at = now(), attempts = greatest(attempts - 1, 0)
         WHERE event_id = ANY($1::text[]) AND delivered_at IS NULL`,
        [ids],
      );
    },
    async retry(id, error, delaySeconds) {
      await driver.query(
        `UPDATE ${table} SET next_attempt_at = now() + make_interval(secs => $3), last_error = $2
         WHERE event_id = $1 AND delivered_at IS NULL`,
        [id, error.slice(0, 2000), delaySeconds],
      );
    },
    async park(id, error) {
      await driver.query(
        `UPDATE ${table} SET next_attempt_at = 'infinity', last_error = $2 WHERE event_id = $1 AND delivered_at IS NULL`,
        [id, error.slice(0, 2000)],
      );
    },
    async stats() {
      const result = await driver.query<{ pending: string; parked: string; oldest: number | string | null }>(
        `SELECT count(*) FILTER (WHERE next_attempt_at <> 'infinity') AS pending,
                count(*) FILTER (WHERE next_attempt_at = 'infinity') AS parked,
                extract(epoch FROM now() - min(created_at)) AS oldest
         FROM ${table} WHERE delivered_at IS NULL`,
      );
      const row = result.rows[0];
      return {
        pending: Number(row?.pending ?? 0),
        parked: Number(row?.parked ?? 0),
        oldestPendingAgeSeconds:
          row?.oldest === null || row?.oldest === undefined ? null : Number(row.oldest),
      };
    },
    async prune(olderThanSeconds) {
      const result = await driver.query(
        `DELETE FROM ${table} WHERE delivered_at IS NOT NULL AND delivered_at < now() - make_interval(secs => $1)
         RETURNING event_id`,
        [olderThanSeconds],
      );
      return result.rows.length;
    },
  };
}

/** Options of {@link createOutboxDispatcher}. */
export interface OutboxDispatcherOptions {
  outbox: Outbox;
  client: MarketplaceClient;
  /** Messages leased per round. @default 50 */
  batchSize?: number;
  /**
   * How long a lease lasts. A round stops delivering (and releases the rest of its batch) when less
   * than `deliveryBudgetMs` of it is left, so a slow round never sends a message whose lease another
   * instance may already hold. @default 60
   */
  leaseSeconds?: number;
  /** The longest one delivery can take: the client's timeout plus a margin. @default 15000 */
  deliveryBudgetMs?: number;
  /** First retry delay; doubles per attempt with jitter, up to `maxRetryDelaySeconds`. @default 2 */
  retryBaseSeconds?: number;
  /** @default 3600 */
  maxRetryDelaySeconds?: number;
  /** Pause between rounds when nothing was due (`start()`). @default 1000 */
  pollIntervalMs?: number;
  /** Told about every failed delivery. */
  onError?: (error: unknown, message: ClaimedMessage) => void;
}

/** What one round did. */
export interface DispatchRound {
  delivered: number;
  retried: number;
  parked: number;
}

/** Delivers the outbox to the marketplace. */
export interface OutboxDispatcher {
  /** Leases due messages and delivers them once. */
  runOnce(): Promise<DispatchRound>;
  /** Runs rounds until {@link stop}. */
  start(): void;
  /** Stops after the current round. */
  stop(): Promise<void>;
}

async function deliver(client: MarketplaceClient, message: ClaimedMessage): Promise<void> {
  const call = { idempotencyKey: message.id, retries: 0 };
  switch (message.type) {
    case 'usage.report': {
      const record = message.payload;
      await client.reportUsage(
        [
          {
            tenantId: record.tenantId as UsageRecord['tenantId'],
            meter: record.meter,
            quantity: record.quantity,
            at: new Date(record.at),
            idempotencyKey: record.idempotencyKey,
            ...(record.periodStart === undefined ? {} : { periodStart: record.periodStart }),
            ...(record.attributes === undefined ? {} : { attributes: record.attributes }),
          },
        ],
        call,
      );
      return;
    }
    case 'audit.alert':
      await client.sendAuditAlert(message.payload, call);
      return;
    case 'tenant.status':
      await client.syncTenantStatus(
        {
          tenantId: message.payload.tenantId,
          status: message.payload.status,
          at: new Date(message.payload.at),
          ...(message.payload.reason === undefined ? {} : { reason: message.payload.reason }),
        },
        call,
      );
      return;
    default:
      throw new MtPaasError(
        'PROVIDER_ERROR',
        `Outbox message type "${(message as { type: string }).type}" is unknown to this version.`,
        { details: { retryable: false } },
      );
  }
}

/**
 * Delivers the outbox at least once, with the message id as `Idempotency-Key` (the marketplace
 * dedupes on it). Any number of instances can run one: each round leases its messages with
 * `FOR UPDATE SKIP LOCKED`, so no message is sent by two at once; a crashed instance's lease runs
 * out and another picks the message up. Refusals (4xx) are parked; everything else is retried
 * with exponential backoff and jitter, honouring `Retry-After`.
 */
export function createOutboxDispatcher(options: OutboxDispatcherOptions): OutboxDispatcher {
  const batchSize = options.batchSize ?? 50;
  const leaseSeconds = options.leaseSeconds ?? 60;
  const budget = options.deliveryBudgetMs ?? 15_000;
  const base = options.retryBaseSeconds ?? 2;
  const max = options.maxRetryDelaySeconds ?? 3600;
  let running: Promise<void> | undefined;
  let stopped = true;
  let timer: ReturnType<typeof setTimeout> | undefined;

  async function runOnce(): Promise<DispatchRound> {
    const round: DispatchRound = { delivered: 0, retried: 0, parked: 0 };
    const leaseEnds = Date.now() + leaseSeconds * 1000;
    const messages = await options.outbox.claim(batchSize, leaseSeconds);
    for (const [index, message] of messages.entries()) {
      if (Date.now() + budget > leaseEnds) {
        await options.outbox.release(messages.slice(index).map((rest) => rest.id));
        break;
      }
      try {
        await deliver(options.client, message);
        await options.outbox.complete(message.id);
        round.delivered++;
      } catch (error) {
        options.onError?.(error, message);
        const text = error instanceof Error ? error.message : String(error);
        const refused = MtPaasError.isInstance(error) && error.details?.retryable === false;
        if (refused) {
          await options.outbox.park(message.id, text);
          round.parked++;
        } else {
          const backoff = Math.min(max, base * 2 ** Math.max(0, message.attempts - 1));
          const jittered = backoff / 2 + (Math.random() * backoff) / 2;
          const hinted = MtPaasError.isInstance(error) ? error.retryAfterSeconds : undefined;
          await options.outbox.retry(message.id, text, Math.min(max, Math.max(jittered, hinted ?? 0)));
          round.retried++;
        }
      }
    }
    return round;
  }

  function schedule(delay: number) {
    timer = setTimeout(() => {
      running = runOnce().then(
        (round) => {
          running = undefined;
          if (!stopped)
            schedule(
              round.delivered + round.retried + round.parked > 0 ? 0 : (options.pollIntervalMs ?? 1000),
            );
        },
        () => {
          running = undefined;
          if (!stopped) schedule(options.pollIntervalMs ?? 1000);
        },
      );
    }, delay);
    timer.unref?.();
  }

  return {
    runOnce,
    start() {
      if (!stopped) return;
      stopped = false;
      schedule(0);
    },
    async stop() {
      stopped = true;
      if (timer !== undefined) clearTimeout(timer);
      await running;
    },
  };
}

/** An outbox message reporting one usage record (id `usage:<tenant>:<idempotency key>`). */
export function usageMessage(record: UsageRecord): OutboxMessage {
  return {
    id: `usage:${record.tenantId}:${record.idempotencyKey}`,
    type: 'usage.report',
    tenantId: record.tenantId,
    payload: {
      tenantId: record.tenantId,
      meter: record.meter,
      quantity: record.quantity,
      at: record.at.toISOString(),
      idempotencyKey: record.idempotencyKey,
      ...(record.periodStart === undefined ? {} : { periodStart: record.periodStart }),
      ...(record.attributes === undefined ? {} : { attributes: { ...record.attributes } }),
    },
  };
}

function text(value: unknown): string | null {
  return typeof value === 'string' && value.length > 0 ? value : null;
}

/** The seed 001 §5.3 alert body for an audit event. */
export function auditAlert(event: AuditEvent, serviceId: string): AuditAlert {
  return {
    service_id: serviceId,
    alert_type: event.type,
    severity: event.severity,
    details: {
      source_tenant: event.tenantId ?? null,
      target_tenant: event.targetTenantId ?? null,
      endpoint: text(event.details?.endpoint) ?? text(event.details?.path),
      ip_address: event.actor?.ip ?? null,
    },
    timestamp: event.at.toISOString(),
  };
}

/** An outbox message carrying a tenant status change. */
export function tenantStatusMessage(report: {
  tenantId: string;
  status: TenantStatus;
  reason?: string;
  at?: Date;
  id?: string;
}): OutboxMessage {
  const at = (report.at ?? new Date()).toISOString();
  return {
    id: report.id ?? `status:${report.tenantId}:${randomUUID()}`,
    type: 'tenant.status',
    tenantId: report.tenantId,
    payload: {
      tenantId: report.tenantId,
      status: report.status,
      at,
      ...(report.reason === undefined ? {} : { reason: report.reason }),
    },
  };
}

/**
 * A `UsageSink` (the middleware's usage flush) writing each record to the outbox; a record with
 * an idempotency key already there is skipped. `next`: another sink to record to as well (e.g. `catalog.usage`).
 */
export function createOutboxUsageSink(options: { outbox: Outbox; next?: UsageSink }): UsageSink {
  return {
    async record(records) {
      await options.next?.record(records);
      await options.outbox.enqueue(records.map(usageMessage));
    },
  };
}

const SEVERITY_ORDER: Record<AuditSeverity, number> = { low: 0, medium: 1, high: 2, critical: 3 };

/**
 * An `AuditSink` sending events of `minSeverity` and above to the marketplace's alert API through the
 * outbox (every event also goes to `next`, e.g. `catalog.audit`, when given).
 */
export function createOutboxAuditSink(options: {
  outbox: Outbox;
  serviceId: string;
  /** @default 'high' */
  minSeverity?: AuditSeverity;
  next?: AuditSink;
}): AuditSink {
  const threshold = SEVERITY_ORDER[options.minSeverity ?? 'high'];
  return {
    async record(event) {
      await options.next?.record(event);
      if (SEVERITY_ORDER[event.severity] < threshold) return;
      await options.outbox.enqueue([
        {
          id: `audit:${randomUUID()}`,
          type: 'audit.alert',
          tenantId: event.tenantId,
          payload: auditAlert(event, options.serviceId),
        },
      ]);
    },
  };
}
