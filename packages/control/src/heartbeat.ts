import { MtPaasError } from '@mt-paas/context';
import type { Heartbeat } from '@mt-paas/marketplace';
import { type ControlLogger, defaultLogger, errorMessage } from './logger.js';
import type { HeartbeatMetrics, HeartbeatSender, ServiceHealth } from './market.js';

/** Options of {@link createHeartbeatService}. */
export interface HeartbeatServiceOptions {
  /** `service.id` of the config (for logs; the client's own `serviceId` is the `service_id` of every beat). */
  serviceId: string;
  /**
   * Sends a beat: `@mt-paas/marketplace`'s `createMarketplaceClient(...)`, as is. Called with
   * `{ retries: 0 }`; the beat's timeout bounds it.
   */
  sender: HeartbeatSender;
  /** Period between beats (`marketplace.heartbeat_interval` × 1000). @default 60_000 */
  intervalMs?: number;
  /**
   * Each delay is `intervalMs × (1 ± jitter)`, uniformly, and the first beat comes within the first
   * `2 × jitter` of an interval, so that instances started together do not beat together. 0 … 0.5. @default 0.1
   */
  jitter?: number;
  /** A beat not answered within this time is abandoned (and counts as failed). @default min(10_000, intervalMs / 2) */
  timeoutMs?: number;
  /** Longest delay after repeated failures (the delay doubles per failure up to this). @default 10 × intervalMs */
  maxBackoffMs?: number;
  /** The request metrics of the interval (see `createRegistryMetricsSource`). @default zeros */
  metrics?: () => HeartbeatMetrics | Promise<HeartbeatMetrics>;
  /** Tenants this service currently serves (`active_tenants`). @default [] */
  activeTenants?: () => readonly string[] | Promise<readonly string[]>;
  /** The service's own health. @default 'healthy' (or 'degraded' when metrics or tenants cannot be read) */
  health?: () => ServiceHealth | Promise<ServiceHealth>;
  /** Called after every beat (for the `heartbeat_failures` metric). */
  onBeat?: (outcome: { ok: boolean; error?: unknown }) => void;
  logger?: ControlLogger;
  /** @default Math.random */
  random?: () => number;
  /** @default () => new Date() */
  now?: () => Date;
}

/** The periodic heartbeat to the market. */
export interface HeartbeatService {
  /** Schedules beats (idempotent). */
  start(): void;
  /** Stops scheduling, abandons a beat in flight and waits for it to settle. No timer is left. */
  stop(): Promise<void>;
  /** Sends one beat now (joins the one in flight, if any). Resolves `true` when the market accepted it. */
  beat(): Promise<boolean>;
  /** The heartbeat the next beat would send (`@mt-paas/marketplace`'s `Heartbeat`). */
  buildBody(): Promise<Required<Heartbeat>>;
  /** Consecutive failed beats (0 when the last one succeeded). */
  readonly consecutiveFailures: number;
}

const ZERO_METRICS: HeartbeatMetrics = { requestsPerMinute: 0, errorRate: 0, avgResponseTimeMs: 0 };

/**
 * The seed's heartbeat (001 §5.1): every `intervalMs` (jittered) one `POST …/heartbeat` straight to the
 * market — a missed beat is not worth replaying, so it never goes through the outbox. Beats never
 * overlap (the next is scheduled when the previous settled), each has a timeout, failures back off
 * exponentially and are logged once per outage (and once on recovery). A slow or absent market never
 * throws into or stalls the service.
 */
