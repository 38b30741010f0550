import { MtPaasError, type TenantEventBus, type TenantId } from '@mt-paas/context';
import type { ControlPlane } from '@mt-paas/control';
import type { Catalog } from '@mt-paas/db';
import type { Provisioner } from '@mt-paas/provisioning';
import { createTenantLock } from '@mt-paas/provisioning';

/**
 * What a marketplace event makes the framework do once its receipt has committed (onboarding has its own
 * record: the tenant row in `provisioning`).
 */
export type MarketplaceAction =
  | { kind: 'suspend'; tenantId: TenantId; reason: string }
  | { kind: 'offboard'; tenantId: TenantId; reason: string }
  | {
      kind: 'block';
      tenantId: TenantId;
      reason: string;
      gracePeriodHours?: number | undefined;
      /** ISO date. */
      blockAt?: string | undefined;
      message?: string | undefined;
    }
  | { kind: 'unblock'; tenantId: TenantId; reason?: string | undefined; message?: string | undefined }
  /** Every instance drops its cached tenant (a changed subscription). */
  | { kind: 'tenant_changed'; tenantId: TenantId };

/** Durable marketplace actions: a `provisioning_jobs` row written with the receipt, completed after the action. */
export interface MarketplaceActions {
  /**
   * Records `action` in the current transaction (the delivery's receipt transaction) as a `pending` job
   * and returns its id. A job of the same delivery (`deliveryId`) that is still unfinished is reused, so a
   * retried delivery does not queue the action twice. A block or unblock cancels the tenant's unfinished
   * older block / unblock jobs (the newer delivery decides).
   */
  record(action: MarketplaceAction, deliveryId: string | undefined): Promise<string>;
  /**
   * Runs a recorded job once: under a per-tenant advisory lock (its own lock class, so it never waits for
   * provisioning's), skipped when it is already done. A failure marks it `failed` (retried by
   * {@link MarketplaceActions.resume} up to {@link MAX_ACTION_ATTEMPTS} attempts) and is thrown.
   */
  run(jobId: string): Promise<void>;
  /** Runs every unfinished job (a process that died between a receipt and its action), oldest first. */
  resume(): Promise<{ resumed: string[]; failed: Array<{ jobId: string; error: unknown }> }>;
}

/** After this many attempts a failing action is left `failed` for an operator (`mt.provisioner.jobs(id)`). */
export const MAX_ACTION_ATTEMPTS = 5;

const ACTION_PREFIX = 'marketplace.';

/**
 * Actions whose order decides the tenant's final state (the marketplace's `access` ordering key): a newer
 * delivery supersedes the unfinished older ones, so a failed "blocked" retried by the sweep never lands
 * after the "unblocked" that followed it — as the receipts' ordering check refuses an older delivery.
 */
const ACCESS_ACTIONS = [`${ACTION_PREFIX}block`, `${ACTION_PREFIX}unblock`];

interface JobRow {
  id: string;
  tenant_id: string;
  action: string;
  state: string;
  step: string | null;
  attempts: number;
  details: { action?: MarketplaceAction; deliveryId?: string; actingAt?: string } | null;
}

