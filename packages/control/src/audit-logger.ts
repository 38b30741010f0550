import { randomUUID } from 'node:crypto';
import {
  type AuditEvent,
  type AuditSeverity,
  type AuditSink,
  MtPaasError,
  type TenantId,
} from '@mt-paas/context';
import { auditAlert } from '@mt-paas/marketplace';
import { type ControlLogger, defaultLogger, errorMessage } from './logger.js';
import type { MarketOutbox } from './market.js';

/** The audit types control counts per window instead of writing one row per event. */
export const DEFAULT_AGGREGATED_AUDIT_TYPES: readonly string[] = [
  'auth_failed',
  'cross_tenant_access_attempt',
];

/** Options of {@link createAuditLogger}. */
export interface AuditLoggerOptions {
  /** Where rows go: the catalog's append-only `audit_log` (`catalog.audit` of `@mt-paas/db`). */
  sink: AuditSink;
  /** High and critical events are forwarded to the market's audit alert API through this outbox. */
  outbox?: MarketOutbox;
  /** `service.id`: the `service_id` of forwarded alerts. */
  serviceId: string;
  /** Severities forwarded to the market. @default ['high', 'critical'] */
  forwardSeverities?: readonly AuditSeverity[];
  /**
   * `security.cross_tenant_audit`: when `false`, `cross_tenant_access_attempt` events are neither
   * written nor forwarded (only counted in `suppressed`). The request is still refused. @default true
   */
  crossTenantAudit?: boolean;
  /**
   * Types written at most twice per (type, tenant, reason) and window: the first event at once, then
   * one summary row with the count and a few samples when the window closes.
   * @default DEFAULT_AGGREGATED_AUDIT_TYPES
   */
  aggregateTypes?: readonly string[];
  /** Aggregation window. @default 60_000 */
  windowMs?: number;
  /** Samples (ip, user, request id, time) kept in a summary row. @default 5 */
  samplesPerWindow?: number;
  /** Most (type, tenant, reason) keys counted at once; beyond, events count under one `_overflow` key. @default 1_000 */
  maxKeys?: number;
  /** Called for every event handed to the logger (for metrics). */
  onEvent?: (event: AuditEvent, outcome: 'written' | 'aggregated' | 'suppressed') => void;
  logger?: ControlLogger;
  /** @default () => new Date() */
  now?: () => Date;
}

/** An authentication failure as the logger counts it. */
export interface AuthFailure {
  tenantId?: TenantId | string;
  /** Short and stable (`invalid_token`, `expired_token`, `bad_api_key`, `missing_token`). */
  reason: string;
  ip?: string;
  userId?: string;
  requestId?: string;
  /** The route template or path. */
  endpoint?: string;
}

/** The one audit logger of a service; an `AuditSink` (pass it as the pipeline's `auditSink`). */
export interface AuditLogger extends AuditSink {
  /**
   * Records an event: aggregated types are counted (never awaited on the database), others are written
   * (and forwarded when severe) before the promise resolves.
   * @throws the sink's error for a directly written event
   */
  record(event: AuditEvent): Promise<void>;
  /** Counts an authentication failure (aggregated; returns at once, never throws). */
  authFailure(failure: AuthFailure): void;
  /** Writes the summary rows of every open window now. */
  flush(): Promise<void>;
  /** Starts the window timer (idempotent). */
  start(): void;
  /** Stops the timer and flushes. */
  stop(): Promise<void>;
  /** Events dropped by `crossTenantAudit: false`. */
  readonly suppressed: number;
}

interface Window {
  first: AuditEvent;
  startedAt: Date;
  /** Events after the first. */
  more: number;
  samples: Array<Record<string, unknown>>;
}

/**
 * Every package's security events go through here: rows in the catalog `audit_log`, and high / critical
 * events forwarded to the market's audit alert API (seed 001 §5.3) through the outbox (at least once).
 * Floods (authentication failures, cross-tenant attempts) are counted per (type, tenant, reason) and
 * window instead of writing a row per request.
 */
