import { createHash } from 'node:crypto';
import { parseTenantId, type TenantId } from '@mt-paas/context';

/** Prefix of every Redis key this package writes. */
export const REDIS_KEY_PREFIX = 'mtpaas';

/**
 * Builds a Redis key for one tenant: `<prefix>:{<tenantId>}:<kind>:<parts…>`.
 *
 * The tenant id sits inside a hash tag (`{…}`) so every key of a tenant lands in the same Redis
 * Cluster slot and a Lua script touching several of them stays single-slot. The id is re-checked
 * against the grammar (which forbids `:`, `{`, `}`), so two tenants can never share a key; free-form
 * parts (user ids, meter names) are hashed unless they are plain `[a-z0-9_-]`.
 */
export function tenantKey(
  prefix: string,
  tenantId: TenantId | string,
  kind: string,
  ...parts: string[]
): string {
  const id = parseTenantId(tenantId);
  const safeParts = parts.map(safeKeyPart);
  return [prefix, `{${id}}`, safeKeyPart(kind), ...safeParts].join(':');
}

/** The hash tag Redis Cluster uses to place `key`, per the cluster spec (first `{…}` with content). */
export function hashTagOf(key: string): string {
  const open = key.indexOf('{');
  if (open === -1) return key;
  const close = key.indexOf('}', open + 1);
  if (close === -1 || close === open + 1) return key;
  return key.slice(open + 1, close);
}

const PLAIN_PART = /^[a-z0-9_-]{1,64}$/;

/** A key segment: itself when plain, otherwise `h_` + 24 hex chars of its SHA-256. */
export function safeKeyPart(part: string): string {
  if (PLAIN_PART.test(part)) return part;
  return 'h_' + createHash('sha256').update(part).digest('hex').slice(0, 24);
}
