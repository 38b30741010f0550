import { createHmac, randomUUID, timingSafeEqual } from 'node:crypto';
import { MtPaasError } from './errors.js';
import {
  requireTenant,
  runWithTenant,
  type TenantContext,
  type TenantContextInput,
} from './tenant-context.js';
import { parseTenantId } from './tenant-id.js';

/** Header names used to carry the tenant context between services. */
export const CONTEXT_HEADERS = {
  tenantId: 'x-tenant-id',
  requestId: 'x-request-id',
  user: 'x-mt-paas-user',
  signature: 'x-mt-paas-signature',
} as const;

/** Anything that holds request headers: a fetch `Headers`, Node's `IncomingHttpHeaders`, a plain record. */
export type HeaderSource =
  | { get(name: string): string | null }
  | Readonly<Record<string, string | readonly string[] | undefined>>;

/** Options of {@link createContextPropagator}. */
export interface ContextPropagatorOptions {
  /**
   * Shared secret (≥ 32 bytes recommended) that signs outgoing context headers and message envelopes.
   * Every service of the deployment holds the same key.
   */
  signingKey: string;
  /** Keys still accepted when verifying, for rotation; outgoing headers are signed with `signingKey` only. */
  previousKeys?: readonly string[];
  /**
   * Signed headers older than this are refused (replay window); so are headers and envelopes stamped
   * further than this in the future (clock skew). @default 300
   */
  maxAgeSeconds?: number;
  /**
   * Signed envelopes older than this (by their signed `sentAt`) are refused: a message captured off a
   * queue cannot be fed back later. Set it above the longest time a message may wait in your queues.
   * @default 3600
   */
  maxMessageAgeSeconds?: number;
  /**
   * Remembers the ids of envelopes already handled, so each signed envelope runs its handler once
   * (a second delivery is refused with `CONFLICT`). An id is remembered until the envelope's age limit,
   * and forgotten when the handler throws or rejects, so a redelivery after a failure runs again.
   * Give a shared cache when several consumers read the same queue. @default a per-process cache of 100 000 ids
   */
  replayCache?: ReplayCache;
  /** Clock, for tests. @default Date.now */
  now?: () => number;
}

/** The ids of envelopes already handled (see `ContextPropagatorOptions.replayCache`). */
export interface ReplayCache {
  /** Records `id` until `expiresAtMs`; `false` when it is already recorded and not expired (a replay). */
  claim(id: string, expiresAtMs: number): boolean;
  /** Forgets `id` (its handler failed: a redelivery may run it). */
  release(id: string): void;
}

/** Options of {@link createMemoryReplayCache}. */
export interface MemoryReplayCacheOptions {
  /** Most ids kept; the oldest are dropped first. @default 100_000 */
  max?: number;
  /** Clock, for tests. @default Date.now */
  now?: () => number;
}

/**
 * A {@link ReplayCache} in process memory: right for one consumer process; with several, give the
 * propagator a shared one (e.g. Redis `SET id 1 NX PXAT expiresAt` behind this interface).
 */
export function createMemoryReplayCache(options: MemoryReplayCacheOptions = {}): ReplayCache {
  const max = options.max ?? 100_000;
  const now = options.now ?? Date.now;
  const expiries = new Map<string, number>();
  return {
    claim(id, expiresAtMs) {
      const current = now();
      const known = expiries.get(id);
      if (known !== undefined && known > current) return false;
      expiries.delete(id);
      expiries.set(id, expiresAtMs);
      // Oldest first: drop expired ids, then the oldest while over the bound.
      for (const [oldId, expiry] of expiries) {
        if (expiries.size <= max && expiry > current) break;
        expiries.delete(oldId);
      }
      return true;
    },
    release(id) {
      expiries.delete(id);
    },
  };
}

/** A message that carries its tenant context across a queue (seed 004 §5.2). */
export interface MessageEnvelope<T = unknown> {
  /**
   * Unique id of this message, set by `createMessageEnvelope` / `wrapMessage`; required and signed in
   * signed envelopes (replay protection), optional in hand-built unsigned ones.
   */
  id?: string;
  tenantId: string;
  requestId: string;
  userId?: string;
  roles?: string[];
  /** ISO time the envelope was created. */
  sentAt: string;
  payload: T;
  /** HMAC of the envelope, present when created by a propagator with a signing key. */
  signature?: string;
}

