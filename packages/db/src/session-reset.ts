import type pg from 'pg';

/**
 * Session reset of pooled connections.
 *
 * A unit of work ends with `DISCARD ALL` sent in the same socket write as its COMMIT / ROLLBACK (it cannot
 * run inside the transaction block, but it can follow it on the wire): WITH HOLD cursors, temporary
 * tables, LISTEN registrations, session-level settings (`set_config(…, false)`, `SET`), `SET ROLE` /
 * `SET SESSION AUTHORIZATION`, session advisory locks, prepared statements and cached plans are gone
 * before the connection returns to the pool. A connection this package did not reset itself after its
 * last use (a new connection, or one your own code used through a shared `pool`) gets `DISCARD ALL`
 * before its BEGIN instead, in the same write as the scope.
 */
export const RESET_SQL = 'DISCARD ALL';

const acquisitions = new WeakMap<object, number>();
const resetAt = new WeakMap<object, number>();
const tracked = new WeakSet<object>();

/** Counts the checkouts of `pool`'s connections, so a connection used by other code is recognised. */
export function trackPool(pool: pg.Pool): void {
  if (tracked.has(pool)) return;
  tracked.add(pool);
  pool.on('acquire', (client) => {
    acquisitions.set(client, (acquisitions.get(client) ?? 0) + 1);
  });
}

/** True when this package reset `client` at the end of its previous checkout (nothing ran on it since). */
export function isResetByUs(client: pg.ClientBase): boolean {
  const count = acquisitions.get(client);
  return count !== undefined && resetAt.get(client) === count - 1;
}

/**
 * Records that `client` was reset at the end of the current checkout. node-postgres remembers which
 * named statements it prepared; `DISCARD ALL` deallocated them on the server, so that memory is cleared.
 */
export function markReset(client: pg.ClientBase): void {
  resetAt.set(client, acquisitions.get(client) ?? -1);
  forgetPreparedStatements(client);
}

/** Clears node-postgres' memory of the named statements it prepared (call when `DISCARD ALL` is sent). */
export function forgetPreparedStatements(client: pg.ClientBase): void {
  const connection = (client as unknown as { connection?: { parsedStatements?: Record<string, unknown> } })
    .connection;
  if (connection?.parsedStatements !== undefined) connection.parsedStatements = {};
}