export function createAuditLogger(options: AuditLoggerOptions): AuditLogger {
  const forward = new Set<AuditSeverity>(options.forwardSeverities ?? ['high', 'critical']);
  const aggregated = new Set(options.aggregateTypes ?? DEFAULT_AGGREGATED_AUDIT_TYPES);
  const windowMs = options.windowMs ?? 60_000;
  const samplesPerWindow = options.samplesPerWindow ?? 5;
  const maxKeys = options.maxKeys ?? 1_000;
  const crossTenantAudit = options.crossTenantAudit ?? true;
  const logger = options.logger ?? defaultLogger();
  const now = options.now ?? (() => new Date());
  if (!(windowMs >= 1)) {
    throw new MtPaasError(
      'CONFIG_INVALID',
      `The audit window must be a positive number of ms (got ${windowMs}).`,
    );
  }
  const windows = new Map<string, Window>();
  const pending = new Set<Promise<unknown>>();
  let suppressed = 0;
  let timer: NodeJS.Timeout | undefined;

  async function write(event: AuditEvent): Promise<void> {
    await options.sink.record(event);
    if (options.outbox !== undefined && forward.has(event.severity)) {
      await options.outbox.enqueue([
        {
          id: `audit:${randomUUID()}`,
          type: 'audit.alert',
          ...(event.tenantId === undefined ? {} : { tenantId: event.tenantId }),
          payload: auditAlert(event, options.serviceId),
        },
      ]);
    }
  }

  /** A write nobody awaits: tracked for flush/stop, failures logged. */
  function background(event: AuditEvent): void {
    const promise = write(event)
      .catch((error) => {
        logger.error({ err: errorMessage(error), audit: event.type }, 'Audit event not recorded');
      })
      .finally(() => pending.delete(promise));
    pending.add(promise);
  }

  function sampleOf(event: AuditEvent): Record<string, unknown> {
    const sample: Record<string, unknown> = { at: event.at.toISOString() };
    if (event.actor?.ip !== undefined) sample.ip = event.actor.ip;
    if (event.actor?.userId !== undefined) sample.userId = event.actor.userId;
    if (event.requestId !== undefined) sample.requestId = event.requestId;
    return sample;
  }

  function keyOf(event: AuditEvent): string {
    const reason = event.details?.reason;
    return JSON.stringify([
      event.type,
      event.tenantId ?? null,
      event.targetTenantId ?? null,
      typeof reason === 'string' ? reason : null,
    ]);
  }

  function closeWindow(key: string, window: Window): void {
    windows.delete(key);
    if (window.more === 0) return;
    const first = window.first;
    background({
      ...first,
      at: now(),
      details: {
        ...(first.details ?? {}),
        aggregated: true,
        count: window.more,
        windowStart: window.startedAt.toISOString(),
        windowEnd: now().toISOString(),
        samples: window.samples,
      },
    });
  }

  function closeDue(all: boolean): void {
    const at = now().getTime();
    for (const [key, window] of windows) {
      if (all || at - window.startedAt.getTime() >= windowMs) closeWindow(key, window);
    }
  }

  function aggregate(event: AuditEvent): void {
    closeDue(false);
    let key = keyOf(event);
    if (!windows.has(key) && windows.size >= maxKeys) {
      key = JSON.stringify([event.type, '_overflow']);
      event = { ...event, details: { ...(event.details ?? {}), overflow: true } };
    }
    const window = windows.get(key);
    if (window === undefined) {
      windows.set(key, { first: event, startedAt: now(), more: 0, samples: [] });
      background(event);
      return;
    }
    window.more += 1;
    if (window.samples.length < samplesPerWindow) window.samples.push(sampleOf(event));
  }

  async function record(event: AuditEvent): Promise<void> {
    if (!crossTenantAudit && event.type === 'cross_tenant_access_attempt') {
      suppressed += 1;
      options.onEvent?.(event, 'suppressed');
      return;
    }
    if (aggregated.has(event.type)) {
      options.onEvent?.(event, 'aggregated');
      aggregate(event);
      return;
    }
    await write(event);
    options.onEvent?.(event, 'written');
  }

  async function flush(): Promise<void> {
    closeDue(true);
    while (pending.size > 0) await Promise.all([...pending]);
  }

  return {
    record,
    authFailure(failure) {
      const actor: AuditEvent['actor'] = {};
      if (failure.ip !== undefined) actor.ip = failure.ip;
      if (failure.userId !== undefined) actor.userId = failure.userId;
      void record({
        type: 'auth_failed',
        severity: 'medium',
        ...(failure.tenantId === undefined ? {} : { tenantId: failure.tenantId as TenantId }),
        ...(Object.keys(actor).length === 0 ? {} : { actor }),
        ...(failure.requestId === undefined ? {} : { requestId: failure.requestId }),
        details: {
          reason: failure.reason,
          ...(failure.endpoint === undefined ? {} : { endpoint: failure.endpoint }),
        },
        at: now(),
      }).catch(() => {});
    },
    flush,
    start() {
      if (timer !== undefined) return;
      timer = setInterval(() => closeDue(false), Math.max(100, Math.min(windowMs, 1_000)));
      timer.unref?.();
    },
    async stop() {
      if (timer !== undefined) clearInterval(timer);
      timer = undefined;
      await flush();
    },
    get suppressed() {
      return suppressed;
    },
  };
}
