import { AsyncLocalStorage } from 'node:async_hooks';
import { MtPaasError } from '@mt-paas/context';
import type { SqlDriver } from '@mt-paas/db';
import type { ReceiptStore } from '@mt-paas/marketplace';

type Action = () => Promise<unknown>;

/**
 * Work a marketplace handler must do once its delivery's receipt has committed: provisioning (tenant
 * storage is created on other connections, and on the embedded database a tenant unit of work cannot run
 * inside the catalog transaction at all) and the kill switch (its `tenant.blocked` event must follow the
 * commit, or an instance re-reading the row would cache the old status).
 */
export interface AfterCommit {
  /** Queues `action` to run after the current delivery's receipt commits (throws outside a delivery). */
  defer(action: Action): void;
  /** Wraps a receipt store so queued actions run after `once` commits. */
  wrap(store: ReceiptStore): ReceiptStore;
}

/**
 * When a deferred action fails the receipt is already stored: it is deleted again (by its webhook id) so
 * the marketplace's retry of the delivery is processed instead of answered "duplicate", and the error
 * goes back to the receiver (a 5xx). Every action is idempotent (onboarding resumes, block / suspend are
 * no-ops when repeated), so the retry completes what the first attempt started.
 */
export function createAfterCommit(catalog: { driver: SqlDriver; schema: string }): AfterCommit {
  const queues = new AsyncLocalStorage<Action[]>();
  const table = `"${catalog.schema}"."webhook_receipts"`;
  return {
    defer(action) {
      const queue = queues.getStore();
      if (queue === undefined) {
        throw new MtPaasError('INTERNAL', 'A deferred marketplace action was queued outside a delivery.');
      }
      queue.push(action);
    },
    wrap(store) {
      return {
        async once(key, apply, staleAnswer) {
          const queue: Action[] = [];
          const outcome = await queues.run(queue, () => store.once(key, apply, staleAnswer));
          if (outcome.result !== 'processed') return outcome;
          try {
            for (const action of queue) await action();
          } catch (error) {
            await catalog.driver
              .query(`DELETE FROM ${table} WHERE webhook_id = $1`, [key.webhookId])
              .catch(() => {});
            throw error;
          }
          return outcome;
        },
      };
    },
  };
}