/** Carries the current tenant context over HTTP headers and message envelopes, signed. */
export interface ContextPropagator {
  /** Headers for an outgoing service-to-service call, from the current context. */
  toHeaders(context?: TenantContext): Record<string, string>;
  /**
   * Reads a propagated context back. `undefined` when the request carries no tenant header.
   *
   * @throws MtPaasError `UNAUTHENTICATED` when the tenant header is not signed with a known key,
   * was altered, or is older than `maxAgeSeconds`; `INVALID_TENANT_ID` for a malformed id.
   */
  fromHeaders(headers: HeaderSource): TenantContextInput | undefined;
  /** Wraps `payload` with the current context, signed. */
  wrapMessage<T>(payload: T, context?: TenantContext): MessageEnvelope<T>;
  /**
   * Verifies the envelope's signature, its age (`maxMessageAgeSeconds`) and that it was not handled
   * before (`replayCache`), then runs `handler` in its tenant's context.
   *
   * @throws MtPaasError `UNAUTHENTICATED` for a missing or wrong signature, a stale or future `sentAt`;
   * `CONFLICT` for an envelope already handled (acknowledge and drop it).
   */
  runInMessageContext<T, R>(envelope: MessageEnvelope<T>, handler: (payload: T) => R): R;
}

function readHeader(headers: HeaderSource, name: string): string | undefined {
  if (typeof (headers as { get?: unknown }).get === 'function') {
    return (headers as { get(name: string): string | null }).get(name) ?? undefined;
  }
  const record = headers as Readonly<Record<string, string | readonly string[] | undefined>>;
  // Header names are case-insensitive: `X-Tenant-ID` in a hand-built record is the same header.
  let value = record[name];
  if (value === undefined) {
    const key = Object.keys(record).find((candidate) => candidate.toLowerCase() === name);
    if (key !== undefined) value = record[key];
  }
  if (Array.isArray(value)) return value[0];
  return value as string | undefined;
}

function hmac(key: string, data: string): string {
  return createHmac('sha256', key).update(data).digest('base64url');
}

function safeEqual(a: string, b: string): boolean {
  const left = Buffer.from(a);
  const right = Buffer.from(b);
  return left.length === right.length && timingSafeEqual(left, right);
}

function encodeUser(context: TenantContext): string | undefined {
  if (context.user === undefined) return undefined;
  return Buffer.from(JSON.stringify({ id: context.user.id, roles: context.user.roles })).toString(
    'base64url',
  );
}

function decodeUser(encoded: string | undefined): TenantContextInput['user'] {
  if (encoded === undefined || encoded === '') return undefined;
  try {
    const parsed = JSON.parse(Buffer.from(encoded, 'base64url').toString('utf8')) as unknown;
    if (
      typeof parsed === 'object' &&
      parsed !== null &&
      typeof (parsed as { id?: unknown }).id === 'string' &&
      Array.isArray((parsed as { roles?: unknown }).roles) &&
      (parsed as { roles: unknown[] }).roles.every((role) => typeof role === 'string')
    ) {
      return { id: (parsed as { id: string }).id, roles: (parsed as { roles: string[] }).roles };
    }
  } catch {
    // fall through
  }
  throw new MtPaasError(
    'UNAUTHENTICATED',
    `The ${CONTEXT_HEADERS.user} header is malformed; send it as produced by toHeaders().`,
  );
}

/**
 * What an envelope's signature covers. A JSON array, so that no field can spill into the next
 * (a request id holding a newline, a role holding a comma).
 */
function envelopeSigningInput(envelope: MessageEnvelope): string {
  return JSON.stringify([
    'mt-paas-envelope-v3',
    envelope.id ?? null,
    envelope.tenantId,
    envelope.requestId,
    envelope.userId ?? null,
    envelope.roles ?? [],
    envelope.sentAt,
    envelope.payload ?? null,
  ]);
}

function isStringArray(value: unknown): value is string[] {
  return Array.isArray(value) && value.every((item) => typeof item === 'string');
}

