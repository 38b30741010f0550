import { type ConfigEnv, loadConfig, type MtPaasConfig, parseConfig } from '@mt-paas/config';

/** Where the framework's config comes from. */
export type FrameworkConfigSource =
  | {
      /** Path of `mt-paas.yaml` (environment overlays `mt-paas.<env>.yaml` beside it are merged). @default found from `cwd` */
      configPath?: string;
      /** Directory the config file is searched in. @default process.cwd() */
      cwd?: string;
      /** Environment overlay to merge (`dev`, `prod`, …). @default MT_PAAS_ENV / NODE_ENV */
      environment?: string;
      config?: undefined;
    }
  | {
      /** The config: a parsed `MtPaasConfig` (from `loadConfig` / `parseConfig`) or the YAML text. */
      config: MtPaasConfig | string;
      configPath?: undefined;
    };

/** Loads and validates the config (throws `CONFIG_INVALID` with file:line for a bad file). */
export async function loadFrameworkConfig(
  source: FrameworkConfigSource & { env?: ConfigEnv },
): Promise<MtPaasConfig> {
  const env = source.env ?? process.env;
  if (source.config !== undefined) {
    return typeof source.config === 'string'
      ? parseConfig(source.config, { filename: 'mt-paas.yaml', env })
      : source.config;
  }
  const { configPath, cwd, environment } = source as {
    configPath?: string;
    cwd?: string;
    environment?: string;
  };
  return loadConfig({
    env,
    ...(configPath === undefined ? {} : { path: configPath }),
    ...(cwd === undefined ? {} : { cwd }),
    ...(environment === undefined ? {} : { environment }),
  });
}
