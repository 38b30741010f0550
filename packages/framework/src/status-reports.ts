import type { TenantStatus } from '@mt-paas/context';
import type { Catalog } from '@mt-paas/db';
import { type Outbox, tenantStatusMessage } from '@mt-paas/marketplace';

/**
 * The provisioning actions whose job changes the tenant's status. `block` / `unblock` here are the
 * provisioner's (the CLI's); the kill switch of `@mt-paas/control` reports its own in the same transaction
 * and writes no provisioning job, so nothing is reported twice.
 */
export const REPORTED_ACTIONS = [
  'onboard',
  'suspend',
  'resume',
  'block',
  'unblock',
  'offboard',
  'restore',
  'purge',
] as const;

/** The status reports of the tenant lifecycle (see {@link createStatusReports}). */
export interface StatusReports {
  /**
   * Writes a `tenant.status` outbox message for every succeeded lifecycle job not reported yet, oldest
   * first, and marks the job reported in the same transaction. Returns how many were written.
   */
  flush(): Promise<number>;
}

interface JobRow {
  id: string;
  tenant_id: string;
  action: string;
  to_status: string | null;
  reason: string | null;
  updated_at: Date | string;
}

const BATCH = 200;

/**
 * Reports every status change of the tenant lifecycle to the marketplace through the outbox. The record
 * of a transition is its succeeded `provisioning_jobs` row (written by whoever drove it: a marketplace
 * delivery, `mt.onboard`, the CLI in another process); each one becomes one message, id
 * `status:<tenant>:job:<job id>`, written in one transaction with the job's `status_report` column (catalog migration 0004) — so a
 * crash at any point neither loses nor repeats a report, and instances flushing at once write it once.
 */
export function createStatusReports(deps: { catalog: Catalog; outbox: Outbox }): StatusReports {
  const { catalog, outbox } = deps;
  const jobs = `"${catalog.schema}"."provisioning_jobs"`;
  return {
    async flush() {
      let written = 0;
      for (;;) {
        const { rows } = await catalog.driver.query<JobRow>(
          `SELECT id, tenant_id, action, details ->> 'to' AS to_status, details ->> 'reason' AS reason, updated_at
           FROM ${jobs}
           WHERE state = 'succeeded' AND action = ANY($1::text[]) AND status_report IS NULL
           ORDER BY updated_at, created_at, id LIMIT ${BATCH}`,
          [[...REPORTED_ACTIONS]],
        );
        for (const row of rows) {
          const id = `status:${row.tenant_id}:job:${row.id}`;
          await catalog.driver.transaction(async (session) => {
            // The mark decides who writes the message (the row lock serialises instances).
            const claimed = await session.query(
              `UPDATE ${jobs} SET status_report = $2 WHERE id = $1 AND status_report IS NULL RETURNING id`,
              [row.id, id],
            );
            if (claimed.rows.length === 0 || row.to_status === null) return;
            written += await outbox.enqueue(
              [
                tenantStatusMessage({
                  id,
                  tenantId: row.tenant_id,
                  status: row.to_status as TenantStatus,
                  reason: row.reason ?? row.action,
                  at: new Date(row.updated_at),
                }),
              ],
              { executor: session },
            );
          });
        }
        if (rows.length < BATCH) return written;
      }
    },
  };
}
