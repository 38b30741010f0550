import {
  type AuditEvent,
  type AuditSink,
  MtPaasError,
  parseTenantId,
  type TenantEventBus,
  type TenantId,
  type TenantStatus,
} from '@mt-paas/context';
import type { Catalog } from '@mt-paas/db';
import { type OutboxMessage, tenantStatusMessage } from '@mt-paas/marketplace';
import { z } from 'zod';
import { type ControlLogger, defaultLogger, errorMessage } from './logger.js';
import type { MarketOutbox } from './market.js';

/** What a block asks for (the seed's kill-switch body, 001 §5.2, in camelCase). */
export interface BlockInput {
  /** Why (`subscription_expired`, `policy_violation`, …). Stored and audited. */
  reason: string;
  /** Shown to the tenant's users in every refusal (the `TENANT_BLOCKED` message). */
  message?: string;
  /** When the block takes effect; until then requests are served with an `x-tenant-warning` header. @default now */
  blockAt?: Date | string;
  /** Hours added to `blockAt` before the block takes effect (seed `grace_period_hours`). @default 0 */
  gracePeriodHours?: number;
  /** When the block lifts by itself (control's expiry sweep unblocks it). Open-ended when omitted. */
  until?: Date | string;
}

/** Who asked (audited). */
export interface KillSwitchActor {
  userId?: string;
  service?: string;
  ip?: string;
}

/** What {@link KillSwitch.block} did. */
export interface BlockResult {
  tenantId: TenantId;
  /** When refusals start (blockAt + grace). */
  effectiveAt: Date;
  until?: Date;
  /** `false` when the event bus failed: other instances then see the block when their cache expires. */
  propagated: boolean;
}

/** Options of {@link createKillSwitch}. */
export interface KillSwitchOptions {
  /** The central catalog (`createCatalog()` of `@mt-paas/db`). */
  catalog: Pick<Catalog, 'driver' | 'schema'>;
  /** Tells every instance to drop its cached tenant (`createRedisEventBus` of `@mt-paas/middleware`). */
  events?: TenantEventBus;
  /** Records `tenant_blocked` / `tenant_unblocked` (the audit logger, or `catalog.audit`). */
  audit?: AuditSink;
  /** Status reports to the market, committed with the catalog change (`@mt-paas/marketplace`'s outbox). */
  outbox?: MarketOutbox;
  /** `service.id`, in the status report. */
  serviceId: string;
  /** This instance, as the `origin` of published events. @default `<hostname>:<pid>` */
  origin?: string;
  /** How often {@link KillSwitch.start} looks for blocks whose `until` has passed. @default 5_000 */
  expiryCheckIntervalMs?: number;
  /** Called after every block / unblock / expiry (for the `kill_switch_actions_total` metric). */
  onAction?: (action: 'block' | 'unblock' | 'expire') => void;
  logger?: ControlLogger;
  /** @default () => new Date() */
  now?: () => Date;
}

/** The kill switch: block and unblock tenants on every instance; lift expired blocks. */
export interface KillSwitch {
  /**
   * Blocks a tenant: catalog row (durable, with the market status report in the same transaction),
   * then the `tenant.blocked` event (every instance drops its cache), then the audit event.
   *
   * @throws MtPaasError `INVALID_TENANT_ID`, `INVALID_REQUEST` (bad dates, `until` before the block),
   *   `TENANT_NOT_FOUND`, `CONFLICT` (deleted or purged tenant).
   */
  block(tenantId: string, input: BlockInput, actor?: KillSwitchActor): Promise<BlockResult>;
  /**
   * Lifts a block: the tenant returns to the status it had before the block (`active` when unknown).
   * Idempotent: a tenant that is not blocked is left alone (`{ unblocked: false }`).
   */
  unblock(
    tenantId: string,
    options?: { reason?: string; actor?: KillSwitchActor },
  ): Promise<{ tenantId: TenantId; unblocked: boolean; status?: TenantStatus }>;
  /**
   * Unblocks every tenant whose `until` has passed (by the database clock). Safe on many instances
   * at once: each expired block is lifted, reported and audited by exactly one of them.
   */
  liftExpired(): Promise<TenantId[]>;
  /** Starts the expiry sweep (idempotent). */
  start(): void;
  /** Stops the sweep and waits for one in flight. */
  stop(): Promise<void>;
}

