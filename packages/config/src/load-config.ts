import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, dirname, extname, join, resolve } from 'node:path';
import type { z } from 'zod';
import { configInvalidError } from './config-error.js';
import type { ConfigEnv } from './interpolate.js';
import { type ConfigSource, parseSources } from './parse-config.js';
import type { MtPaasConfig } from './schema.js';

/** File names `loadConfig` looks for in `cwd` when no `path` is given, in this order. */
export const DEFAULT_CONFIG_FILES = [
  'mt-paas.yaml',
  'mt-paas.yml',
  'mt_paas_config.yaml',
  'mt_paas_config.yml',
] as const;

/** Options of {@link loadConfig} and {@link findConfigFiles}. */
export interface LoadConfigOptions<Custom = Record<string, unknown>> {
  /**
   * The main config file. When omitted, the first of `mt-paas.yaml`, `mt-paas.yml`,
   * `mt_paas_config.yaml`, `mt_paas_config.yml` found in `cwd`; when none exists, the
   * built-in defaults are used (the embedded demo setup).
   */
  path?: string;
  /**
   * The environment whose overlay is merged over the main file (`dev`, `prod`, …).
   * @default env.MT_PAAS_ENV, else env.NODE_ENV, else no overlay
   */
  environment?: string;
  /** Variables for `${VAR}` interpolation and the environment fallback. @default process.env */
  env?: ConfigEnv;
  /** A zod schema for the `custom:` section; `config.custom` gets its output type. */
  customSchema?: z.ZodType<Custom>;
  /** Directory a relative `path` and the default file names are looked up in. @default process.cwd() */
  cwd?: string;
}

/** The files a config is made of. */
export interface ConfigFiles {
  /** The main file (absolute), or undefined when none was found (defaults only). */
  main?: string;
  /** Overlays in merge order (absolute). */
  overlays: string[];
  /** The environment the overlays were chosen for. */
  environment?: string;
}

/** Environment names that find each other's overlays (`NODE_ENV=production` finds `*.prod.yaml`). */
const ENVIRONMENT_ALIASES: Readonly<Record<string, readonly string[]>> = {
  dev: ['development'],
  development: ['dev'],
  prod: ['production'],
  production: ['prod'],
  test: ['testing'],
  testing: ['test'],
  stage: ['staging'],
  staging: ['stage'],
};

/** The environment `loadConfig` uses: the option, else `MT_PAAS_ENV`, else `NODE_ENV`. */
export function resolveEnvironment(environment: string | undefined, env: ConfigEnv): string | undefined {
  const value = environment ?? env.MT_PAAS_ENV ?? env.NODE_ENV;
  const trimmed = value?.trim();
  return trimmed === '' ? undefined : trimmed;
}

/**
 * Which files `loadConfig` reads: the main file and, for the environment, the overlays beside
 * it — `mt-paas.<env>.yaml` and `<basename>.<env>.yaml` (e.g. `mt_paas_config.dev.yaml`), `.yml`
 * too, and the long/short spelling of the environment (`dev` ↔ `development`, `prod` ↔
 * `production`). Two different overlays for one environment are an error (keep one).
 */
export function findConfigFiles(options: Omit<LoadConfigOptions, 'customSchema'> = {}): ConfigFiles {
  const cwd = options.cwd ?? process.cwd();
  const env = options.env ?? process.env;
  const environment = resolveEnvironment(options.environment, env);
  let main: string | undefined;
  if (options.path !== undefined) {
    main = resolve(cwd, options.path);
    if (!existsSync(main)) {
      throw configInvalidError([
        {
          kind: 'file',
          file: main,
          path: '',
          message: 'config file not found; check the path (or omit it to run on the built-in defaults)',
        },
      ]);
    }
  } else {
    main = DEFAULT_CONFIG_FILES.map((name) => join(cwd, name)).find((file) => existsSync(file));
  }
  if (environment === undefined) return { main, overlays: [] };

  const directory = main === undefined ? cwd : dirname(main);
  const stems = new Set(['mt-paas']);
  if (main !== undefined) stems.add(basename(main, extname(main)));
  const names = [environment, ...(ENVIRONMENT_ALIASES[environment.toLowerCase()] ?? [])];
  const candidates = new Set<string>();
  for (const stem of stems) {
    for (const name of names) {
      for (const extension of ['.yaml', '.yml'])
        candidates.add(join(directory, `${stem}.${name}${extension}`));
    }
  }
  const overlays = [...candidates].filter((file) => file !== main && existsSync(file));
  if (overlays.length > 1) {
    throw configInvalidError(
      overlays.map((file) => ({
        kind: 'file' as const,
        file,
        path: '',
        message: `is one of ${overlays.length} overlays for environment "${environment}"; keep only one of them`,
      })),
    );
  }
  return { main, overlays, environment };
}

/**
 * Loads the service's config: the main YAML file, the overlay of the environment, `${VAR}`
 * interpolation, validation — and returns the typed {@link MtPaasConfig}. With no file at all
 * the result is the built-in defaults (embedded database, row isolation, header + subdomain +
 * query identification). Throws one `MtPaasError('CONFIG_INVALID')` listing every problem.
 *
 * @example
 * const config = await loadConfig({ path: 'mt-paas.yaml', environment: 'dev' });
 * config.marketplace.heartbeatIntervalSeconds; // 60
 */
export async function loadConfig<Custom = Record<string, unknown>>(
  options: LoadConfigOptions<Custom> = {},
): Promise<MtPaasConfig<Custom>> {
  const files = findConfigFiles(options);
  const sources: ConfigSource[] = [];
  for (const file of [files.main, ...files.overlays]) {
    if (file === undefined) continue;
    try {
      sources.push({ filename: file, text: await readFile(file, 'utf8') });
    } catch (error) {
      throw configInvalidError([
        { kind: 'file', file, path: '', message: `cannot be read: ${(error as Error).message}` },
      ]);
    }
  }
  if (sources.length === 0) sources.push({ filename: '(built-in defaults)', text: '' });
  const cwd = options.cwd ?? process.cwd();
  return parseSources(sources, {
    env: options.env ?? process.env,
    customSchema: options.customSchema,
    baseDir: files.main === undefined ? cwd : dirname(files.main),
  });
}
