import { MtPaasError, type TenantStatus, type UsageRecord } from '@mt-paas/context';
import { type $Fetch, ofetch } from 'ofetch';
import type { z } from 'zod';
import { describeIssues, subscriptionUpdatedSchema } from './events.js';

/** Options of {@link createMarketplaceClient}. */
export interface MarketplaceClientOptions {
  /**
   * The marketplace API root (`marketplace.api_url`), e.g. `https://market.example/api/v1`; `/api/v1`
   * is appended when the URL does not end with it.
   */
  apiUrl: string;
  /** Sent as `Authorization: Bearer …` (`marketplace.api_key`). */
  apiKey?: string;
  /** This service's marketplace id (`service.id`). */
  serviceId: string;
  /** Timeout of one attempt (`marketplace.timeout_seconds`). @default 10000 */
  timeoutMs?: number;
  /** Retries after the first attempt, for network errors, 408, 425, 429 and 5xx. @default 3 */
  retries?: number;
  /** First backoff step; doubles each retry, with full jitter. @default 500 */
  backoffBaseMs?: number;
  /** Longest wait between attempts (also caps `Retry-After`). @default 30000 */
  backoffMaxMs?: number;
  /** Waits (tests replace it). @default setTimeout */
  sleep?: (ms: number) => Promise<void>;
}

/** Per-call options. */
export interface CallOptions {
  /** Sent as `Idempotency-Key`; the marketplace drops a second call with the same key. */
  idempotencyKey?: string;
  /** Overrides the client's retries for this call (the outbox dispatcher passes 0: it retries itself). */
  retries?: number;
}

/** Seed 001 §5.1 heartbeat. */
export interface Heartbeat {
  status: 'healthy' | 'degraded' | 'unhealthy';
  activeTenants: readonly string[];
  metrics?: { requestsPerMinute?: number; errorRate?: number; avgResponseTimeMs?: number };
  timestamp?: Date;
}

/** Seed 001 §5.3 audit alert, as sent (snake_case, exactly the seed's body). */
export interface AuditAlert {
  service_id: string;
  alert_type: string;
  severity: 'low' | 'medium' | 'high' | 'critical';
  details: {
    source_tenant: string | null;
    target_tenant: string | null;
    endpoint: string | null;
    ip_address: string | null;
  };
  timestamp: string;
}

/** A tenant status reported to the marketplace. */
export interface TenantStatusReport {
  tenantId: string;
  status: TenantStatus;
  reason?: string;
  at: Date;
}

/** The marketplace's subscription of a tenant (the `subscription.updated` data). */
export type Subscription = z.output<typeof subscriptionUpdatedSchema>;

/** Calls from the service to the marketplace. */
export interface MarketplaceClient {
  readonly serviceId: string;
  /** `POST /services/{service_id}/heartbeat` (seed 001 §5.1). */
  heartbeat(heartbeat: Heartbeat, options?: CallOptions): Promise<void>;
  /** `POST /services/{service_id}/usage`: records, each with its `idempotency_key`. */
  reportUsage(records: readonly UsageRecord[], options?: CallOptions): Promise<void>;
  /** `POST /services/{service_id}/tenants/{tenant_id}/status`. */
  syncTenantStatus(report: TenantStatusReport, options?: CallOptions): Promise<void>;
  /** `GET /services/{service_id}/tenants/{tenant_id}/subscription`; `undefined` on 404. */
  getSubscription(tenantId: string, options?: CallOptions): Promise<Subscription | undefined>;
  /** `POST /audit/alerts` (seed 001 §5.3). */
  sendAuditAlert(alert: AuditAlert, options?: CallOptions): Promise<void>;
}

const RETRYABLE = new Set([408, 425, 429, 500, 502, 503, 504]);

