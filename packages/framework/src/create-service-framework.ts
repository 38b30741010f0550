import type { ConfigEnv } from '@mt-paas/config';
import {
  MtPaasError,
  parseTenantId,
  type Tenant,
  type TenantEventBus,
  type TenantId,
} from '@mt-paas/context';
import {
  type ActivityInput,
  type ControlPlane,
  createControlPlane,
  type XapiStatement,
} from '@mt-paas/control';
import type { Catalog } from '@mt-paas/db';
import {
  createCatalogReceiptStore,
  createMarketplaceClient,
  createMarketplaceReceiver,
  createOutbox,
  createOutboxDispatcher,
  createOutboxUsageSink,
  type MarketplaceClient,
  type MarketplaceLogin,
  type MarketplaceReceiver,
  type Outbox,
  type OutboxDispatcher,
  type SsoLoginResponse,
} from '@mt-paas/marketplace';
import {
  createInProcessEventBus,
  createRedisClient,
  createRedisEventBus,
  createTenantPipeline,
  type TenantPipeline,
  type TenantPipelineOptions,
} from '@mt-paas/middleware';
import type { SqlExecutor } from '@mt-paas/providers-vector';
import {
  createProvisioner,
  type OnboardInput,
  type Provisioner,
  type ProvisioningHooks,
} from '@mt-paas/provisioning';
import type { Redis } from 'ioredis';
import { type Logger, pino } from 'pino';
import { Registry } from 'prom-client';
import { createAfterCommit } from './after-commit.js';
import { controlOptionsFromConfig } from './control-options-from-config.js';
import {
  type FrameworkConfig,
  type FrameworkConfigSource,
  loadFrameworkConfig,
} from './load-framework-config.js';
import { createMarketplaceActions } from './marketplace-actions.js';
import { createMarketplaceHandlers, resumeProvisioning } from './marketplace-handlers.js';
import { clientOptionsFromConfig, receiverOptionsFromConfig } from './marketplace-options-from-config.js';
import { pipelineOptionsFromConfig } from './pipeline-options-from-config.js';
import { assertLlmSettings, createTenantProviders, type FrameworkProviders } from './providers.js';
import type { FrameworkTenantDb, FrameworkTenantScope } from './register.js';
import { createSsoFromConfig, defaultSsoLogin, type SsoOptions } from './sso.js';
import { createStatusReports } from './status-reports.js';
import { openStorage, type StorageOptions } from './storage.js';
import { withoutSubscriptionExpiry } from './subscription-check.js';
import { createTokenIssuer, type TokenIssuer } from './tokens.js';

/** What the app's `afterOnboard` hook receives: the new tenant, its admin, and a unit-of-work runner. */
export interface AfterOnboardContext {
  tenant: Tenant;
  /** The marketplace's `admin_email` (undefined when the tenant was onboarded without one). */
  adminEmail: string | undefined;
  adminName: string | undefined;
  /** The onboarding input (plan, application id, …). */
  input: OnboardInput;
  /** Runs a unit of work in the new tenant's storage (migrated by now). */
  scope: FrameworkTenantScope;
}

/** The app's part of the tenant lifecycle. Each hook runs at least once: write idempotently. */
export interface FrameworkHooks extends Omit<ProvisioningHooks, 'afterOnboard'> {
  /** The tenant's storage exists and is migrated: seed its admin user and sample data. */
  afterOnboard?(context: AfterOnboardContext): unknown;
}