function contextFromEnvelope(envelope: MessageEnvelope): TenantContextInput {
  if (typeof envelope !== 'object' || envelope === null) {
    throw new MtPaasError(
      'INVALID_REQUEST',
      'A message envelope must be an object { tenantId, requestId, payload }.',
    );
  }
  const tenantId = parseTenantId(envelope.tenantId);
  if (envelope.roles !== undefined && !isStringArray(envelope.roles)) {
    throw new MtPaasError(
      'INVALID_REQUEST',
      "The message envelope's roles must be a list of strings; publish it with createMessageEnvelope() or wrapMessage().",
    );
  }
  const input: TenantContextInput = { tenantId };
  if (typeof envelope.requestId === 'string' && envelope.requestId !== '')
    input.requestId = envelope.requestId;
  if (typeof envelope.userId === 'string') input.user = { id: envelope.userId, roles: envelope.roles ?? [] };
  return input;
}

/**
 * Creates an unsigned envelope from the current tenant context (or the one given).
 * Use a {@link ContextPropagator} when the queue is reachable by anyone but your services.
 */
export function createMessageEnvelope<T>(
  payload: T,
  context: TenantContext = requireTenant(),
): MessageEnvelope<T> {
  const envelope: MessageEnvelope<T> = {
    id: randomUUID(),
    tenantId: context.tenantId,
    requestId: context.requestId,
    sentAt: new Date().toISOString(),
    payload,
  };
  if (context.user !== undefined) {
    envelope.userId = context.user.id;
    envelope.roles = [...context.user.roles];
  }
  return envelope;
}

/**
 * Runs a message handler in the tenant context the envelope carries. The tenant id is validated
 * first; the handler never runs for a malformed one.
 */
export function runInMessageContext<T, R>(envelope: MessageEnvelope<T>, handler: (payload: T) => R): R {
  const input = contextFromEnvelope(envelope);
  return runWithTenant(input, () => handler(envelope.payload));
}

/**
 * Creates a propagator that signs the tenant context it sends (headers, envelopes) with a shared
 * key, so a tenant header forged by an outside caller is refused when read back.
 */