/** Metadata key that remembers the status a block interrupted. */
export const UNBLOCK_STATUS_KEY = 'mt_paas_status_before_block';
const RESTORABLE: readonly TenantStatus[] = ['active', 'grace', 'suspended'];

/** The catalog schema as a quoted identifier (it was validated by the catalog; checked again here). */
export function quoteSchema(schema: string): string {
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(schema)) {
    throw new MtPaasError(
      'CONFIG_INVALID',
      `The catalog schema "${schema}" is not a plain lower-case identifier; use the catalog's own schema.`,
    );
  }
  return `"${schema}"`;
}

const dateInput = z.union([z.date(), z.iso.datetime({ offset: true })]).transform((value) => new Date(value));
const blockInputSchema = z.object({
  reason: z.string().trim().min(1).max(200),
  message: z.string().max(2000).optional(),
  blockAt: dateInput.optional(),
  gracePeriodHours: z
    .number()
    .min(0)
    .max(24 * 366)
    .optional(),
  until: dateInput.optional(),
});

/**
 * The seed's kill-switch request body (`POST /services/{service_id}/tenants/{tenant_id}/block`:
 * `reason`, `block_at`, `grace_period_hours`, `message`, and our `until`), parsed into a {@link BlockInput}.
 *
 * @throws MtPaasError `INVALID_REQUEST` naming the bad field.
 */
export function parseBlockRequest(body: unknown): BlockInput {
  const wire = z
    .object({
      reason: z.string(),
      message: z.string().optional(),
      block_at: z.string().optional(),
      grace_period_hours: z.number().optional(),
      until: z.string().optional(),
    })
    .safeParse(body);
  if (!wire.success) throw invalid(wire.error);
  const input: BlockInput = { reason: wire.data.reason };
  if (wire.data.message !== undefined) input.message = wire.data.message;
  if (wire.data.block_at !== undefined) input.blockAt = wire.data.block_at;
  if (wire.data.grace_period_hours !== undefined) input.gracePeriodHours = wire.data.grace_period_hours;
  if (wire.data.until !== undefined) input.until = wire.data.until;
  validateBlockInput(input);
  return input;
}

function invalid(error: z.ZodError): MtPaasError {
  const issue = error.issues[0];
  const field = issue?.path.join('.') || 'body';
  return new MtPaasError(
    'INVALID_REQUEST',
    `The block request's "${field}" is not valid (${issue?.message ?? 'invalid'}); send reason (text), optional message, block_at / until (ISO 8601 with offset) and grace_period_hours (number ≥ 0).`,
    { details: { field } },
  );
}

function validateBlockInput(input: BlockInput) {
  const parsed = blockInputSchema.safeParse(input);
  if (!parsed.success) throw invalid(parsed.error);
  return parsed.data;
}

/**
 * The kill switch of seed 001 §5.2, inside the service. The block lives in the catalog (`status =
 * 'blocked'`, `block_*` columns), which the middleware's status gate honours: refused with the block's
 * message from `blockAt` on, served with a warning before, served again once `until` passed.
 */
