import type { Catalog } from '@mt-paas/db';
import { and, desc, eq, inArray, sql } from 'drizzle-orm';
import type { LifecycleAction } from './lifecycle.js';

/** A recorded provisioning job (a row of the catalog's `provisioning_jobs`). */
export interface ProvisioningJob {
  id: string;
  tenantId: string;
  action: LifecycleAction | string;
  /** The last step reached (`storage`, `hooks.afterOnboard`, `activate`, …). */
  step: string | null;
  state: 'pending' | 'running' | 'succeeded' | 'failed' | 'cancelled';
  /** How many times the job was started (a resumed job counts again). */
  attempts: number;
  error: string | null;
  details: Record<string, unknown> | null;
  createdAt: Date;
  updatedAt: Date;
}

/** Reads and writes the jobs of the catalog's `provisioning_jobs` table. */
export interface JobLog {
  /**
   * Starts a job: resumes the newest unfinished (`running`/`failed`/`pending`) job of the same action
   * when `resume` is set (attempts + 1), else inserts a new one.
   */
  start(
    tenantId: string,
    action: string,
    options?: { resume?: boolean; details?: Record<string, unknown> },
  ): Promise<ProvisioningJob>;
  /** Records the step the job reached (and merges `details`). */
  step(jobId: string, step: string, details?: Record<string, unknown>): Promise<void>;
  succeed(jobId: string, details?: Record<string, unknown>): Promise<void>;
  fail(jobId: string, error: unknown): Promise<void>;
  /** Jobs of a tenant, newest first. */
  list(tenantId: string, options?: { limit?: number }): Promise<ProvisioningJob[]>;
}

/** The job log over a catalog. */
export function createJobLog(catalog: Catalog): JobLog {
  const jobs = catalog.tables.provisioningJobs;
  const db = catalog.driver.db;
  const merge = (details: Record<string, unknown> | undefined) =>
    details === undefined
      ? {}
      : { details: sql`coalesce(${jobs.details}, '{}'::jsonb) || ${JSON.stringify(details)}::jsonb` };
  return {
    async start(tenantId, action, options = {}) {
      if (options.resume) {
        const open = await db
          .select()
          .from(jobs)
          .where(
            and(
              eq(jobs.tenantId, tenantId),
              eq(jobs.action, action),
              inArray(jobs.state, ['pending', 'running', 'failed']),
            ),
          )
          .orderBy(desc(jobs.createdAt))
          .limit(1);
        const found = open[0];
        if (found !== undefined) {
          const rows = await db
            .update(jobs)
            .set({
              state: 'running',
              attempts: sql`${jobs.attempts} + 1`,
              error: null,
              updatedAt: sql`now()`,
              ...merge({ ...options.details, resumedFrom: found.step }),
            })
            .where(eq(jobs.id, found.id))
            .returning();
          return rows[0] as ProvisioningJob;
        }
      }
      const rows = await db
        .insert(jobs)
        .values({
          tenantId,
          action,
          state: 'running',
          attempts: 1,
          step: 'start',
          details: options.details ?? {},
        })
        .returning();
      return rows[0] as ProvisioningJob;
    },
    async step(jobId, step, details) {
      await db
        .update(jobs)
        .set({ step, updatedAt: sql`now()`, ...merge(details) })
        .where(eq(jobs.id, jobId));
    },
    async succeed(jobId, details) {
      await db
        .update(jobs)
        .set({ state: 'succeeded', step: 'done', error: null, updatedAt: sql`now()`, ...merge(details) })
        .where(eq(jobs.id, jobId));
    },
    async fail(jobId, error) {
      const message = error instanceof Error ? error.message : String(error);
      await db
        .update(jobs)
        .set({ state: 'failed', error: message.slice(0, 2000), updatedAt: sql`now()` })
        .where(eq(jobs.id, jobId));
    },
    async list(tenantId, options = {}) {
      const rows = await db
        .select()
        .from(jobs)
        .where(eq(jobs.tenantId, tenantId))
        .orderBy(desc(jobs.createdAt))
        .limit(Math.min(Math.max(options.limit ?? 50, 1), 1000));
      return rows as ProvisioningJob[];
    },
  };
}
