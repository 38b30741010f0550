import { randomUUID } from 'node:crypto';
import { isMtPaasError, MtPaasError, type TenantId, tenantIdProblem } from '@mt-paas/context';
import type { SqlSession } from '@mt-paas/db';
import type { z } from 'zod';
import {
  blockSchema,
  describeIssues,
  envelopeSchema,
  eventTenantId,
  type MarketplaceEvent,
  ORDERING_KEYS,
  type ProvisionRequested,
  parseEvent,
  provisionRequestedSchema,
  type ServiceCancelled,
  type SubscriptionUpdated,
  serviceCancelledSchema,
  type TenantBlocked,
  type TenantUnblocked,
  type UserDeleted,
  unblockSchema,
  userDeletedSchema,
} from './events.js';
import { type RawBody, readBody } from './read-body.js';
import { createMemoryReceiptStore, type ReceiptStore, type StoredAnswer } from './receipts.js';
import type { MarketplaceLogin, MarketplaceSso } from './sso.js';
import {
  decodeWebhookSecret,
  hasWebhookSignature,
  secretsEqual,
  verifyWebhook,
} from './standard-webhooks.js';

/** How a delivery proved it comes from the marketplace. */
export type DeliveryAuth = 'signature' | 'legacy_secret' | 'api_key';

/** What a handler learns about the delivery besides the event data. */
export interface HandlerContext {
  /** The delivery id (`webhook-id`, `Idempotency-Key`, or generated for an unsigned delivery without one). */
  webhookId: string;
  /** When the marketplace says the event happened. */
  occurredAt: Date;
  /** How the delivery was authenticated. */
  auth: DeliveryAuth;
  /**
   * The catalog transaction the receipt is written in (with `createCatalogReceiptStore`): write the
   * state change — and `outbox.enqueue(…, { executor: transaction })` — in it, and it commits with the
   * receipt or not at all. `undefined` with the in-memory store. Calls through the same catalog
   * (`catalog.tenants.*`, `catalog.driver.db`) made from the handler run in this transaction too.
   */
  transaction: SqlSession | undefined;
}

/** A handler's answer, sync or async, or nothing. */
// biome-ignore lint/suspicious/noConfusingVoidType: handlers written as `async () => {}` return Promise<void>
export type Awaitable<T> = T | undefined | void | Promise<T | undefined | void>;

/** What `onProvisionRequested` may answer. */
export interface ProvisionResult {
  /** Where the new tenant's users go (the seed's `access_url`). */
  accessUrl?: string;
}

/** What `onSsoLogin` answers: usually a redirect with the app's own session cookie. */
export interface SsoLoginResponse {
  /** Sends `302 Location: redirectTo`. */
  redirectTo?: string;
  /** @default 302 with `redirectTo`, else 200 */
  status?: number;
  headers?: Record<string, string | string[]>;
  /** JSON body (when not redirecting). */
  body?: unknown;
}

/**
 * The app's side: what to do for each marketplace event. This package never changes tenants
 * itself — it calls these (with `@mt-paas/provisioning`, `@mt-paas/control` or the app's own code).
 * A handler that throws leaves the delivery unprocessed: the marketplace's retry runs it again.
 */
export interface MarketplaceHandlers {
  /** Creates the tenant (idempotently: a retry may come with another delivery id); may answer its `accessUrl`. */
  onProvisionRequested(data: ProvisionRequested, context: HandlerContext): Awaitable<ProvisionResult>;
  onSubscriptionUpdated(data: SubscriptionUpdated, context: HandlerContext): Awaitable<unknown>;
  /** May answer the tenants it suspended. */
  onServiceCancelled(data: ServiceCancelled, context: HandlerContext): Awaitable<{ tenantIds?: string[] }>;
  /** Answers the tenants it deleted (the seed's `deleted_tenants`). */
  onUserDeleted(data: UserDeleted, context: HandlerContext): Awaitable<{ deletedTenants: string[] }>;
  onBlocked(data: TenantBlocked, context: HandlerContext): Promise<unknown> | unknown;
  onUnblocked(data: TenantUnblocked, context: HandlerContext): Promise<unknown> | unknown;
  /** Starts the app's own session for a verified marketplace login (needed when `sso` is set). */
  onSsoLogin?(login: MarketplaceLogin): Promise<SsoLoginResponse> | SsoLoginResponse;
}