export function createContextPropagator(options: ContextPropagatorOptions): ContextPropagator {
  if (typeof options.signingKey !== 'string' || options.signingKey.length < 16) {
    throw new MtPaasError(
      'CONFIG_INVALID',
      'createContextPropagator needs a signingKey of at least 16 characters (32+ random bytes recommended), shared by every service.',
    );
  }
  const keys = [options.signingKey, ...(options.previousKeys ?? [])];
  const maxAgeSeconds = options.maxAgeSeconds ?? 300;
  const maxMessageAgeSeconds = options.maxMessageAgeSeconds ?? 3600;
  const now = options.now ?? Date.now;
  const replayCache = options.replayCache ?? createMemoryReplayCache({ now });

  const verify = (data: string, signature: string): boolean =>
    keys.some((key) => safeEqual(hmac(key, data), signature));

  const headerSigningInput = (tenantId: string, requestId: string, user: string, timestamp: string): string =>
    ['mt-paas-headers-v1', tenantId, requestId, user, timestamp].join('\n');

  return {
    toHeaders(context = requireTenant()) {
      const timestamp = String(Math.floor(now() / 1000));
      const user = encodeUser(context) ?? '';
      const headers: Record<string, string> = {
        [CONTEXT_HEADERS.tenantId]: context.tenantId,
        [CONTEXT_HEADERS.requestId]: context.requestId,
        [CONTEXT_HEADERS.signature]: `t=${timestamp},v1=${hmac(
          options.signingKey,
          headerSigningInput(context.tenantId, context.requestId, user, timestamp),
        )}`,
      };
      if (user !== '') headers[CONTEXT_HEADERS.user] = user;
      return headers;
    },

    fromHeaders(headers) {
      const rawTenantId = readHeader(headers, CONTEXT_HEADERS.tenantId);
      if (rawTenantId === undefined) return undefined;
      const signature = readHeader(headers, CONTEXT_HEADERS.signature);
      const match =
        signature === undefined ? null : /^t=(\d{1,12}),v1=([A-Za-z0-9_-]{1,128})$/.exec(signature);
      if (match === null) {
        throw new MtPaasError(
          'UNAUTHENTICATED',
          `The ${CONTEXT_HEADERS.tenantId} header is not signed; service-to-service calls must send the headers produced by toHeaders().`,
        );
      }
      const timestamp = match[1]!;
      const requestId = readHeader(headers, CONTEXT_HEADERS.requestId) ?? '';
      const user = readHeader(headers, CONTEXT_HEADERS.user) ?? '';
      if (!verify(headerSigningInput(rawTenantId, requestId, user, timestamp), match[2]!)) {
        throw new MtPaasError(
          'UNAUTHENTICATED',
          'The propagated tenant context has an invalid signature; check that both services share the same signing key.',
        );
      }
      const ageSeconds = Math.floor(now() / 1000) - Number(timestamp);
      if (ageSeconds > maxAgeSeconds || ageSeconds < -maxAgeSeconds) {
        throw new MtPaasError(
          'UNAUTHENTICATED',
          `The propagated tenant context is ${ageSeconds}s old (limit ${maxAgeSeconds}s); re-sign it per call and check the clocks.`,
        );
      }
      const input: TenantContextInput = { tenantId: parseTenantId(rawTenantId) };
      if (requestId !== '') input.requestId = requestId;
      const decodedUser = decodeUser(user);
      if (decodedUser !== undefined) input.user = decodedUser;
      return input;
    },

    wrapMessage(payload, context = requireTenant()) {
      const envelope = createMessageEnvelope(payload, context);
      envelope.sentAt = new Date(now()).toISOString();
      envelope.signature = hmac(options.signingKey, envelopeSigningInput(envelope));
      return envelope;
    },

    runInMessageContext(envelope, handler) {
      if (typeof envelope !== 'object' || envelope === null) return runInMessageContext(envelope, handler);
      const signature = typeof envelope.signature === 'string' ? envelope.signature : '';
      if (
        signature === '' ||
        typeof envelope.id !== 'string' ||
        !verify(envelopeSigningInput(envelope), signature)
      ) {
        throw new MtPaasError(
          'UNAUTHENTICATED',
          'The message envelope is unsigned or its signature does not match; publish messages with wrapMessage() using the shared signing key.',
        );
      }
      // The same window logic as signed headers: too old is a replay, too far ahead is a forged clock.
      const sentAtMs = typeof envelope.sentAt === 'string' ? Date.parse(envelope.sentAt) : Number.NaN;
      const ageMs = now() - sentAtMs;
      if (
        !Number.isFinite(sentAtMs) ||
        ageMs > maxMessageAgeSeconds * 1000 ||
        ageMs < -maxAgeSeconds * 1000
      ) {
        throw new MtPaasError(
          'UNAUTHENTICATED',
          Number.isFinite(sentAtMs)
            ? `The message envelope is ${Math.round(ageMs / 1000)}s old (limit ${maxMessageAgeSeconds}s, ${maxAgeSeconds}s ahead); drop it, or raise maxMessageAgeSeconds above the longest queue wait and check the clocks.`
            : 'The message envelope has no valid sentAt; publish messages with wrapMessage().',
        );
      }
      const input = contextFromEnvelope(envelope);
      const id = envelope.id;
      if (!replayCache.claim(id, sentAtMs + maxMessageAgeSeconds * 1000)) {
        throw new MtPaasError(
          'CONFLICT',
          `The message envelope ${id.slice(0, 64)} was already handled; acknowledge and drop this delivery.`,
          { details: { envelopeId: id.slice(0, 64) } },
        );
      }
      let result: unknown;
      try {
        result = runWithTenant(input, () => handler(envelope.payload));
      } catch (error) {
        replayCache.release(id);
        throw error;
      }
      if (typeof (result as PromiseLike<unknown> | undefined)?.then === 'function') {
        // The caller gets the original promise; a rejection only frees the id for a redelivery.
        (result as PromiseLike<unknown>).then(undefined, () => replayCache.release(id));
      }
      return result as ReturnType<typeof handler>;
    },
  };
}
