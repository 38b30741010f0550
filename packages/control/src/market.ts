import { MtPaasError, type TenantStatus } from '@mt-paas/context';
import type { SqlSession } from '@mt-paas/db';

/** Health the service reports in its heartbeat (seed 001 §5.1 `status`). */
export type ServiceHealth = 'healthy' | 'degraded' | 'unhealthy';

/** The request metrics of a heartbeat, over the interval since the previous beat. */
export interface HeartbeatMetrics {
  requests_per_minute: number;
  /** Fraction (0–1) of requests answered with a 5xx status. */
  error_rate: number;
  avg_response_time_ms: number;
}

/** The body of `POST /services/{service_id}/heartbeat` (seed 001 §5.1), exactly as the market reads it. */
export interface HeartbeatBody {
  service_id: string;
  status: ServiceHealth;
  active_tenants: string[];
  metrics: HeartbeatMetrics;
  /** ISO 8601, UTC. */
  timestamp: string;
}

/**
 * Sends one heartbeat to the market. Structural: `@mt-paas/marketplace`'s client fits, and so does
 * {@link createHttpHeartbeatSender}. It must honour `signal` (the beat's timeout and `stop()`);
 * a rejection counts as a failed beat. The resolved value is ignored.
 */
export interface HeartbeatSender {
  sendHeartbeat(body: HeartbeatBody, options: { signal: AbortSignal }): Promise<unknown>;
}

/** Sends one beat: the wire-level {@link HeartbeatSender}, or `@mt-paas/marketplace`'s client. */
export function toHeartbeatSender(sender: HeartbeatSender | MarketplaceHeartbeatClient): HeartbeatSender {
  if ('sendHeartbeat' in sender) return sender;
  return {
    sendHeartbeat: (body) =>
      sender.heartbeat(
        {
          status: body.status,
          activeTenants: body.active_tenants,
          metrics: {
            requestsPerMinute: body.metrics.requests_per_minute,
            errorRate: body.metrics.error_rate,
            avgResponseTimeMs: body.metrics.avg_response_time_ms,
          },
          timestamp: new Date(body.timestamp),
        },
        { retries: 0 },
      ),
  };
}

/**
 * The heartbeat method of `@mt-paas/marketplace`'s `MarketplaceClient` (camelCase; it builds the seed
 * body itself). Pass that client as the heartbeat `sender` as is: control calls it with `retries: 0`
 * (a missed beat is not replayed) and bounds it with its own timeout, since it takes no signal.
 */
export interface MarketplaceHeartbeatClient {
  heartbeat(
    heartbeat: {
      status: ServiceHealth;
      activeTenants: readonly string[];
      metrics?: { requestsPerMinute?: number; errorRate?: number; avgResponseTimeMs?: number };
      timestamp?: Date;
    },
    options?: { retries?: number },
  ): Promise<void>;
}

/** A tenant status report for the market (`POST /services/{service_id}/tenants/{tenant_id}/status`). */
export interface TenantStatusPayload {
  tenantId: string;
  status: TenantStatus;
  reason?: string;
  /** ISO 8601. */
  at: string;
}

/** The seed 001 §5.3 audit alert body (`POST /audit/alerts`), exactly. */
export interface AuditAlertPayload {
  service_id: string;
  alert_type: string;
  severity: 'low' | 'medium' | 'high' | 'critical';
  details: {
    source_tenant: string | null;
    target_tenant: string | null;
    endpoint: string | null;
    ip_address: string | null;
  };
  /** ISO 8601. */
  timestamp: string;
}

/** A message for the market that must be delivered at least once (a row of the catalog `outbox`). */
export type MarketMessage =
  | { id: string; type: 'tenant.status'; tenantId: string; payload: TenantStatusPayload }
  | { id: string; type: 'audit.alert'; tenantId?: string | undefined; payload: AuditAlertPayload };

/**
 * Where control leaves what the market must hear (status reports, audit alerts): the catalog outbox of
 * `@mt-paas/marketplace` (`createOutbox({ driver: catalog.driver, schema: catalog.schema })`), passed as
 * is; its dispatcher delivers with retries. `executor` is the open catalog transaction (a `SqlSession`
 * of `catalog.driver.transaction`) when the message must commit with a catalog change.
 */
export interface MarketOutbox {
  enqueue(messages: readonly MarketMessage[], options?: { executor?: SqlSession }): Promise<unknown>;
  /** Backlog, for the outbox metrics (the marketplace outbox has it). */
  stats?(): Promise<{ pending: number; oldestPendingAgeSeconds: number | null }>;
}

/** Options of {@link createHttpHeartbeatSender}. */
export interface HttpHeartbeatSenderOptions {
  /** Root of the market API (`marketplace.api_url`, e.g. `https://market.example/api/v1`; `/api/v1` is appended when missing). */
  apiUrl: string;
  /** Sent as `Authorization: Bearer <apiKey>` (`marketplace.api_key`). */
  apiKey?: string;
  /** `fetch` to use. @default globalThis.fetch */
  fetch?: typeof fetch;
}

/**
 * A minimal heartbeat sender over `fetch`: `POST <apiUrl>/services/<service_id>/heartbeat` with the
 * JSON body. Any non-2xx answer rejects with `PROVIDER_UNAVAILABLE` (status only, never the body).
 * Use it when `@mt-paas/marketplace` is not installed; otherwise pass that client.
 */
export function createHttpHeartbeatSender(options: HttpHeartbeatSenderOptions): HeartbeatSender {
  let base: URL;
  try {
    // The same rule as @mt-paas/marketplace's client: `/api/v1` is appended when the URL does not end with it.
    const trimmed = options.apiUrl.replace(/\/+$/, '');
    base = new URL(`${/\/api\/v1$/.test(trimmed) ? trimmed : `${trimmed}/api/v1`}/`);
  } catch (cause) {
    throw new MtPaasError(
      'CONFIG_INVALID',
      `marketplace.api_url "${options.apiUrl}" is not a URL; set it to the market's API base, e.g. https://market.example/api/v1.`,
      { cause },
    );
  }
  const send = options.fetch ?? globalThis.fetch;
  return {
    async sendHeartbeat(body, { signal }) {
      const url = new URL(`services/${encodeURIComponent(body.service_id)}/heartbeat`, base);
      const response = await send(url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          accept: 'application/json',
          ...(options.apiKey === undefined ? {} : { authorization: `Bearer ${options.apiKey}` }),
        },
        body: JSON.stringify(body),
        signal,
      });
      await response.body?.cancel().catch(() => {});
      if (!response.ok) {
        throw new MtPaasError(
          'PROVIDER_UNAVAILABLE',
          `The market answered the heartbeat with HTTP ${response.status}; the next beat retries.`,
          { details: { status: response.status } },
        );
      }
      return undefined;
    },
  };
}