/** The durable marketplace actions of a framework. */
export function createMarketplaceActions(deps: {
  catalog: Catalog;
  provisioner: Provisioner;
  control: ControlPlane;
  events: TenantEventBus;
}): MarketplaceActions {
  const { catalog, provisioner, control, events } = deps;
  const jobs = `"${catalog.schema}"."provisioning_jobs"`;
  const tenants = `"${catalog.schema}"."tenants"`;
  const lock = createTenantLock(catalog, { name: 'mt_paas.marketplace_action', timeoutMs: 30_000 });

  async function perform(action: MarketplaceAction, previousActingAt: string | undefined): Promise<void> {
    switch (action.kind) {
      case 'suspend':
        // Transitions are no-ops once done: a resumed job that already suspended changes nothing.
        await provisioner.suspend(action.tenantId, { reason: action.reason });
        return;
      case 'offboard':
        await provisioner.offboard(action.tenantId, { reason: action.reason });
        return;
      case 'block': {
        // A block is not a no-op when repeated (it re-blocks, audits and reports again): when an earlier
        // attempt of this job got as far as acting and the tenant was blocked since, it is done.
        if (previousActingAt !== undefined) {
          const { rows } = await catalog.driver.query<{ status: string; blocked_at: Date | null }>(
            `SELECT status, blocked_at FROM ${tenants} WHERE id = $1`,
            [action.tenantId],
          );
          const row = rows[0];
          if (
            row?.status === 'blocked' &&
            row.blocked_at !== null &&
            new Date(row.blocked_at).getTime() >= new Date(previousActingAt).getTime()
          ) {
            return;
          }
        }
        await control.block(action.tenantId, {
          reason: action.reason,
          ...(action.gracePeriodHours === undefined ? {} : { gracePeriodHours: action.gracePeriodHours }),
          ...(action.blockAt === undefined ? {} : { blockAt: action.blockAt }),
          ...(action.message === undefined ? {} : { message: action.message }),
        });
        return;
      }
      case 'unblock':
        // Unblocking a tenant that is not blocked is a no-op.
        await control.unblock(action.tenantId, {
          ...(action.reason === undefined ? {} : { reason: action.reason }),
          ...(action.message === undefined ? {} : { message: action.message }),
        });
        return;
      case 'tenant_changed':
        await events.publish({
          type: 'tenant.changed',
          tenantId: action.tenantId,
          at: new Date().toISOString(),
        });
        return;
    }
  }

  async function load(jobId: string): Promise<JobRow | undefined> {
    const { rows } = await catalog.driver.query<JobRow>(
      `SELECT id, tenant_id, action, state, step, attempts, details FROM ${jobs} WHERE id = $1`,
      [jobId],
    );
    return rows[0];
  }

  async function run(jobId: string): Promise<void> {
    const first = await load(jobId);
    if (first === undefined) return;
    await lock.withLock(first.tenant_id, async () => {
      // Re-read under the lock: another instance (or this one's sweep) may have done it meanwhile.
      const job = await load(jobId);
      if (job === undefined || !['pending', 'running', 'failed'].includes(job.state)) return;
      const action = job.details?.action;
      if (action === undefined) {
        throw new MtPaasError('INTERNAL', `Marketplace job ${jobId} has no action recorded.`);
      }
      const previousActingAt = job.step === 'acting' ? job.details?.actingAt : undefined;
      await catalog.driver.query(
        `UPDATE ${jobs} SET state = 'running', step = 'acting', attempts = attempts + 1, error = NULL,
           details = coalesce(details, '{}'::jsonb) || jsonb_build_object('actingAt', $2::text), updated_at = now()
         WHERE id = $1`,
        [jobId, new Date().toISOString()],
      );
      try {
        await perform(action, previousActingAt);
      } catch (error) {
        const message = error instanceof Error ? error.message : String(error);
        await catalog.driver
          .query(`UPDATE ${jobs} SET state = 'failed', error = $2, updated_at = now() WHERE id = $1`, [
            jobId,
            message.slice(0, 2000),
          ])
          .catch(() => {});
        throw error;
      }
      await catalog.driver.query(
        `UPDATE ${jobs} SET state = 'succeeded', step = 'done', error = NULL, updated_at = now() WHERE id = $1`,
        [jobId],
      );
    });
  }

  return {
    async record(action, deliveryId) {
      const name = `${ACTION_PREFIX}${action.kind}`;
      if (deliveryId !== undefined) {
        const { rows } = await catalog.driver.query<{ id: string }>(
          `SELECT id FROM ${jobs} WHERE tenant_id = $1 AND action = $2 AND details ->> 'deliveryId' = $3
             AND state IN ('pending', 'running', 'failed') LIMIT 1`,
          [action.tenantId, name, deliveryId],
        );
        if (rows[0] !== undefined) return rows[0].id;
      }
      if (ACCESS_ACTIONS.includes(name)) {
        await catalog.driver.query(
          `UPDATE ${jobs} SET state = 'cancelled', error = $3, updated_at = now()
           WHERE tenant_id = $1 AND action = ANY($2::text[]) AND state IN ('pending', 'running', 'failed')`,
          [action.tenantId, ACCESS_ACTIONS, `superseded by the newer delivery ${deliveryId ?? '(no id)'}`],
        );
      }
      const { rows } = await catalog.driver.query<{ id: string }>(
        `INSERT INTO ${jobs} (tenant_id, action, step, state, attempts, details)
         VALUES ($1, $2, 'queued', 'pending', 0, $3::jsonb) RETURNING id`,
        [
          action.tenantId,
          name,
          JSON.stringify({ action, ...(deliveryId === undefined ? {} : { deliveryId }) }),
        ],
      );
      return rows[0]!.id;
    },
    run,
    async resume() {
      const { rows } = await catalog.driver.query<{ id: string }>(
        `SELECT id FROM ${jobs} WHERE action LIKE $1 AND (state IN ('pending', 'running')
           OR (state = 'failed' AND attempts < $2)) ORDER BY created_at, id`,
        [`${ACTION_PREFIX}%`, MAX_ACTION_ATTEMPTS],
      );
      const resumed: string[] = [];
      const failed: Array<{ jobId: string; error: unknown }> = [];
      for (const { id } of rows) {
        try {
          await run(id);
          resumed.push(id);
        } catch (error) {
          failed.push({ jobId: id, error });
        }
      }
      return { resumed, failed };
    },
  };
}
