/** What a unit of work can leave at session level, and a probe of it (shared by the pg and PGlite tests). */
import { sql } from 'drizzle-orm';
import type { TenantTransaction } from '../unit-of-work.js';

/** Advisory lock key the leaking unit takes at session level. */
export const LEAK_LOCK = 4_242_001;

type Tx = TenantTransaction;

const rows = async <R>(tx: Tx, text: string): Promise<R[]> => {
  const result = await tx.execute(sql.raw(text));
  return (result as unknown as { rows: R[] }).rows;
};

/**
 * Leaves every kind of session state a unit can create: a WITH HOLD cursor over the tenant's courses, a
 * TEMP table that shadows `courses`, a LISTEN, a session-level setting, a prepared statement and a
 * session advisory lock. Nothing of it is tied to the transaction, so it outlives COMMIT.
 */
export async function leaveSessionState(tx: Tx, marker: string): Promise<void> {
  await tx.execute(sql.raw('DECLARE mt_leak CURSOR WITH HOLD FOR SELECT tenant_id, code FROM courses'));
  await tx.execute(
    sql.raw(
      "CREATE TEMP TABLE courses (tenant_id text DEFAULT 'shadow', id uuid DEFAULT gen_random_uuid(), title text, code text, seats int DEFAULT 1)",
    ),
  );
  await tx.execute(sql.raw('LISTEN mt_leak_channel'));
  await tx.execute(sql.raw(`SELECT set_config('mt_leak.marker', '${marker}', false)`));
  await tx.execute(sql.raw('PREPARE mt_leak_prepared AS SELECT tenant_id, code FROM courses'));
  await tx.execute(sql.raw(`SELECT pg_advisory_lock(${LEAK_LOCK})`));
}

/** What the next unit on the same connection can see of a previous unit's session state. */
export interface SessionProbe {
  cursors: number;
  tempTables: number;
  listening: string[];
  marker: string;
  prepared: number;
  advisoryLocks: number;
  currentUser: string;
}

export async function probeSession(tx: Tx): Promise<SessionProbe> {
  const [row] = await rows<{
    cursors: number;
    temp_tables: number;
    listening: string[] | null;
    marker: string | null;
    prepared: number;
    advisory_locks: number;
    current_user: string;
  }>(
    tx,
    `SELECT (SELECT count(*)::int FROM pg_cursors WHERE name = 'mt_leak') AS cursors,
            (SELECT count(*)::int FROM pg_class WHERE relnamespace = pg_my_temp_schema()) AS temp_tables,
            ARRAY(SELECT pg_listening_channels()::text) AS listening,
            current_setting('mt_leak.marker', true) AS marker,
            (SELECT count(*)::int FROM pg_prepared_statements WHERE name = 'mt_leak_prepared') AS prepared,
            (SELECT count(*)::int FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()
               AND objid = ${LEAK_LOCK}) AS advisory_locks,
            current_user::text AS current_user`,
  );
  return {
    cursors: row!.cursors,
    tempTables: row!.temp_tables,
    listening: row!.listening ?? [],
    marker: row!.marker ?? '',
    prepared: row!.prepared,
    advisoryLocks: row!.advisory_locks,
    currentUser: row!.current_user,
  };
}

/** Reads the WITH HOLD cursor a previous unit left (throws when it is gone). */
export async function fetchLeakedCursor(tx: Tx): Promise<Array<{ tenant_id: string; code: string }>> {
  return rows(tx, 'FETCH ALL FROM mt_leak');
}