/** Seconds of a `Retry-After` header (delta seconds or an HTTP date), if any. */
export function retryAfterMs(value: string | null | undefined, now = Date.now()): number | undefined {
  if (value === null || value === undefined || value.trim() === '') return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

function apiRoot(apiUrl: string): string {
  const trimmed = apiUrl.replace(/\/+$/, '');
  return /\/api\/v1$/.test(trimmed) ? trimmed : `${trimmed}/api/v1`;
}

/**
 * A typed client of the marketplace API (ofetch): bearer API key, a timeout per attempt, and
 * retries with exponential backoff, full jitter and `Retry-After`. Failures are `MtPaasError`s:
 * `SERVICE_UNAVAILABLE` (retryable: network, 408/425/429/5xx) or `PROVIDER_ERROR` (the marketplace refused).
 */
export function createMarketplaceClient(options: MarketplaceClientOptions): MarketplaceClient {
  const root = apiRoot(options.apiUrl);
  const fetcher: $Fetch = ofetch.create({
    baseURL: root,
    timeout: options.timeoutMs ?? 10_000,
    retry: 0,
    ignoreResponseError: true,
    headers: options.apiKey === undefined ? {} : { authorization: `Bearer ${options.apiKey}` },
  });
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  const base = options.backoffBaseMs ?? 500;
  const max = options.backoffMaxMs ?? 30_000;
  const service = encodeURIComponent(options.serviceId);

  async function call(
    method: 'GET' | 'POST',
    path: string,
    body: unknown,
    callOptions: CallOptions = {},
  ): Promise<{ status: number; data: unknown }> {
    const retries = callOptions.retries ?? options.retries ?? 3;
    const headers: Record<string, string> = { accept: 'application/json' };
    if (callOptions.idempotencyKey !== undefined) headers['idempotency-key'] = callOptions.idempotencyKey;
    for (let attempt = 0; ; attempt++) {
      let failure: MtPaasError;
      let wait: number | undefined;
      try {
        const response = await fetcher.raw(path, {
          method,
          headers,
          ...(body === undefined ? {} : { body: body as Record<string, unknown> }),
        });
        if (response.status < 400 || (method === 'GET' && response.status === 404)) {
          return { status: response.status, data: response._data };
        }
        const retryable = RETRYABLE.has(response.status);
        wait = retryAfterMs(response.headers.get('retry-after'));
        failure = new MtPaasError(
          retryable ? 'SERVICE_UNAVAILABLE' : 'PROVIDER_ERROR',
          `The marketplace answered ${response.status} to ${method} ${path}${retryable ? '; it will be retried' : '; check the API key and the request'}.`,
          {
            details: { upstream: 'marketplace', status: response.status, retryable },
            ...(wait === undefined ? {} : { retryAfterSeconds: Math.ceil(wait / 1000) }),
          },
        );
        if (!retryable) throw failure;
      } catch (error) {
        if (MtPaasError.isInstance(error) && error.code === 'PROVIDER_ERROR') throw error;
        failure = MtPaasError.isInstance(error)
          ? error
          : new MtPaasError(
              'SERVICE_UNAVAILABLE',
              `The marketplace could not be reached (${method} ${path}); it will be retried.`,
              { cause: error, details: { upstream: 'marketplace', retryable: true } },
            );
      }
      if (attempt >= retries) throw failure;
      const backoff = Math.min(max, base * 2 ** attempt);
      await sleep(wait !== undefined ? Math.min(max, wait) : Math.random() * backoff);
    }
  }

  return {
    serviceId: options.serviceId,
    async heartbeat(heartbeat, callOptions) {
      await call(
        'POST',
        `/services/${service}/heartbeat`,
        {
          service_id: options.serviceId,
          status: heartbeat.status,
          active_tenants: [...heartbeat.activeTenants],
          metrics: {
            requests_per_minute: heartbeat.metrics?.requestsPerMinute ?? 0,
            error_rate: heartbeat.metrics?.errorRate ?? 0,
            avg_response_time_ms: heartbeat.metrics?.avgResponseTimeMs ?? 0,
          },
          timestamp: (heartbeat.timestamp ?? new Date()).toISOString(),
        },
        callOptions,
      );
    },
    async reportUsage(records, callOptions) {
      await call(
        'POST',
        `/services/${service}/usage`,
        {
          service_id: options.serviceId,
          records: records.map((record) => ({
            tenant_id: record.tenantId,
            meter: record.meter,
            quantity: record.quantity,
            at: record.at.toISOString(),
            period_start: record.periodStart ?? null,
            idempotency_key: record.idempotencyKey,
            attributes: record.attributes ?? {},
          })),
        },
        callOptions,
      );
    },
    async syncTenantStatus(report, callOptions) {
      await call(
        'POST',
        `/services/${service}/tenants/${encodeURIComponent(report.tenantId)}/status`,
        {
          service_id: options.serviceId,
          tenant_id: report.tenantId,
          status: report.status,
          reason: report.reason ?? null,
          timestamp: report.at.toISOString(),
        },
        callOptions,
      );
    },
    async getSubscription(tenantId, callOptions) {
      const response = await call(
        'GET',
        `/services/${service}/tenants/${encodeURIComponent(tenantId)}/subscription`,
        undefined,
        callOptions,
      );
      if (response.status === 404) return undefined;
      const parsed = subscriptionUpdatedSchema.safeParse(response.data);
      if (!parsed.success) {
        throw new MtPaasError(
          'PROVIDER_ERROR',
          `The marketplace's subscription of "${tenantId}" is not in the expected shape: ${describeIssues(parsed.error)}.`,
          { details: { upstream: 'marketplace' } },
        );
      }
      return parsed.data;
    },
    async sendAuditAlert(alert, callOptions) {
      await call('POST', '/audit/alerts', alert, callOptions);
    },
  };
}