export function createHeartbeatService(options: HeartbeatServiceOptions): HeartbeatService {
  const intervalMs = options.intervalMs ?? 60_000;
  const jitter = options.jitter ?? 0.1;
  if (!(Number.isFinite(intervalMs) && intervalMs >= 100)) {
    throw new MtPaasError(
      'CONFIG_INVALID',
      `The heartbeat interval must be at least 100 ms (got ${intervalMs}); set marketplace.heartbeat_interval in seconds.`,
    );
  }
  if (!(jitter >= 0 && jitter <= 0.5)) {
    throw new MtPaasError('CONFIG_INVALID', `The heartbeat jitter must be within 0 … 0.5 (got ${jitter}).`);
  }
  const timeoutMs = options.timeoutMs ?? Math.min(10_000, intervalMs / 2);
  const maxBackoffMs = options.maxBackoffMs ?? intervalMs * 10;
  const random = options.random ?? Math.random;
  const now = options.now ?? (() => new Date());
  const logger = options.logger ?? defaultLogger();
  const sender = options.sender;
  const clientServiceId = (sender as { serviceId?: unknown }).serviceId;
  if (typeof clientServiceId === 'string' && clientServiceId !== options.serviceId) {
    throw new MtPaasError(
      'CONFIG_INVALID',
      `The heartbeat client is for service "${clientServiceId}" but this control plane is "${options.serviceId}"; create the marketplace client with serviceId: config.service.id.`,
    );
  }

  let running = false;
  let timer: NodeJS.Timeout | undefined;
  let inFlight: Promise<boolean> | undefined;
  let controller: AbortController | undefined;
  let failures = 0;
  const stopReason = new MtPaasError('SERVICE_UNAVAILABLE', 'The heartbeat service was stopped.');

  const jittered = (ms: number) => ms * (1 - jitter + 2 * jitter * random());

  function nextDelay(): number {
    if (failures === 0) return jittered(intervalMs);
    return jittered(Math.min(maxBackoffMs, intervalMs * 2 ** failures));
  }

  function schedule(delayMs: number): void {
    if (!running) return;
    timer = setTimeout(() => {
      timer = undefined;
      void beat().finally(() => schedule(nextDelay()));
    }, delayMs);
    timer.unref?.();
  }

  async function buildBody(): Promise<Required<Heartbeat>> {
    let degraded = false;
    let metrics = ZERO_METRICS;
    let tenants: readonly string[] = [];
    try {
      if (options.metrics !== undefined) metrics = await options.metrics();
    } catch (error) {
      degraded = true;
      logger.warn({ err: errorMessage(error) }, 'Heartbeat metrics could not be read; reporting zeros');
    }
    try {
      if (options.activeTenants !== undefined) tenants = await options.activeTenants();
    } catch (error) {
      degraded = true;
      logger.warn({ err: errorMessage(error) }, 'Heartbeat active tenants could not be read; reporting none');
    }
    let status: ServiceHealth = 'healthy';
    try {
      if (options.health !== undefined) status = await options.health();
    } catch {
      status = 'degraded';
    }
    if (degraded && status === 'healthy') status = 'degraded';
    return { status, activeTenants: [...tenants], metrics, timestamp: now() };
  }

  async function sendOnce(): Promise<boolean> {
    const beatController = new AbortController();
    controller = beatController;
    const timeout = setTimeout(
      () =>
        beatController.abort(
          new MtPaasError('TIMEOUT', `The market did not answer the heartbeat within ${timeoutMs} ms.`),
        ),
      timeoutMs,
    );
    timeout.unref?.();
    try {
      const body = await buildBody();
      const aborted = new Promise<never>((_, reject) => {
        if (beatController.signal.aborted) reject(beatController.signal.reason);
        beatController.signal.addEventListener('abort', () => reject(beatController.signal.reason), {
          once: true,
        });
      });
      aborted.catch(() => {});
      // The client takes no signal: the race abandons a beat past its timeout (or at stop()).
      await Promise.race([sender.heartbeat(body, { retries: 0 }), aborted]);
      if (failures > 0) {
        logger.info({ failedBeats: failures }, 'Marketplace heartbeat recovered');
      }
      failures = 0;
      options.onBeat?.({ ok: true });
      return true;
    } catch (error) {
      if (beatController.signal.reason === stopReason) return false; // stopped: not a market failure
      failures += 1;
      if (failures === 1) {
        logger.warn(
          { err: errorMessage(error) },
          'Marketplace heartbeat failed; retrying with backoff (logged once until it recovers)',
        );
      } else {
        logger.debug(
          { err: errorMessage(error), failedBeats: failures },
          'Marketplace heartbeat failed again',
        );
      }
      options.onBeat?.({ ok: false, error });
      return false;
    } finally {
      clearTimeout(timeout);
      if (controller === beatController) controller = undefined;
    }
  }

  function beat(): Promise<boolean> {
    if (inFlight !== undefined) return inFlight;
    inFlight = sendOnce().finally(() => {
      inFlight = undefined;
    });
    return inFlight;
  }

  return {
    start() {
      if (running) return;
      running = true;
      schedule(intervalMs * jitter * 2 * random());
    },
    async stop() {
      running = false;
      if (timer !== undefined) clearTimeout(timer);
      timer = undefined;
      controller?.abort(stopReason);
      await inFlight?.catch(() => {});
      if (timer !== undefined) clearTimeout(timer);
      timer = undefined;
    },
    beat,
    buildBody,
    get consecutiveFailures() {
      return failures;
    },
  };
}
