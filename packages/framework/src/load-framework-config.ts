import { type ConfigEnv, loadConfig, type MtPaasConfig, parseConfig } from '@mt-paas/config';
import { MtPaasError } from '@mt-paas/context';
import { type LlmConfig, llmConfigSchema } from '@mt-paas/providers-llm';
import { z } from 'zod';

/** `custom.rag`: how the app splits documents before embedding them. */
export interface RagConfig {
  /** Characters per chunk (`custom.rag.chunk_size`). @default 500 */
  chunkSize: number;
  /** Characters shared by neighbouring chunks, less than `chunkSize` (`custom.rag.overlap`). @default 50 */
  overlap: number;
}

/** The `custom` section the framework understands; other keys of it are the app's own and kept as written. */
export interface FrameworkCustomConfig {
  /** `custom.llm`: the models of `mt.providersFor()` (see `@mt-paas/providers-llm`). */
  llm: LlmConfig;
  rag: RagConfig;
  [key: string]: unknown;
}

/** The validated config the framework runs on. */
export type FrameworkConfig = MtPaasConfig<FrameworkCustomConfig>;

const ragSchema = z
  .strictObject({
    chunk_size: z.number().int().min(50, { error: 'must be a whole number of characters ≥ 50' }).default(500),
    overlap: z.number().int().min(0, { error: 'must be a whole number of characters ≥ 0' }).default(50),
  })
  .superRefine((value, context) => {
    if (value.overlap >= value.chunk_size) {
      context.addIssue({
        code: 'custom',
        path: ['overlap'],
        message: `must be less than chunk_size (${value.chunk_size}), or every chunk would repeat the last`,
      });
    }
  })
  .transform((value): RagConfig => ({ chunkSize: value.chunk_size, overlap: value.overlap }));

/** The schema of `custom` passed to `@mt-paas/config` (its errors come with file:line). */
export const frameworkCustomSchema = z
  .looseObject({
    llm: llmConfigSchema.prefault({}),
    rag: ragSchema.prefault({}),
  })
  .transform((value) => value as FrameworkCustomConfig) as unknown as z.ZodType<FrameworkCustomConfig>;

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
): Promise<FrameworkConfig> {
  const env = source.env ?? process.env;
  const customSchema = frameworkCustomSchema;
  if (source.config !== undefined) {
    if (typeof source.config === 'string') {
      return parseConfig(source.config, { filename: 'mt-paas.yaml', env, customSchema });
    }
    // Parsed elsewhere (free-form custom): validate the sections the framework reads.
    const custom = frameworkCustomSchema.safeParse(source.config.custom ?? {});
    if (!custom.success) {
      throw new MtPaasError(
        'CONFIG_INVALID',
        `custom is invalid: ${custom.error.issues.map((issue) => `custom.${issue.path.join('.')}: ${issue.message}`).join('; ')}; fix it in mt-paas.yaml.`,
        {
          details: {
            issues: custom.error.issues.map((issue) => ({
              path: `custom.${issue.path.join('.')}`,
              message: issue.message,
            })),
          },
        },
      );
    }
    return { ...source.config, custom: custom.data };
  }
  const { configPath, cwd, environment } = source as {
    configPath?: string;
    cwd?: string;
    environment?: string;
  };
  return loadConfig({
    env,
    customSchema,
    ...(configPath === undefined ? {} : { path: configPath }),
    ...(cwd === undefined ? {} : { cwd }),
    ...(environment === undefined ? {} : { environment }),
  });
}