/** Options of {@link createServiceFramework} besides where the config comes from. */
export interface ServiceFrameworkExtras extends StorageOptions {
  /** The drizzle-kit output folder of the app's tenant tables, applied at startup and to every new tenant. */
  migrationsFolder: string;
  /** Environment for `${VAR}` in the config and the variables read here. @default process.env */
  env?: ConfigEnv;
  /** Lifecycle hooks (seed the admin user at onboarding). */
  hooks?: FrameworkHooks;
  /** The URL a new tenant is reached at, answered to the marketplace. @default `<service.public_url>/?tenant=<id>` */
  accessUrl?: (tenantId: TenantId) => string;
  /** pino logger. @default pino at `logging.level`, with `service` and `version` fields */
  logger?: Logger;
  /** Extra pipeline options (routes, api keys, …) merged over what the config says. */
  pipeline?: Partial<Omit<TenantPipelineOptions, 'directory'>>;
  /**
   * Start the timers (heartbeat, kill-switch sweep, outbox dispatcher, the sweep of interrupted marketplace
   * actions) and resume what a previous process left unfinished. @default true
   */
  start?: boolean;
  /**
   * How often unfinished marketplace actions (suspend, offboard, block, unblock, the cache event of a
   * changed subscription, recorded with their delivery's receipt) are looked for and run, and lifecycle
   * transitions not yet reported to the marketplace (by another process without the event bus, or
   * interrupted by a crash) are written to the outbox. @default 60_000 (ms)
   */
  actionSweepIntervalMs?: number;
  /** Marketplace SSO key source (`auth.marketplace_sso`). @default from `marketplace.api_url` */
  sso?: SsoOptions;
  /**
   * Ends a verified marketplace login (the callback route): the app's own session. @default a login token
   * from `issueToken` in an HttpOnly cookie `mt_paas_token` and a redirect to `/?tenant=<id>`
   */
  onSsoLogin?: (login: MarketplaceLogin) => SsoLoginResponse | Promise<SsoLoginResponse>;
}

/** Options of {@link createServiceFramework}. */
export type ServiceFrameworkOptions = FrameworkConfigSource & ServiceFrameworkExtras;

/** Everything the framework built, and the few calls an app needs. */
export interface ServiceFramework {
  /** The validated config (`mt.config.custom.rag`, `mt.config.service.id`, …). */
  readonly config: FrameworkConfig;
  readonly catalog: Catalog;
  /** Tenant-scoped database access in `isolation.mode` (typed with the registered schema, `FrameworkRegister`). */
  readonly tenantDb: FrameworkTenantDb;
  /** The request pipeline; pass it to the Express / Hono adapters: `mtPaasExpress({ pipeline: mt.pipeline })`. */
  readonly pipeline: TenantPipeline;
  readonly provisioner: Provisioner;
  readonly control: ControlPlane;
  /** The marketplace webhook receiver (seed routes, Standard Webhooks, SSO callback). */
  readonly receiver: MarketplaceReceiver;
  readonly outbox: Outbox;
  /** `undefined` without `marketplace.api_url`. */
  readonly marketplaceClient: MarketplaceClient | undefined;
  readonly events: TenantEventBus;
  readonly logger: Logger;
  /** The prom-client registry of the pipeline and control metrics. */
  readonly registry: Registry;
  /** The Fastify plugin: `await app.register(mt.fastify)`. */
  readonly fastify: FrameworkFastifyPlugin;
  /** The seed's `log_activity()`: one xAPI statement for the current request's tenant and user. */
  logActivity(input: ActivityInput): XapiStatement | undefined;
  /** The tenant's LLM chain, embedding model, reranker and vector store (metered on `llm_tokens`). */
  providersFor(tenantId: string): Promise<FrameworkProviders>;
  /**
   * Signs a login token for a user of a tenant (password login): `auth.jwt.secret` / `algorithm`,
   * lifetime `auth.jwt.expiry_hours`, the tenant claim the pipeline checks. The tenant defaults to the
   * current request's.
   */
  issueToken: TokenIssuer;
  /**
   * Verifies a marketplace login token (`auth.marketplace_sso`): signature by the marketplace's keys,
   * audience `service.id`, freshness, one use; returns the verified identity. `CONFIG_INVALID` when SSO is off.
   */
  verifySsoToken(token: string, options?: { expectedTenant?: string }): Promise<MarketplaceLogin>;
  /** Onboards a tenant (what the marketplace's provision request does). */
  onboard(input: OnboardInput): Promise<Tenant>;
  /** Stops timers, drains the outbox, closes pools and connections. Idempotent. */
  close(): Promise<void>;
}

/** The Fastify plugin type (kept structural so fastify stays an optional peer). */
export type FrameworkFastifyPlugin = import('./fastify-plugin.js').FrameworkFastifyPlugin;

/**
 * Builds a whole mt-paas service from `mt-paas.yaml`: the catalog and tenant storage in the configured
 * isolation mode (Postgres when `database.central.url` / `DATABASE_URL` is set, else embedded PGlite), the
 * cached directory and event bus (Redis when `redis.url` / `REDIS_URL` is set, else in-process), auth,
 * limits and quotas, the marketplace routes wired to provisioning, control and providers. A bad config
 * fails here, with the config error.
 *
 * @example
 * const mt = await createServiceFramework({ configPath: 'mt-paas.yaml', migrationsFolder: './drizzle' });
 * const app = Fastify();
 * await app.register(mt.fastify);
 * app.get('/courses', async (req) => req.tenantDb((tx) => tx.select().from(courses)));
 */
