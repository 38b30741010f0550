import { MtPaasError, type TenantEventBus } from '@mt-paas/context';
import {
  type ControlLogger,
  type ControlPlaneOptions,
  createRegistryMetricsSource,
  type HeartbeatSender,
  type MarketOutbox,
} from '@mt-paas/control';
import type { Catalog } from '@mt-paas/db';
import { createMarketplaceClient } from '@mt-paas/marketplace';
import type { Registry } from 'prom-client';

/** The parts of a parsed `mt-paas.yaml` (`@mt-paas/config`'s `MtPaasConfig`) control reads. */
export interface ControlConfigInput {
  service: { id: string; publicUrl?: string | undefined };
  marketplace?: {
    enabled: boolean;
    apiUrl?: string | undefined;
    apiKey?: string | undefined;
    heartbeatIntervalSeconds: number;
    timeoutSeconds: number;
  };
  security?: { crossTenantAudit: boolean };
  logging?: {
    activityLog: {
      enabled: boolean;
      endpoint?: string | undefined;
      username?: string | undefined;
      password?: string | undefined;
    };
  };
}

/** What the config cannot say: the objects control works with. */
export interface ControlDependencies {
  catalog: ControlPlaneOptions['catalog'] & Pick<Catalog, 'schema'>;
  events?: TenantEventBus;
  outbox?: MarketOutbox;
  /**
   * `@mt-paas/marketplace`'s client (`createMarketplaceClient(clientOptionsFromConfig(config))`), to share
   * one with the rest of the service; without it control creates one from `marketplace.api_url` / `api_key`.
   */
  heartbeatSender?: HeartbeatSender;
  /** The pipeline's registry (`pipeline.metrics.registry`): heartbeat metrics and one `/metrics`. */
  registry?: Registry;
  /** Tenants with their own metric label. */
  tenantLabelAllowList?: readonly string[];
  logger?: ControlLogger;
}

/**
 * {@link ControlPlaneOptions} from a parsed config: `service.id`, `marketplace.heartbeat_interval` /
 * `timeout_seconds` / `api_url` / `api_key` (heartbeat only when the marketplace is enabled),
 * `security.cross_tenant_audit`, `logging.activity_log` (needs `service.public_url` for the xAPI actor).
 *
 * @throws MtPaasError `CONFIG_INVALID` when the activity log is on without `service.public_url`.
 */
export function controlOptionsFromConfig(
  config: ControlConfigInput,
  dependencies: ControlDependencies,
): ControlPlaneOptions {
  const market = config.marketplace;
  const options: ControlPlaneOptions = {
    serviceId: config.service.id,
    catalog: dependencies.catalog,
    audit: { crossTenantAudit: config.security?.crossTenantAudit ?? true },
  };
  if (dependencies.events !== undefined) options.events = dependencies.events;
  if (dependencies.outbox !== undefined) options.outbox = dependencies.outbox;
  if (dependencies.logger !== undefined) options.logger = dependencies.logger;
  options.metrics = {
    ...(dependencies.registry === undefined ? {} : { registry: dependencies.registry }),
    ...(dependencies.tenantLabelAllowList === undefined
      ? {}
      : { tenantLabelAllowList: dependencies.tenantLabelAllowList }),
  };
  if (
    market?.enabled === true &&
    (market.apiUrl !== undefined || dependencies.heartbeatSender !== undefined)
  ) {
    const intervalMs = market.heartbeatIntervalSeconds * 1000;
    options.heartbeat = {
      sender:
        dependencies.heartbeatSender ??
        createMarketplaceClient({
          apiUrl: market.apiUrl!,
          serviceId: config.service.id,
          timeoutMs: market.timeoutSeconds * 1000,
          ...(market.apiKey === undefined ? {} : { apiKey: market.apiKey }),
        }),
      intervalMs,
      timeoutMs: Math.min(market.timeoutSeconds * 1000, intervalMs / 2),
      ...(dependencies.registry === undefined
        ? {}
        : { metrics: createRegistryMetricsSource({ registry: dependencies.registry }) }),
    };
  }
  const activity = config.logging?.activityLog;
  if (activity?.enabled === true && activity.endpoint !== undefined) {
    if (config.service.publicUrl === undefined) {
      throw new MtPaasError(
        'CONFIG_INVALID',
        'logging.activity_log is on but service.public_url is not set; set it (the xAPI actor is an account of the service at that URL).',
      );
    }
    options.activityLog = {
      endpoint: activity.endpoint,
      serviceUrl: config.service.publicUrl,
      ...(activity.username === undefined ? {} : { username: activity.username }),
      ...(activity.password === undefined ? {} : { password: activity.password }),
    };
  }
  return options;
}
