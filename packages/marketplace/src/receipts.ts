import { MtPaasError } from '@mt-paas/context';
import type { SqlDriver, SqlSession } from '@mt-paas/db';

/** The answer given to a delivery, stored so a duplicate gets it again. */
export interface StoredAnswer {
  status: number;
  body: unknown;
}

/** What is known about a delivery before it is processed. */
export interface ReceiptKey {
  /** `webhook-id` (or the `Idempotency-Key` of an unsigned delivery). */
  webhookId: string;
  type: string;
  tenantId?: string | undefined;
  /** Deliveries of one tenant with the same key apply in `occurredAt` order. */
  orderingKey?: string | undefined;
  occurredAt: Date;
}

/** How {@link ReceiptStore.once} ended. */
export interface ReceiptOutcome {
  answer: StoredAnswer;
  /** `duplicate`: answered from the first delivery; `stale`: a newer event of the same kind was applied. */
  result: 'processed' | 'duplicate' | 'stale';
}

/**
 * Remembers deliveries (the catalog's `webhook_receipts`) so each id is processed once.
 * Implementations: {@link createCatalogReceiptStore} (Postgres, shared by every instance) and
 * {@link createMemoryReceiptStore} (one process, tests).
 */
export interface ReceiptStore {
  /**
   * Runs `apply` unless the id was processed before (→ the stored answer) or a newer event with the
   * same tenant and ordering key was applied (→ `staleAnswer`, stored). When `apply` throws nothing
   * is stored: the marketplace's retry is processed. `apply` receives the transaction the receipt
   * is written in (catalog store), so a handler's own writes commit or roll back with it; calls through
   * the same catalog driver made from `apply` run in it too (`@mt-paas/db`'s ambient transaction).
   */
  once(
    key: ReceiptKey,
    apply: (transaction: SqlSession | undefined) => Promise<StoredAnswer>,
    staleAnswer: StoredAnswer,
  ): Promise<ReceiptOutcome>;
}

/** Options of {@link createCatalogReceiptStore}. */
export interface CatalogReceiptStoreOptions {
  /** The catalog's driver (`catalog.driver`). */
  driver: SqlDriver;
  /** The catalog's schema (`catalog.schema`). @default 'mt_paas' */
  schema?: string;
}

/** Validates and quotes a catalog schema name. */
export function catalogTable(schema: string | undefined, table: string): string {
  const name = schema ?? 'mt_paas';
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(name)) {
    throw new MtPaasError('CONFIG_INVALID', `Catalog schema "${name}" is not a plain lower-case identifier.`);
  }
  return `"${name}"."${table}"`;
}

/**
 * Receipts in the catalog's `webhook_receipts`, in one transaction per delivery: the receipt row
 * (its primary key makes a concurrent duplicate wait for the first and then read its answer), a
 * transaction-scoped advisory lock per tenant and ordering key, the ordering check, the handler,
 * and the stored answer commit together.
 */
export function createCatalogReceiptStore(options: CatalogReceiptStoreOptions): ReceiptStore {
  const table = catalogTable(options.schema, 'webhook_receipts');
  const { driver } = options;
  return {
    async once(key, apply, staleAnswer) {
      return driver.transaction(async (session): Promise<ReceiptOutcome> => {
        const inserted = await session.query(
          `INSERT INTO ${table} (webhook_id, type, tenant_id, result, ordering_key, occurred_at)
           VALUES ($1, $2, $3, 'processing', $4, $5) ON CONFLICT (webhook_id) DO NOTHING RETURNING webhook_id`,
          [key.webhookId, key.type, key.tenantId ?? null, key.orderingKey ?? null, key.occurredAt],
        );
        if (inserted.rows.length === 0) {
          const first = await session.query<{ details: { answer?: StoredAnswer } | null }>(
            `SELECT details FROM ${table} WHERE webhook_id = $1`,
            [key.webhookId],
          );
          const answer = first.rows[0]?.details?.answer;
          if (answer === undefined) {
            throw new MtPaasError(
              'CONFLICT',
              `Delivery "${key.webhookId}" was received before but has no stored answer; retry later.`,
              { retryAfterSeconds: 5 },
            );
          }
          return { answer, result: 'duplicate' };
        }
        let stale = false;
        if (key.tenantId !== undefined && key.orderingKey !== undefined) {
          await session.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 7406))', [
            `mt-paas-webhook:${key.tenantId}:${key.orderingKey}`,
          ]);
          const newer = await session.query(
            `SELECT 1 FROM ${table} WHERE tenant_id = $1 AND ordering_key = $2 AND result = 'processed'
             AND occurred_at > $3 AND webhook_id <> $4 LIMIT 1`,
            [key.tenantId, key.orderingKey, key.occurredAt, key.webhookId],
          );
          stale = newer.rows.length > 0;
        }
        const answer = stale ? staleAnswer : await apply(session);
        await session.query(`UPDATE ${table} SET result = $2, details = $3 WHERE webhook_id = $1`, [
          key.webhookId,
          stale ? 'ignored' : 'processed',
          JSON.stringify({ answer }),
        ]);
        return { answer, result: stale ? 'stale' : 'processed' };
      });
    },
  };
}

/**
 * Receipts in process memory: one instance only (a restart forgets them). For tests and
 * single-process demos; use {@link createCatalogReceiptStore} in production.
 */
export function createMemoryReceiptStore(): ReceiptStore {
  const answers = new Map<string, StoredAnswer>();
  const inFlight = new Map<string, Promise<unknown>>();
  const latest = new Map<string, number>();
  const chains = new Map<string, Promise<unknown>>();
  const serialize = <T>(lockKey: string | undefined, fn: () => Promise<T>): Promise<T> => {
    if (lockKey === undefined) return fn();
    const previous = chains.get(lockKey) ?? Promise.resolve();
    const next = previous.then(fn, fn);
    chains.set(
      lockKey,
      next.catch(() => {}),
    );
    return next;
  };
  return {
    async once(key, apply, staleAnswer) {
      for (;;) {
        const stored = answers.get(key.webhookId);
        if (stored !== undefined) return { answer: stored, result: 'duplicate' };
        const running = inFlight.get(key.webhookId);
        if (running === undefined) break;
        await running.catch(() => {});
      }
      const orderKey =
        key.tenantId !== undefined && key.orderingKey !== undefined
          ? `${key.tenantId}\u0000${key.orderingKey}`
          : undefined;
      const work = serialize(orderKey, async (): Promise<ReceiptOutcome> => {
        const newest = orderKey === undefined ? undefined : latest.get(orderKey);
        const stale = newest !== undefined && newest > key.occurredAt.getTime();
        const answer = stale ? staleAnswer : await apply(undefined);
        answers.set(key.webhookId, answer);
        if (!stale && orderKey !== undefined) {
          latest.set(orderKey, Math.max(newest ?? 0, key.occurredAt.getTime()));
        }
        return { answer, result: stale ? 'stale' : 'processed' };
      });
      inFlight.set(key.webhookId, work);
      try {
        return await work;
      } finally {
        inFlight.delete(key.webhookId);
      }
    },
  };
}
