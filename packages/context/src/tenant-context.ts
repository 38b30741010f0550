import { AsyncLocalStorage } from 'node:async_hooks';
import { randomUUID } from 'node:crypto';
import { MtPaasError } from './errors.js';
import { parseTenantId, type TenantId } from './tenant-id.js';
import type { Tenant, TenantUser } from './types.js';

/** What a unit of work knows about the tenant it runs for. Frozen once created. */
export interface TenantContext {
  /** The tenant id (always validated). */
  readonly tenantId: TenantId;
  /**
   * The full tenant record, when the caller resolved it (the request pipeline does): a frozen
   * copy, so code running for one request cannot change the record a cache shares with others.
   */
  readonly tenant: Tenant | undefined;
  /** Correlates logs, audit events and outgoing calls. Generated when not given. */
  readonly requestId: string;
  /** The authenticated user, if any. */
  readonly user: Readonly<TenantUser> | undefined;
}

/** Input of {@link runWithTenant}: a tenant id or a tenant record, plus optional request id and user. */
export interface TenantContextInput {
  /** The tenant id; validated with `parseTenantId`. Optional when `tenant` is given. */
  tenantId?: string;
  /** The full tenant record; its id must equal `tenantId` when both are given. */
  tenant?: Tenant;
  /** @default a random UUID */
  requestId?: string;
  user?: TenantUser;
}

const storage = new AsyncLocalStorage<TenantContext>();

/**
 * A context built by {@link createTenantContext}: only these skip validation in `runWithTenant`. The private
 * field is the proof (`#validated in value`), checked without the per-request `WeakSet` entry an earlier
 * version kept (an ephemeron per request for the garbage collector to trace). Frozen like any context.
 */
class ValidatedTenantContext implements TenantContext {
  readonly tenantId: TenantId;
  readonly tenant: Tenant | undefined;
  readonly requestId: string;
  readonly user: Readonly<TenantUser> | undefined;
  readonly #validated = true;

  constructor(
    tenantId: TenantId,
    tenant: Tenant | undefined,
    requestId: string,
    user: Readonly<TenantUser> | undefined,
  ) {
    this.tenantId = tenantId;
    this.tenant = tenant;
    this.requestId = requestId;
    this.user = user;
    Object.freeze(this);
  }

  static isValidated(value: unknown): value is ValidatedTenantContext {
    return typeof value === 'object' && value !== null && #validated in value;
  }
}

/** Records copied by {@link frozenRecord}: deeply frozen already, so they are shared instead of copied again. */
const deeplyFrozen = new WeakSet<object>();

/** A deep copy of plain objects and arrays, frozen; other values (dates, class instances) are kept as they are. */
function frozenCopy<T>(value: T): T {
  if (Array.isArray(value)) return Object.freeze(value.map((item) => frozenCopy(item))) as T;
  if (typeof value === 'object' && value !== null) {
    const prototype = Object.getPrototypeOf(value);
    if (prototype === Object.prototype || prototype === null) {
      const copy: Record<string, unknown> = {};
      for (const [key, item] of Object.entries(value)) copy[key] = frozenCopy(item);
      return Object.freeze(copy) as T;
    }
  }
  return value;
}

/**
 * The frozen deep copy of a tenant record. A record this function returned earlier is returned as it is:
 * a cache that keeps `context.tenant` of one context builds the next contexts for that tenant without
 * copying the record again. (Only the top-level copy is remembered: that is what callers hand back.)
 */
function frozenRecord(tenant: Tenant): Tenant {
  if (deeplyFrozen.has(tenant)) return tenant;
  const copy = frozenCopy(tenant);
  deeplyFrozen.add(copy);
  return copy;
}

/** Builds the frozen context `runWithTenant` runs with. Validates the tenant id. */
export function createTenantContext(input: TenantContextInput): TenantContext {
  const rawId = input.tenantId ?? input.tenant?.id;
  const tenantId = parseTenantId(rawId);
  if (input.tenant !== undefined && input.tenant.id !== tenantId) {
    throw new MtPaasError(
      'CROSS_TENANT_ACCESS',
      `The tenant record "${input.tenant.id}" does not match the tenant id "${tenantId}"; pass one tenant only.`,
    );
  }
  const user =
    input.user === undefined
      ? undefined
      : Object.freeze({ ...input.user, roles: Object.freeze([...input.user.roles]) });
  return new ValidatedTenantContext(
    tenantId,
    input.tenant === undefined ? undefined : frozenRecord(input.tenant),
    input.requestId ?? randomUUID(),
    user,
  );
}

/**
 * Runs `fn` with `context` as the current tenant. Everything `fn` starts — awaits, timers,
 * streams, listeners registered inside it — sees this tenant; when `fn` returns, the outer
 * tenant (if any) is current again.
 *
 * @example
 * await runWithTenant({ tenantId: 'univ_8' }, async () => listCourses());
 */
export function runWithTenant<T>(context: TenantContextInput | TenantContext, fn: () => T): T {
  // A context from createTenantContext (or tryCurrentTenant) is reused as is; anything else —
  // a plain object, even a frozen one that looks like a context — is validated first.
  const frozen = ValidatedTenantContext.isValidated(context)
    ? context
    : createTenantContext(context as TenantContextInput);
  return storage.run(frozen, fn);
}

/** The current tenant context, or `undefined` outside `runWithTenant`. */
export function tryCurrentTenant(): TenantContext | undefined {
  return storage.getStore();
}

/**
 * The current tenant context.
 *
 * @throws MtPaasError `TENANT_CONTEXT_MISSING` outside `runWithTenant`.
 */
export function requireTenant(): TenantContext {
  const context = storage.getStore();
  if (context === undefined) {
    throw new MtPaasError(
      'TENANT_CONTEXT_MISSING',
      'No tenant context: run this code inside runWithTenant() (the mt-paas request pipeline does it for every request), or pass the tenant explicitly.',
    );
  }
  return context;
}

/**
 * The current tenant's id — the common case of {@link requireTenant}.
 *
 * @throws MtPaasError `TENANT_CONTEXT_MISSING` outside `runWithTenant`.
 */
export function currentTenant(): TenantId {
  return requireTenant().tenantId;
}
