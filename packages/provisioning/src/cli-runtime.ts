import { isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { loadConfig, type MtPaasConfig } from '@mt-paas/config';
import { MtPaasError } from '@mt-paas/context';
import { type Catalog, createCatalog, createTenantDb, type TenantDb } from '@mt-paas/db';
import { createDockerPlacement, type DockerPlacement } from './docker-placement.js';
import {
  createProvisioner,
  type Provisioner,
  type ProvisioningHooks,
  type StorageMode,
} from './provisioner.js';

/** Global options of the `mt-paas` CLI. */
export interface CliGlobalOptions {
  config?: string;
  env?: string;
  databaseUrl?: string;
  appUrl?: string;
  migrations?: string;
  deployRoot?: string;
  baseDomain?: string;
  hooks?: string;
  json?: boolean;
}

/** Everything a command needs, opened from the config and the environment. */
export interface CliRuntime {
  config: MtPaasConfig;
  catalog: Catalog;
  centralUrl: string;
  appUrl: string | undefined;
  migrationsFolder: string | undefined;
  tenantDbs: Partial<Record<StorageMode, TenantDb>>;
  docker: DockerPlacement;
  provisioner: Provisioner;
  close(): Promise<void>;
}

/** Loads the config (file, overlay, `${VAR}`) without opening anything. */
export async function loadCliConfig(options: CliGlobalOptions): Promise<MtPaasConfig> {
  return loadConfig({
    ...(options.config === undefined ? {} : { path: options.config }),
    ...(options.env === undefined ? {} : { environment: options.env }),
  });
}

/** The central (owner) URL: `--database-url`, `DATABASE_URL`, then `database.central.url`. */
export function centralUrlOf(options: CliGlobalOptions, config: MtPaasConfig): string {
  const url = options.databaseUrl ?? process.env.DATABASE_URL ?? config.database.central.url;
  if (url === undefined || url === '') {
    throw new MtPaasError(
      'CONFIG_INVALID',
      'No central database: set database.central.url in mt-paas.yaml, DATABASE_URL, or --database-url (the CLI does not run on the embedded database).',
    );
  }
  return url;
}

/** Opens catalog, tenant dbs, docker placement and the provisioner. */
export async function openRuntime(options: CliGlobalOptions): Promise<CliRuntime> {
  const config = await loadCliConfig(options);
  const centralUrl = centralUrlOf(options, config);
  const appUrl = options.appUrl ?? process.env.MT_PAAS_APP_DATABASE_URL;
  const migrationsRaw = options.migrations ?? process.env.MT_PAAS_MIGRATIONS;
  const migrationsFolder = migrationsRaw === undefined ? undefined : resolve(migrationsRaw);
  const catalog = await createCatalog({ connectionString: centralUrl, maxConnections: 4 });
  const tenantDbs: Partial<Record<StorageMode, TenantDb>> = {};
  try {
    await catalog.migrate();
    const common = {
      catalog,
      adminConnectionString: centralUrl,
      ...(migrationsFolder === undefined ? {} : { migrationsFolder }),
      maxConnections: 2,
    };
    if (appUrl !== undefined) {
      tenantDbs.row = await createTenantDb({ ...common, mode: 'row', connectionString: appUrl });
      tenantDbs.schema = await createTenantDb({ ...common, mode: 'schema', connectionString: appUrl });
    }
    const urlTemplate = config.database.tenant.urlTemplate;
    if (appUrl !== undefined || urlTemplate !== undefined) {
      tenantDbs.database = await createTenantDb({
        ...common,
        mode: 'database',
        ...(appUrl === undefined ? {} : { connectionString: appUrl }),
        database: {
          ...(urlTemplate === undefined ? {} : { urlTemplate }),
          maxConnections: config.database.tenant.maxConnections,
        },
      });
    }
    const dockerConfig = config.isolation.docker;
    const docker = createDockerPlacement({
      catalog,
      composeTemplate: dockerConfig.composeTemplate,
      deployRoot: resolve(options.deployRoot ?? process.env.MT_PAAS_DEPLOY_ROOT ?? 'deploy'),
      portRangeStart: dockerConfig.portRangeStart,
      portRangeSize: dockerConfig.portRangeSize,
      serviceId: config.service.id.toLowerCase(),
      baseDomain: options.baseDomain ?? process.env.MT_PAAS_BASE_DOMAIN ?? 'localhost',
    });
    const hooks = options.hooks === undefined ? undefined : await loadHooks(options.hooks);
    const provisioner = createProvisioner({
      catalog,
      tenantDbs,
      defaultMode: config.isolation.mode,
      placements: { docker },
      actor: 'mt-paas-cli',
      ...(hooks === undefined ? {} : { hooks }),
      ...(migrationsFolder === undefined
        ? {}
        : {
            archive: { ...(appUrl === undefined ? {} : { appConnectionString: appUrl }), migrationsFolder },
          }),
    });
    return {
      config,
      catalog,
      centralUrl,
      appUrl,
      migrationsFolder,
      tenantDbs,
      docker,
      provisioner,
      async close() {
        for (const tenantDb of Object.values(tenantDbs)) await tenantDb.close();
        await catalog.close();
      },
    };
  } catch (error) {
    for (const tenantDb of Object.values(tenantDbs)) await tenantDb.close().catch(() => {});
    await catalog.close().catch(() => {});
    throw error;
  }
}

/** Imports `--hooks <module>`: its `hooks` export (or default export) is a `ProvisioningHooks`. */
async function loadHooks(path: string): Promise<ProvisioningHooks> {
  const absolute = isAbsolute(path) ? path : resolve(path);
  let module: { hooks?: ProvisioningHooks; default?: ProvisioningHooks };
  try {
    module = (await import(pathToFileURL(absolute).href)) as typeof module;
  } catch (error) {
    throw new MtPaasError(
      'CONFIG_INVALID',
      `Cannot load the hooks module ${absolute}: ${(error as Error).message}`,
      {
        cause: error,
      },
    );
  }
  const hooks = module.hooks ?? module.default;
  if (hooks === undefined || typeof hooks !== 'object') {
    throw new MtPaasError(
      'CONFIG_INVALID',
      `${absolute} exports no "hooks" object (export const hooks = { afterOnboard … }).`,
    );
  }
  return hooks;
}