export async function createServiceFramework(options: ServiceFrameworkOptions): Promise<ServiceFramework> {
  const env = options.env ?? process.env;
  const config = await loadFrameworkConfig({ ...options, env });
  assertLlmSettings(config);
  if (options.migrationsFolder === undefined) {
    throw new MtPaasError(
      'CONFIG_INVALID',
      'createServiceFramework needs migrationsFolder: the drizzle-kit "out" folder of your tenant tables (tenantTable() of @mt-paas/db), applied at startup and to every new tenant.',
    );
  }
  const logger =
    options.logger ??
    pino({
      level: config.logging.level,
      name: config.service.name,
      base: { service: config.service.id, version: config.service.version },
    });
  const closers: Array<() => Promise<unknown>> = [];
  const close = async () => {
    const errors: unknown[] = [];
    for (const closer of closers.splice(0).reverse()) {
      try {
        await closer();
      } catch (error) {
        errors.push(error);
      }
    }
    if (errors.length > 0) logger.warn({ errors }, 'mt-paas: some resources did not close cleanly');
  };
  try {
    return await build(config, options, env, logger, closers, close);
  } catch (error) {
    await close();
    throw error;
  }
}

async function build(
  config: FrameworkConfig,
  options: ServiceFrameworkOptions,
  env: ConfigEnv,
  logger: Logger,
  closers: Array<() => Promise<unknown>>,
  close: () => Promise<void>,
): Promise<ServiceFramework> {
  const { catalog, tenantDb, mode, placements } = await openStorage(config, options, env, closers);

  const redisUrl = config.redis.url ?? nonEmpty(env.REDIS_URL);
  // `redis.key_prefix` ("mt-paas:") prefixes every key and the event channel.
  const keyPrefix = config.redis.keyPrefix.replace(/:+$/, '') || 'mtpaas';
  let redis: Redis | undefined;
  let events: TenantEventBus;
  if (redisUrl === undefined) {
    events = createInProcessEventBus();
  } else {
    redis = createRedisClient({ url: redisUrl });
    const subscriber = createRedisClient({ url: redisUrl });
    events = createRedisEventBus({ redis: subscriber, channel: `${keyPrefix}:tenant-events` });
    closers.push(async () => {
      redis?.disconnect();
      subscriber.disconnect();
    });
  }
  closers.push(() => events.close());
  // Closed after the pipeline and control (registered before them: closers run in reverse), so the usage
  // and alerts they flush on close are sent in the drain.
  let dispatcher: OutboxDispatcher | undefined;
  closers.push(async () => {
    if (dispatcher === undefined) return;
    await dispatcher.stop();
    await dispatcher
      .runOnce()
      .catch((error: unknown) =>
        logger.warn({ err: error }, 'mt-paas: the outbox could not be drained; it is sent on the next start'),
      );
  });

  const registry = new Registry();
  const outbox = createOutbox(catalog);
  const marketplaceClient =
    config.marketplace.enabled && config.marketplace.apiUrl !== undefined
      ? createMarketplaceClient(clientOptionsFromConfig(config))
      : undefined;

  const control = createControlPlane(
    controlOptionsFromConfig(config, {
      catalog,
      events,
      outbox,
      registry,
      logger,
      ...(marketplaceClient === undefined ? {} : { heartbeatSender: marketplaceClient }),
    }),
  );

  // logging.usage_report: usage goes to the marketplace (through the outbox) only when enabled.
  const usageSink =
    marketplaceClient === undefined || !config.logging.usageReport.enabled
      ? catalog.usage
      : createOutboxUsageSink({ outbox, next: catalog.usage });
  const fromConfig = pipelineOptionsFromConfig(config);
  const pipeline = createTenantPipeline({
    ...fromConfig,
    // marketplace.subscription_check: false serves tenants regardless of their subscription's end.
    directory: config.marketplace.subscriptionCheck
      ? catalog.directory
      : withoutSubscriptionExpiry(catalog.directory),
    events,
    usageSink,
    auditSink: control.audit,
    logger,
    metrics: { registry },
    keyPrefix,
    rateLimit: { ...fromConfig.rateLimit, ...(redis === undefined ? {} : { redis }) },
    quota: {
      flushIntervalMs: config.logging.usageReport.intervalMinutes * 60_000,
      // A threshold (80 %) or a refusal (100 %) is audited — `quota.exceeded` as `high`, which control forwards
      // to the marketplace as an alert — and counted in the control metrics.
      onEvent: (event) => {
        control.metrics.quotaEvent(event);
        void control.audit
          .record({
            type: event.type === 'quota.exceeded' ? 'quota_exceeded' : 'quota_threshold',
            severity: event.type === 'quota.exceeded' ? 'high' : 'medium',
            tenantId: event.tenantId,
            details: {
              meter: event.meter,
              percent: event.percent,
              used: event.used,
              limit: event.limit,
              enforcement: event.enforcement,
              periodStart: event.periodStart,
            },
            at: new Date(),
          })
          .catch((error: unknown) => logger.warn({ err: error }, 'mt-paas: a quota event was not audited'));
      },
      ...(redis === undefined ? {} : { redis }),
    },
    ...options.pipeline,
  });
  await pipeline.start();
  closers.push(() => pipeline.close());

  const hooks = options.hooks ?? {};
  const provisioner = createProvisioner({
    catalog,
    tenantDbs: { [tenantDb.mode]: tenantDb },
    defaultMode: mode,
    placements,
    events,
    audit: control.audit,
    hooks: {
      ...withoutAfterOnboard(hooks),
      ...(hooks.afterOnboard === undefined
        ? {}
        : {
            afterOnboard: ({ tenant, input, scope }) =>
              hooks.afterOnboard?.({
                tenant,
                adminEmail: input.adminEmail,
                adminName: input.adminName,
                input,
                scope,
              }),
          }),
    },
  });

  const afterCommit = createAfterCommit(catalog);
  const actions = createMarketplaceActions({ catalog, provisioner, control, events });
  const accessUrl =
    options.accessUrl ??
    ((tenantId: TenantId) =>
      `${config.service.publicUrl ?? 'http://localhost:3000'}/?tenant=${encodeURIComponent(tenantId)}`);
  const issueToken = createTokenIssuer(config);
  const sso = createSsoFromConfig(config, catalog, options.sso);
  const receiver = createMarketplaceReceiver({
    ...receiverOptionsFromConfig(config),
    ...(sso === undefined ? {} : { sso, ssoCallbackPath: receiverOptionsFromConfig(config).ssoCallbackPath }),
    receipts: afterCommit.wrap(createCatalogReceiptStore(catalog)),
    handlers: createMarketplaceHandlers({
      catalog,
      provisioner,
      afterCommit,
      actions,
      accessUrl,
      config,
      mode,
      ...(sso === undefined
        ? {}
        : {
            onSsoLogin:
              options.onSsoLogin ??
              defaultSsoLogin(issueToken, config.service.publicUrl?.startsWith('https:') ?? false),
          }),
    }),
    onHandlerError: (error, context) =>
      logger.error({ err: error, ...context }, 'mt-paas: a marketplace delivery failed'),
  });

  if (marketplaceClient !== undefined) {
    dispatcher = createOutboxDispatcher({
      outbox,
      client: marketplaceClient,
      onError: (error) => logger.warn({ err: error }, 'mt-paas: outbox delivery failed'),
    });
  }
  // Every lifecycle transition (by a delivery, `mt.onboard`, the CLI) is reported to the marketplace: on its
  // tenant event (this instance's, or another's over Redis), on the sweep timer (what a crash or a process
  // without the event bus left), and at close (before the outbox is drained).
  let flushStatusReports: () => Promise<void> = async () => {};
  if (marketplaceClient !== undefined) {
    const statusReports = createStatusReports({ catalog, outbox });
    let flushing: Promise<void> | undefined;
    let again = false;
    const flushOnce = (): Promise<void> =>
      statusReports.flush().then(
        () => undefined,
        (error: unknown) =>
          logger.warn({ err: error }, 'mt-paas: tenant status reports were not written yet'),
      );
    flushStatusReports = () => {
      if (flushing !== undefined) {
        again = true;
        return flushing;
      }
      flushing = (async () => {
        do {
          again = false;
          await flushOnce();
        } while (again);
      })().finally(() => {
        flushing = undefined;
      });
      return flushing;
    };
    const unsubscribe = await events.subscribe((event) => {
      if (
        event.type === 'tenant.changed' ||
        event.type === 'tenant.deleted' ||
        event.type === 'tenant.blocked' ||
        event.type === 'tenant.unblocked'
      ) {
        void flushStatusReports();
      }
    });
    closers.push(async () => {
      await unsubscribe();
      await flushStatusReports();
    });
  }
  closers.push(() => control.stop());

  const centralUrl = config.database.central.url ?? env.DATABASE_URL;
  const providers = createTenantProviders({
    config,
    catalog,
    pipeline,
    env,
    usageSink,
    pgvector:
      catalog.driver.pglite !== undefined
        ? { executor: catalog.driver.pglite as unknown as SqlExecutor }
        : centralUrl === undefined || centralUrl === ''
          ? {}
          : { connectionString: centralUrl },
  });
  closers.push(() => providers.close());

  if (options.start !== false) {
    control.start();
    dispatcher?.start();
    // Tenants a previous process left half-onboarded; closed before the storage (closers run in reverse).
    const resuming = resumeProvisioning(catalog, provisioner, config).then(
      ({ resumed, failed }) => {
        if (resumed.length > 0) logger.info({ resumed }, 'mt-paas: resumed interrupted onboardings');
        for (const { tenantId, error } of failed) {
          logger.warn(
            { err: error, tenantId },
            'mt-paas: an interrupted onboarding could not be resumed yet',
          );
        }
      },
      (error: unknown) => logger.warn({ err: error }, 'mt-paas: interrupted onboardings were not checked'),
    );
    closers.push(() => resuming);
    // Marketplace actions a previous process (or this one: a failed run) left unfinished, at start and on
    // a timer. Each runs under its tenant's lock and is skipped once done, so instances sweeping at once
    // do it once.
    let sweeping: Promise<void> | undefined;
    const sweep = () => {
      void flushStatusReports();
      sweeping ??= actions
        .resume()
        .then(
          ({ resumed, failed }) => {
            if (resumed.length > 0)
              logger.info({ jobs: resumed }, 'mt-paas: ran interrupted marketplace actions');
            for (const { jobId, error } of failed) {
              logger.warn({ err: error, jobId }, 'mt-paas: an interrupted marketplace action failed again');
            }
          },
          (error: unknown) =>
            logger.warn({ err: error }, 'mt-paas: interrupted marketplace actions were not checked'),
        )
        .finally(() => {
          sweeping = undefined;
        });
    };
    sweep();
    const sweepTimer = setInterval(sweep, options.actionSweepIntervalMs ?? 60_000);
    sweepTimer.unref();
    closers.push(async () => {
      clearInterval(sweepTimer);
      await sweeping;
    });
  }

  const { createFrameworkFastifyPlugin } = await import('./fastify-plugin.js');
  let closed: Promise<void> | undefined;
  const framework: ServiceFramework = {
    config,
    catalog,
    tenantDb,
    pipeline,
    provisioner,
    control,
    receiver,
    outbox,
    marketplaceClient,
    events,
    logger,
    registry,
    fastify: undefined as unknown as FrameworkFastifyPlugin,
    logActivity: (input) => control.logActivity(input),
    providersFor: (tenantId) => providers.forTenant(parseTenantId(tenantId)),
    issueToken,
    verifySsoToken: async (token, verifyOptions) => {
      if (sso === undefined) {
        throw new MtPaasError(
          'CONFIG_INVALID',
          'Marketplace SSO is off: set auth.marketplace_sso.enabled: true (with marketplace.api_url) to verify login tokens.',
        );
      }
      return sso.verify(token, verifyOptions);
    },
    onboard: (input) => provisioner.onboard(input),
    close: () => {
      closed ??= close();
      return closed;
    },
  };
  (framework as { fastify: FrameworkFastifyPlugin }).fastify = createFrameworkFastifyPlugin(framework);
  return framework;
}

function withoutAfterOnboard(hooks: FrameworkHooks): ProvisioningHooks {
  const { afterOnboard: _afterOnboard, ...rest } = hooks;
  return rest;
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === '' ? undefined : value;
}
