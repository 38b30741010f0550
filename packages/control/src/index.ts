export type {
  ActivityInput,
  ActivityLogger,
  ActivityLoggerOptions,
  XapiStatement,
} from './activity-logger.js';
export { ADL_VERBS, createActivityLogger } from './activity-logger.js';
export type { AuditLogger, AuditLoggerOptions, AuthFailure } from './audit-logger.js';
export { createAuditLogger, DEFAULT_AGGREGATED_AUDIT_TYPES } from './audit-logger.js';
export type { ControlMetrics, ControlMetricsOptions, QuotaUsageSample } from './control-metrics.js';
export { createControlMetrics } from './control-metrics.js';
export type { ControlPlane, ControlPlaneOptions } from './control-plane.js';
export { createControlPlane } from './control-plane.js';
export type { HeartbeatService, HeartbeatServiceOptions } from './heartbeat.js';
export { createHeartbeatService } from './heartbeat.js';
export type {
  BlockInput,
  BlockResult,
  KillSwitch,
  KillSwitchActor,
  KillSwitchOptions,
} from './kill-switch.js';
export { createKillSwitch, parseBlockRequest, UNBLOCK_STATUS_KEY } from './kill-switch.js';
export type { ControlLogger } from './logger.js';
export type { HeartbeatMetrics, HeartbeatSender, MarketOutbox, ServiceHealth } from './market.js';
export type { QuotaUsageSourceOptions } from './quota-usage-source.js';
export { createQuotaUsageSource } from './quota-usage-source.js';
export type { RegistryMetricsSourceOptions } from './registry-metrics-source.js';
export { createRegistryMetricsSource } from './registry-metrics-source.js';
