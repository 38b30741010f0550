import type { TenantEventBus } from '@mt-paas/context';
import type { Catalog } from '@mt-paas/db';
import {
  type ActivityInput,
  type ActivityLogger,
  type ActivityLoggerOptions,
  createActivityLogger,
  type XapiStatement,
} from './activity-logger.js';
import { type AuditLogger, type AuditLoggerOptions, createAuditLogger } from './audit-logger.js';
import { type ControlMetrics, type ControlMetricsOptions, createControlMetrics } from './control-metrics.js';
import { createHeartbeatService, type HeartbeatService, type HeartbeatServiceOptions } from './heartbeat.js';
import { createKillSwitch, type KillSwitch, quoteSchema } from './kill-switch.js';
import { type ControlLogger, defaultLogger } from './logger.js';
import type { MarketOutbox } from './market.js';

/** Options of {@link createControlPlane}. */
export interface ControlPlaneOptions {
  /** `service.id` of the config. */
  serviceId: string;
  /** The central catalog (`createCatalog()` of `@mt-paas/db`): blocks, audit rows, tenant counts. */
  catalog: Pick<Catalog, 'driver' | 'schema' | 'audit'>;
  /** The tenant event bus the pipelines listen on (`createRedisEventBus`): every instance hears blocks. */
  events?: TenantEventBus;
  /**
   * The catalog outbox of `@mt-paas/marketplace` (`createOutbox({ driver: catalog.driver, schema: catalog.schema })`):
   * status reports and audit alerts for the market. Its `stats()` feeds the outbox metrics.
   */
  outbox?: MarketOutbox;
  /**
   * The heartbeat; `false` or omitted = none (no market configured). `activeTenants` defaults to the
   * catalog's active and grace tenants.
   */
  heartbeat?:
    | (Omit<HeartbeatServiceOptions, 'serviceId' | 'logger' | 'onBeat'> & { enabled?: boolean })
    | false;
  /** Audit logger options (`crossTenantAudit` = `security.cross_tenant_audit`). */
  audit?: Omit<AuditLoggerOptions, 'sink' | 'outbox' | 'serviceId' | 'logger' | 'onEvent'>;
  /** xAPI activity log (`logging.activity_log`); off when omitted or without `endpoint`. */
  activityLog?: Omit<ActivityLoggerOptions, 'serviceId' | 'logger' | 'onOutcome'>;
  /** Metrics (pass the pipeline's `registry` to serve one `/metrics`). Tenant counts default to the catalog. */
  metrics?: ControlMetricsOptions;
  /** How often expired blocks are lifted. @default 5_000 */
  expiryCheckIntervalMs?: number;
  logger?: ControlLogger;
}

/** The control plane of one service instance. */
export interface ControlPlane {
  /** Starts the heartbeat, the block-expiry sweep, the audit window timer and the activity sender. */
  start(): void;
  /** Stops all of them and flushes the audit windows and the activity buffer. No timer is left. */
  stop(): Promise<void>;
  block: KillSwitch['block'];
  unblock: KillSwitch['unblock'];
  /** The audit logger: an `AuditSink` (pass it as the pipeline's `auditSink`). */
  audit: AuditLogger;
  /** The seed's `log_activity()`: one xAPI statement, buffered (`undefined` when off). */
  logActivity(input: ActivityInput): XapiStatement | undefined;
  metrics: ControlMetrics;
  killSwitch: KillSwitch;
  activity: ActivityLogger;
  /** `undefined` when no heartbeat is configured. */
  heartbeat: HeartbeatService | undefined;
}

/**
 * The control plane of seed 001 §5 inside the service, from one call: heartbeat to the market, kill
 * switch (block / unblock / expiring blocks on every instance), the audit logger, the xAPI activity log
 * and the operational metrics.
 *
 * @example
 * const control = createControlPlane({ serviceId: 'keli_tutor', catalog, events, outbox,
 *   heartbeat: { sender, intervalMs: 60_000, metrics: createRegistryMetricsSource({ registry }) } });
 * control.start();
 * await control.block('univ_8', { reason: 'subscription_expired', message: 'Renew the subscription.' });
 */
export function createControlPlane(options: ControlPlaneOptions): ControlPlane {
  const logger = options.logger ?? defaultLogger();
  const driver = options.catalog.driver;
  const tenants = `${quoteSchema(options.catalog.schema)}.tenants`;
  const outbox = options.outbox;

  const metrics = createControlMetrics({
    tenantCounts: async () =>
      (
        await driver.query<{ status: string; plan: string; count: string }>(
          `SELECT status, plan, count(*) AS count FROM ${tenants} GROUP BY status, plan`,
        )
      ).rows.map((row) => ({ status: row.status, plan: row.plan, count: Number(row.count) })),
    ...(outbox?.stats === undefined ? {} : { outboxStats: () => outbox.stats!() }),
    ...options.metrics,
  });
  const audit = createAuditLogger({
    ...options.audit,
    sink: options.catalog.audit,
    ...(options.outbox === undefined ? {} : { outbox: options.outbox }),
    serviceId: options.serviceId,
    logger,
    onEvent: (event, outcome) => metrics.auditEvent(event.severity, outcome),
  });
  const killSwitch = createKillSwitch({
    catalog: options.catalog,
    ...(options.events === undefined ? {} : { events: options.events }),
    audit,
    ...(options.outbox === undefined ? {} : { outbox: options.outbox }),
    serviceId: options.serviceId,
    ...(options.expiryCheckIntervalMs === undefined
      ? {}
      : { expiryCheckIntervalMs: options.expiryCheckIntervalMs }),
    onAction: (action) => metrics.killSwitchAction(action),
    logger,
  });
  const activity = createActivityLogger({
    serviceUrl: 'http://localhost',
    ...options.activityLog,
    serviceId: options.serviceId,
    logger,
    onOutcome: (outcome, n) => metrics.activityStatements(outcome, n),
  });
  const heartbeatOptions = options.heartbeat;
  const heartbeat =
    heartbeatOptions === undefined || heartbeatOptions === false || heartbeatOptions.enabled === false
      ? undefined
      : createHeartbeatService({
          activeTenants: async () =>
            (
              await driver.query<{ id: string }>(
                `SELECT id FROM ${tenants} WHERE status IN ('active', 'grace') ORDER BY id LIMIT 10000`,
              )
            ).rows.map((row) => row.id),
          ...heartbeatOptions,
          serviceId: options.serviceId,
          logger,
          onBeat: ({ ok }) => metrics.heartbeat(ok),
        });

  return {
    start() {
      audit.start();
      killSwitch.start();
      activity.start();
      heartbeat?.start();
    },
    async stop() {
      await Promise.all([heartbeat?.stop(), killSwitch.stop()]);
      await Promise.all([audit.stop(), activity.stop()]);
    },
    block: killSwitch.block,
    unblock: killSwitch.unblock,
    audit,
    logActivity: (input) => activity.log(input),
    metrics,
    killSwitch,
    activity,
    heartbeat,
  };
}