/** Options of {@link createMarketplaceReceiver}. */
export interface MarketplaceReceiverOptions {
  /** This service's marketplace id (`service.id`); the seed 001 block routes name it in the path. */
  serviceId: string;
  handlers: MarketplaceHandlers;
  /**
   * Where deliveries are remembered. Use `createCatalogReceiptStore(catalog)` with more than one
   * instance or across restarts. @default createMemoryReceiptStore()
   */
  receipts?: ReceiptStore;
  /** Standard Webhooks secrets (`whsec_…`, `marketplace.webhooks.secrets`); several during a rotation. */
  secrets?: readonly string[];
  /** Opt-in: the seed's `X-Webhook-Secret` on the two seed webhook routes (`marketplace.webhooks.legacy_secret`). */
  legacySecret?: string;
  /**
   * Keys the marketplace may send as `X-API-Key` (or `Authorization: Bearer`) on `/api/tenant/create`
   * and — when no signing secret is configured — on the block/unblock routes. @default [] (refused)
   */
  apiKeys?: readonly string[];
  /** Accepted clock distance of a signed delivery, both ways (`marketplace.webhooks.tolerance_seconds`). @default 300 */
  toleranceSeconds?: number;
  /** Largest accepted body. @default 262144 (256 KiB) */
  maxBodyBytes?: number;
  /** Marketplace SSO; adds `GET <ssoCallbackPath>?token=…` (needs `handlers.onSsoLogin`). */
  sso?: MarketplaceSso;
  /** Path of the SSO callback (`auth.marketplace_sso.callback_url`). @default '/auth/marketplace/callback' */
  ssoCallbackPath?: string;
  /** Told about every failed handler (the delivery answered 5xx and stays retryable). */
  onHandlerError?: (error: unknown, context: { type: string; webhookId: string }) => void;
  /** The clock. @default () => new Date() */
  now?: () => Date;
}

/** A request as the core reads it. Adapters build it; the body stays raw (signatures are over bytes). */
export interface MarketplaceRequest {
  method: string;
  /** Path without the query string, as the server received it. */
  path: string;
  /** The query string (with or without `?`). */
  query?: string;
  /** Lower-case header names. */
  headers: Readonly<Record<string, string | readonly string[] | undefined>>;
  body?: RawBody;
}

/** A response ready to send. */
export interface MarketplaceResponse {
  status: number;
  headers: Record<string, string | string[]>;
  /** Serialised JSON (or empty for a redirect). */
  body: string;
}

/** One route the receiver answers (for adapters that register routes). */
export interface MarketplaceRoute {
  method: 'GET' | 'POST';
  /** The path with `:params`, as Fastify/Express/Hono spell it. */
  path: string;
}

/** The framework-free marketplace endpoint: `(request) → response`. */
export interface MarketplaceReceiver {
  readonly routes: readonly MarketplaceRoute[];
  /** True when the request is for one of {@link routes} (any method: a wrong one gets 405). */
  matches(path: string): boolean;
  handle(request: MarketplaceRequest): Promise<MarketplaceResponse>;
  /** The error response for `path` (seed shape on the seed routes): for errors an adapter meets itself. */
  errorResponse(path: string, error: unknown): MarketplaceResponse;
}

/** The seed 002 routes (answered with the seed's own error shape `{ "detail": "…" }`). */
export const LEGACY_ROUTES = {
  create: '/api/tenant/create',
  userDeleted: '/api/tenant/webhook/user-deleted',
  serviceCancelled: '/api/tenant/webhook/service-cancelled',
} as const;

/** The signed, versioned event route. */
export const EVENTS_ROUTE = '/api/mt-paas/v1/events';

