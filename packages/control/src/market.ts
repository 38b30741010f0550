import { MtPaasError } from '@mt-paas/context';

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

/** A message for the market that must be delivered at least once (the catalog outbox row's fields). */
export interface MarketMessage {
  /** Deduplication id; the outbox generates one when omitted. */
  eventId?: string;
  tenantId?: string;
  /** `tenant.status`, `audit.alert`, … */
  type: string;
  payload: Record<string, unknown>;
}

/**
 * Where control leaves what the market must hear (status reports, audit alerts): the catalog outbox
 * of `@mt-paas/marketplace` (its dispatcher delivers with retries). Structural, so that outbox
 * writer is passed as is. `executor` is the open catalog transaction when the message must commit
 * with a catalog change (control passes its drizzle transaction).
 */
export interface MarketOutbox {
  enqueue(message: MarketMessage, options?: { executor?: unknown }): Promise<unknown>;
}

/** Options of {@link createHttpHeartbeatSender}. */
export interface HttpHeartbeatSenderOptions {
  /** Base URL of the market API (`marketplace.api_url`, e.g. `https://market.example/api/v1`). */
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
    base = new URL(options.apiUrl.endsWith('/') ? options.apiUrl : `${options.apiUrl}/`);
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