export function createKillSwitch(options: KillSwitchOptions): KillSwitch {
  const driver = options.catalog.driver;
  const tenants = `${quoteSchema(options.catalog.schema)}.tenants`;
  const logger = options.logger ?? defaultLogger();
  const now = options.now ?? (() => new Date());
  const origin = options.origin ?? `${process.env.HOSTNAME ?? 'instance'}:${process.pid}`;
  const intervalMs = options.expiryCheckIntervalMs ?? 5_000;
  let timer: NodeJS.Timeout | undefined;
  let sweeping: Promise<unknown> | undefined;
  let sweepFailing = false;

  async function publish(event: Parameters<TenantEventBus['publish']>[0]): Promise<boolean> {
    if (options.events === undefined) return false;
    try {
      await options.events.publish(event);
      return true;
    } catch (error) {
      logger.error(
        { err: errorMessage(error), tenantId: event.tenantId, event: event.type },
        'Tenant event not published; other instances see the change when their tenant cache expires',
      );
      return false;
    }
  }

  async function audit(event: AuditEvent): Promise<void> {
    if (options.audit === undefined) return;
    try {
      await options.audit.record(event);
    } catch (error) {
      logger.error({ err: errorMessage(error), audit: event.type }, 'Kill-switch audit event not recorded');
    }
  }

  function statusReport(tenantId: TenantId, status: TenantStatus, at: Date, reason: string): OutboxMessage {
    return tenantStatusMessage({ tenantId, status, at, reason });
  }

  async function block(
    rawTenantId: string,
    input: BlockInput,
    actor?: KillSwitchActor,
  ): Promise<BlockResult> {
    const tenantId = parseTenantId(rawTenantId);
    const parsed = validateBlockInput(input);
    const at = now();
    const start = parsed.blockAt ?? at;
    const effectiveAt = new Date(start.getTime() + (parsed.gracePeriodHours ?? 0) * 3_600_000);
    if (parsed.until !== undefined && parsed.until.getTime() <= effectiveAt.getTime()) {
      throw new MtPaasError(
        'INVALID_REQUEST',
        `The block's "until" (${parsed.until.toISOString()}) is not after the moment it takes effect (${effectiveAt.toISOString()}); send a later until or none.`,
        { details: { field: 'until' } },
      );
    }
    const effectiveBlockAt = effectiveAt.getTime() > at.getTime() ? effectiveAt : undefined;
    await driver.transaction(async (session) => {
      const { rows } = await session.query<{ status: TenantStatus; before: string | null }>(
        `SELECT status, metadata ->> $2 AS before FROM ${tenants} WHERE id = $1 FOR UPDATE`,
        [tenantId, UNBLOCK_STATUS_KEY],
      );
      const row = rows[0];
      if (row === undefined) {
        throw new MtPaasError(
          'TENANT_NOT_FOUND',
          `Tenant "${tenantId}" does not exist; check the tenant id.`,
          {
            details: { tenantId },
          },
        );
      }
      if (row.status === 'deleted' || row.status === 'purged') {
        throw new MtPaasError(
          'CONFLICT',
          `Tenant "${tenantId}" is ${row.status}; there is nothing to block.`,
          {
            details: { tenantId, status: row.status },
          },
        );
      }
      // A re-block keeps the status the first block interrupted.
      const before = row.status === 'blocked' ? (row.before ?? 'active') : row.status;
      await session.query(
        `UPDATE ${tenants}
         SET status = 'blocked', blocked_at = $2, blocked_reason = $3, block_reason = $3, block_message = $4,
             block_at = $5, block_until = $6, metadata = metadata || jsonb_build_object($7::text, $8::text),
             updated_at = now()
         WHERE id = $1`,
        [
          tenantId,
          at,
          parsed.reason,
          parsed.message ?? null,
          effectiveBlockAt ?? null,
          parsed.until ?? null,
          UNBLOCK_STATUS_KEY,
          before,
        ],
      );
      await options.outbox?.enqueue([statusReport(tenantId, 'blocked', at, parsed.reason)], {
        executor: session,
      });
    });
    const propagated = await publish({
      type: 'tenant.blocked',
      tenantId,
      block: {
        reason: parsed.reason,
        ...(parsed.message === undefined ? {} : { message: parsed.message }),
        ...(effectiveBlockAt === undefined ? {} : { blockAt: effectiveBlockAt }),
        ...(parsed.until === undefined ? {} : { until: parsed.until }),
      },
      at: at.toISOString(),
      origin,
    });
    await audit({
      type: 'tenant_blocked',
      severity: 'medium',
      tenantId,
      ...(actor === undefined ? {} : { actor }),
      details: {
        reason: parsed.reason,
        effectiveAt: effectiveAt.toISOString(),
        ...(parsed.until === undefined ? {} : { until: parsed.until.toISOString() }),
      },
      at,
    });
    options.onAction?.('block');
    logger.info(
      { tenantId, reason: parsed.reason, effectiveAt: effectiveAt.toISOString() },
      'Tenant blocked',
    );
    return {
      tenantId,
      effectiveAt,
      ...(parsed.until === undefined ? {} : { until: parsed.until }),
      propagated,
    };
  }

  /** Clears the block of `tenantId` (one conditional UPDATE); returns the restored status, if this call lifted it. */
  async function lift(
    tenantId: TenantId,
    expiredOnly: boolean,
    reason: string,
  ): Promise<TenantStatus | undefined> {
    const at = now();
    const restorable = RESTORABLE.map((status) => `'${status}'`).join(', ');
    return driver.transaction(async (session) => {
      const { rows } = await session.query<{ status: TenantStatus }>(
        `UPDATE ${tenants}
         SET status = coalesce(CASE WHEN metadata ->> $2 IN (${restorable}) THEN metadata ->> $2 END, 'active'),
             block_reason = NULL, block_message = NULL, block_at = NULL, block_until = NULL,
             metadata = metadata - $2, updated_at = now()
         WHERE id = $1 AND status = 'blocked'${expiredOnly ? ' AND block_until <= now()' : ''}
         RETURNING status`,
        [tenantId, UNBLOCK_STATUS_KEY],
      );
      const status = rows[0]?.status;
      if (status !== undefined) {
        await options.outbox?.enqueue([statusReport(tenantId, status, at, reason)], { executor: session });
      }
      return status;
    });
  }

  async function afterLift(
    tenantId: TenantId,
    status: TenantStatus,
    action: 'unblock' | 'expire',
    reason: string,
    actor?: KillSwitchActor,
  ) {
    const at = now();
    await publish({ type: 'tenant.unblocked', tenantId, at: at.toISOString(), origin });
    await audit({
      type: action === 'expire' ? 'tenant_block_expired' : 'tenant_unblocked',
      severity: 'medium',
      tenantId,
      ...(actor === undefined ? {} : { actor }),
      details: { reason, status },
      at,
    });
    options.onAction?.(action);
    logger.info(
      { tenantId, status, reason },
      action === 'expire' ? 'Tenant block expired' : 'Tenant unblocked',
    );
  }

  async function liftExpired(): Promise<TenantId[]> {
    const { rows: due } = await driver.query<{ id: string }>(
      `SELECT id FROM ${tenants} WHERE status = 'blocked' AND block_until <= now() ORDER BY block_until LIMIT 1000`,
    );
    const lifted: TenantId[] = [];
    for (const { id } of due) {
      const tenantId = id as TenantId;
      const status = await lift(tenantId, true, 'block_expired');
      if (status === undefined) continue; // another instance lifted it first
      lifted.push(tenantId);
      await afterLift(tenantId, status, 'expire', 'block_expired');
    }
    return lifted;
  }

  function scheduleSweep(): void {
    timer = setTimeout(() => {
      sweeping = liftExpired()
        .then(
          () => {
            if (sweepFailing) logger.info({}, 'Expired blocks are checked again');
            sweepFailing = false;
          },
          (error) => {
            if (!sweepFailing) {
              logger.warn(
                { err: errorMessage(error) },
                'Expired blocks could not be checked; retrying every interval (logged once until it recovers)',
              );
            }
            sweepFailing = true;
          },
        )
        .finally(() => {
          sweeping = undefined;
          if (timer !== undefined) scheduleSweep();
        });
    }, intervalMs);
    timer.unref?.();
  }

  return {
    block,
    async unblock(rawTenantId, unblockOptions = {}) {
      const tenantId = parseTenantId(rawTenantId);
      const reason = unblockOptions.reason ?? 'unblocked';
      const status = await lift(tenantId, false, reason);
      if (status === undefined) return { tenantId, unblocked: false };
      await afterLift(tenantId, status, 'unblock', reason, unblockOptions.actor);
      return { tenantId, unblocked: true, status };
    },
    liftExpired,
    start() {
      if (timer !== undefined) return;
      scheduleSweep();
    },
    async stop() {
      const current = timer;
      timer = undefined;
      if (current !== undefined) clearTimeout(current);
      await sweeping;
    },
  };
}