const BLOCK_ROUTE = /^\/api\/v1\/services\/([^/]+)\/tenants\/([^/]+)\/(block|unblock)$/;
const JSON_HEADERS = { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' };
const UTF8 = new TextDecoder('utf-8', { fatal: true });

type RouteKind = 'create' | 'userDeleted' | 'serviceCancelled' | 'block' | 'events' | 'sso';

interface Matched {
  kind: RouteKind;
  legacy: boolean;
  method: 'GET' | 'POST';
  serviceId?: string;
  tenantId?: string;
  action?: 'block' | 'unblock';
}

function header(headers: MarketplaceRequest['headers'], name: string): string | undefined {
  const value = headers[name];
  if (value === undefined) return undefined;
  return typeof value === 'string' ? value : value.length === 1 ? value[0] : undefined;
}

function json(
  status: number,
  body: unknown,
  extra: Record<string, string | string[]> = {},
): MarketplaceResponse {
  return { status, headers: { ...JSON_HEADERS, ...extra }, body: JSON.stringify(body) };
}

function invalid(message: string, reason: string): MtPaasError {
  return new MtPaasError('INVALID_REQUEST', message, { details: { reason } });
}

function parseJsonObject(bytes: Buffer, allowEmpty: boolean): Record<string, unknown> {
  if (bytes.length === 0) {
    if (allowEmpty) return {};
    throw invalid('The body is empty; send a JSON object.', 'empty_body');
  }
  let value: unknown;
  try {
    value = JSON.parse(UTF8.decode(bytes));
  } catch {
    throw invalid('The body is not valid UTF-8 JSON; send a JSON object.', 'malformed_json');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw invalid('The body must be a JSON object.', 'not_an_object');
  }
  return value as Record<string, unknown>;
}

function parseWith<S extends z.ZodType>(schema: S, value: unknown, what: string): z.output<S> {
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw invalid(`Invalid ${what}: ${describeIssues(parsed.error)}.`, 'invalid_body');
  return parsed.data;
}

function decodeSegment(segment: string): string | undefined {
  try {
    return decodeURIComponent(segment);
  } catch {
    return undefined;
  }
}

/**
 * The marketplace's way into the service: the seed's routes (`/api/tenant/create`, the two seed
 * webhooks, seed 001's block/unblock), the signed versioned `POST /api/mt-paas/v1/events`, and the
 * SSO callback — verified, validated, deduplicated and ordered, then handed to `handlers`.
 * Mount it with `@mt-paas/marketplace/fastify`, `/express` or `/hono`.
 */
export function createMarketplaceReceiver(options: MarketplaceReceiverOptions): MarketplaceReceiver {
  const secrets = [...(options.secrets ?? [])];
  for (const secret of secrets) decodeWebhookSecret(secret);
  const apiKeys = (options.apiKeys ?? []).filter((key) => key.length > 0);
  const receipts = options.receipts ?? createMemoryReceiptStore();
  const maxBodyBytes = options.maxBodyBytes ?? 256 * 1024;
  const toleranceSeconds = options.toleranceSeconds ?? 300;
  const now = options.now ?? (() => new Date());
  const ssoPath = options.ssoCallbackPath ?? '/auth/marketplace/callback';
  if (options.sso !== undefined && options.handlers.onSsoLogin === undefined) {
    throw new MtPaasError(
      'CONFIG_INVALID',
      'Marketplace SSO is configured: give handlers.onSsoLogin to start a session.',
    );
  }
  const { handlers } = options;

  const routes: MarketplaceRoute[] = [
    { method: 'POST', path: LEGACY_ROUTES.create },
    { method: 'POST', path: LEGACY_ROUTES.userDeleted },
    { method: 'POST', path: LEGACY_ROUTES.serviceCancelled },
    { method: 'POST', path: '/api/v1/services/:serviceId/tenants/:tenantId/block' },
    { method: 'POST', path: '/api/v1/services/:serviceId/tenants/:tenantId/unblock' },
    { method: 'POST', path: EVENTS_ROUTE },
    ...(options.sso === undefined ? [] : [{ method: 'GET' as const, path: ssoPath }]),
  ];

  function match(path: string): Matched | undefined {
    if (path === LEGACY_ROUTES.create) return { kind: 'create', legacy: true, method: 'POST' };
    if (path === LEGACY_ROUTES.userDeleted) return { kind: 'userDeleted', legacy: true, method: 'POST' };
    if (path === LEGACY_ROUTES.serviceCancelled)
      return { kind: 'serviceCancelled', legacy: true, method: 'POST' };
    if (path === EVENTS_ROUTE) return { kind: 'events', legacy: false, method: 'POST' };
    if (options.sso !== undefined && path === ssoPath) return { kind: 'sso', legacy: false, method: 'GET' };
    const block = BLOCK_ROUTE.exec(path);
    if (block !== null) {
      return {
        kind: 'block',
        legacy: false,
        method: 'POST',
        serviceId: block[1] as string,
        tenantId: block[2] as string,
        action: block[3] as 'block' | 'unblock',
      };
    }
    return undefined;
  }

  function errorFor(legacy: boolean, error: unknown): MarketplaceResponse {
    const known = isMtPaasError(error)
      ? error
      : new MtPaasError('INTERNAL', 'The service could not process the request; retry later.');
    const extra: Record<string, string> = {};
    if (known.retryAfterSeconds !== undefined) extra['retry-after'] = String(known.retryAfterSeconds);
    if (known.code === 'WEBHOOK_SIGNATURE_INVALID' || known.code === 'UNAUTHENTICATED') {
      extra['www-authenticate'] = 'Signature realm="mt-paas-marketplace"';
    }
    return legacy
      ? json(known.httpStatus, { detail: known.message }, extra)
      : json(known.httpStatus, known.toJSON(), extra);
  }

  function apiKeyOk(request: MarketplaceRequest): boolean {
    const bearer = header(request.headers, 'authorization');
    const given =
      header(request.headers, 'x-api-key') ??
      (bearer !== undefined && /^bearer /i.test(bearer) ? bearer.slice(7).trim() : undefined);
    if (given === undefined || apiKeys.length === 0) return false;
    let ok = false;
    for (const key of apiKeys) if (secretsEqual(given, key)) ok = true;
    return ok;
  }

  /** Authenticates; returns how, and the signed delivery's id and timestamp when signed. */
  function authenticate(
    route: Matched,
    request: MarketplaceRequest,
    body: Buffer,
  ): { auth: DeliveryAuth; id?: string; timestamp?: Date } {
    const signed = hasWebhookSignature(request.headers);
    if (signed || route.kind === 'events' || (route.kind === 'block' && secrets.length > 0)) {
      const verified = verifyWebhook({ headers: request.headers, body, secrets, toleranceSeconds, now });
      return { auth: 'signature', id: verified.id, timestamp: verified.timestamp };
    }
    if (route.kind === 'userDeleted' || route.kind === 'serviceCancelled') {
      const given = header(request.headers, 'x-webhook-secret');
      if (
        options.legacySecret !== undefined &&
        given !== undefined &&
        secretsEqual(given, options.legacySecret)
      ) {
        return { auth: 'legacy_secret' };
      }
      throw new MtPaasError('WEBHOOK_SIGNATURE_INVALID', 'Invalid webhook secret');
    }
    if (apiKeyOk(request)) return { auth: 'api_key' };
    throw new MtPaasError(
      'UNAUTHENTICATED',
      route.kind === 'create'
        ? 'Invalid API key'
        : 'Sign the delivery (Standard Webhooks) or send the marketplace API key as X-API-Key.',
    );
  }

  function deliveryId(request: MarketplaceRequest, signedId: string | undefined): string {
    if (signedId !== undefined) return signedId;
    const key = header(request.headers, 'idempotency-key');
    if (key !== undefined && /^[\x21-\x7e]{1,200}$/.test(key)) return `idempotency:${key}`;
    return `unsigned:${randomUUID()}`;
  }

  async function dispatch(
    event: MarketplaceEvent,
    context: HandlerContext,
  ): Promise<Record<string, unknown>> {
    switch (event.type) {
      case 'tenant.provision_requested': {
        const result = await handlers.onProvisionRequested(event.data, context);
        return { access_url: result?.accessUrl ?? null };
      }
      case 'subscription.updated':
        await handlers.onSubscriptionUpdated(event.data, context);
        return {};
      case 'service.cancelled': {
        const result = await handlers.onServiceCancelled(event.data, context);
        return result?.tenantIds === undefined ? {} : { tenant_ids: result.tenantIds };
      }
      case 'user.deleted': {
        const result = await handlers.onUserDeleted(event.data, context);
        return { deleted_tenants: result?.deletedTenants ?? [] };
      }
      case 'tenant.blocked':
        await handlers.onBlocked(event.data, context);
        return {};
      case 'tenant.unblocked':
        await handlers.onUnblocked(event.data, context);
        return {};
    }
  }

  /** Runs the handler once per delivery id, in event order per tenant; shapes the answer. */
  async function process(
    event: MarketplaceEvent,
    delivery: { id: string; auth: DeliveryAuth; occurredAt: Date },
    shape: (output: Record<string, unknown>, result: 'processed' | 'ignored') => StoredAnswer,
  ): Promise<MarketplaceResponse> {
    const tenantId = eventTenantId(event);
    const outcome = await receipts.once(
      {
        webhookId: delivery.id,
        type: event.type,
        tenantId,
        orderingKey: ORDERING_KEYS[event.type],
        occurredAt: delivery.occurredAt,
      },
      async (transaction) => {
        try {
          const output = await dispatch(event, {
            webhookId: delivery.id,
            occurredAt: delivery.occurredAt,
            auth: delivery.auth,
            transaction,
          });
          return shape(output, 'processed');
        } catch (error) {
          options.onHandlerError?.(error, { type: event.type, webhookId: delivery.id });
          throw isMtPaasError(error)
            ? error
            : new MtPaasError(
                'INTERNAL',
                `Handling "${event.type}" failed; the delivery was not recorded, so a retry will be processed.`,
                { cause: error },
              );
        }
      },
      shape({}, 'ignored'),
    );
    return json(outcome.answer.status, outcome.answer.body, { 'x-mt-paas-receipt': outcome.result });
  }

  const mtPaasAnswer =
    (type: string, id: string) =>
    (output: Record<string, unknown>, result: 'processed' | 'ignored'): StoredAnswer => ({
      status: 200,
      body: { ok: true, webhook_id: id, type, result, ...output },
    });

  async function handleSso(request: MarketplaceRequest): Promise<MarketplaceResponse> {
    const query = new URLSearchParams(request.query ?? '');
    const token = query.get('token') ?? '';
    const expected = query.get('tenant_id') ?? query.get('tenant') ?? undefined;
    const login = await (options.sso as MarketplaceSso).verify(
      token,
      expected === undefined ? {} : { expectedTenant: expected },
    );
    const answer = await (handlers.onSsoLogin as NonNullable<MarketplaceHandlers['onSsoLogin']>)(login);
    const headers: Record<string, string | string[]> = { 'cache-control': 'no-store', ...answer.headers };
    if (answer.redirectTo !== undefined) {
      return { status: answer.status ?? 302, headers: { ...headers, location: answer.redirectTo }, body: '' };
    }
    return {
      status: answer.status ?? 200,
      headers: { 'content-type': 'application/json; charset=utf-8', ...headers },
      body: JSON.stringify(answer.body ?? { ok: true, tenant_id: login.tenantId, user_id: login.user.id }),
    };
  }

  async function handleRoute(route: Matched, request: MarketplaceRequest): Promise<MarketplaceResponse> {
    if (route.kind === 'sso') return handleSso(request);
    const body = await readBody(request.body, maxBodyBytes, header(request.headers, 'content-length'));
    const auth = authenticate(route, request, body);
    const id = deliveryId(request, auth.id);
    const receivedAt = auth.timestamp ?? now();

    switch (route.kind) {
      case 'events': {
        const envelope = parseWith(envelopeSchema, parseJsonObject(body, false), 'event envelope');
        const event = parseEvent(envelope.type, envelope.version, envelope.data);
        return process(
          event,
          { id, auth: auth.auth, occurredAt: envelope.timestamp },
          mtPaasAnswer(event.type, id),
        );
      }
      case 'block': {
        if (decodeSegment(route.serviceId as string) !== options.serviceId) {
          throw new MtPaasError(
            'INVALID_REQUEST',
            `This is service "${options.serviceId}"; the marketplace called it with another service id.`,
            { httpStatus: 404, details: { reason: 'unknown_service' } },
          );
        }
        const raw = decodeSegment(route.tenantId as string);
        const problem = tenantIdProblem(raw);
        if (problem !== undefined) {
          throw new MtPaasError('INVALID_TENANT_ID', `The tenant id in the path is not valid: ${problem}.`);
        }
        const tenantId = raw as TenantId;
        const object = parseJsonObject(body, route.action === 'unblock');
        const occurredAt =
          typeof object.occurred_at === 'string'
            ? parseWith(envelopeSchema.shape.timestamp, object.occurred_at, 'occurred_at')
            : receivedAt;
        const event: MarketplaceEvent =
          route.action === 'block'
            ? {
                type: 'tenant.blocked',
                data: { tenantId, ...parseWith(blockSchema, object, 'block request') },
              }
            : {
                type: 'tenant.unblocked',
                data: { tenantId, ...parseWith(unblockSchema, object, 'unblock request') },
              };
        return process(event, { id, auth: auth.auth, occurredAt }, (output, result) => ({
          status: 200,
          body: {
            success: true,
            tenant_id: tenantId,
            status: route.action === 'block' ? 'blocked' : 'active',
            webhook_id: id,
            result,
            ...output,
          },
        }));
      }
      case 'create': {
        const data = parseWith(
          provisionRequestedSchema,
          parseJsonObject(body, false),
          'tenant create request',
        );
        return process(
          { type: 'tenant.provision_requested', data },
          { id, auth: auth.auth, occurredAt: receivedAt },
          (output) => ({
            status: 200,
            body: { success: true, tenant_id: data.tenantId, access_url: output.access_url ?? null },
          }),
        );
      }
      case 'userDeleted': {
        const object = parseJsonObject(body, false);
        if (object.event !== 'user.deleted') {
          // The seed answers an unknown event with 200 and success: false; nothing is processed.
          return json(200, {
            success: false,
            message: `Unsupported event: ${String(object.event).slice(0, 100)}`,
          });
        }
        const data = parseWith(userDeletedSchema, object, 'user.deleted webhook');
        return process(
          { type: 'user.deleted', data },
          { id, auth: auth.auth, occurredAt: data.deletedAt },
          (output) => {
            const deleted = (output.deleted_tenants as string[] | undefined) ?? [];
            return {
              status: 200,
              body: {
                success: true,
                message: `Deleted ${deleted.length} tenant(s)`,
                deleted_tenants: deleted,
              },
            };
          },
        );
      }
      case 'serviceCancelled': {
        const data = parseWith(
          serviceCancelledSchema,
          parseJsonObject(body, false),
          'service-cancelled webhook',
        );
        return process(
          { type: 'service.cancelled', data },
          { id, auth: auth.auth, occurredAt: receivedAt },
          () => ({ status: 200, body: { success: true } }),
        );
      }
    }
  }

  return {
    routes,
    matches: (path) => match(path) !== undefined,
    errorResponse(path, error) {
      return errorFor(match(path)?.legacy ?? false, error);
    },
    async handle(request) {
      const route = match(request.path);
      if (route === undefined) {
        return errorFor(
          false,
          new MtPaasError('INVALID_REQUEST', `No marketplace route at ${request.path}.`, { httpStatus: 404 }),
        );
      }
      if (request.method.toUpperCase() !== route.method) {
        const response = errorFor(
          route.legacy,
          new MtPaasError('INVALID_REQUEST', `Use ${route.method} for ${request.path}.`, { httpStatus: 405 }),
        );
        response.headers.allow = route.method;
        return response;
      }
      try {
        return await handleRoute(route, request);
      } catch (error) {
        return errorFor(route.legacy, error);
      }
    },
  };
}
