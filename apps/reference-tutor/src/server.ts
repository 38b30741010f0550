/**
 * The reference tutor as a Fastify app on `@mt-paas/framework`: `startTutor()` builds the framework from
 * the app's `mt-paas.yaml`, registers `mt.fastify` (tenant pipeline, `req.tenantDb`, marketplace routes),
 * the tutor's routes with their zod schemas (validation + the OpenAPI document at `/docs`), and listens.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import { MtPaasError } from '@mt-paas/context';
import { createServiceFramework, type ServiceFramework } from '@mt-paas/framework';
import Fastify, { type FastifyInstance } from 'fastify';
import { jsonSchemaTransform, serializerCompiler, validatorCompiler } from 'fastify-type-provider-zod';
import { authRoutes } from './routes/auth.js';
import { chatRoutes } from './routes/chat.js';
import { courseRoutes } from './routes/courses.js';
import { pageRoutes } from './routes/page.js';
import { serviceRoutes } from './routes/service.js';
import { ssoLoginHook, ssoRoutes } from './routes/sso.js';
import { superadminRoutes } from './routes/superadmin.js';
import { userRoutes } from './routes/users.js';
import { createTutor, type Tutor } from './tutor.js';
import { ensureUser } from './users.js';

/** The app's own `mt-paas.yaml` (next to `src/` and `dist/`). */
export const DEFAULT_CONFIG_PATH = fileURLToPath(new URL('../mt-paas.yaml', import.meta.url));
/** The tutor's drizzle-kit migrations of its tenant tables. */
export const MIGRATIONS_FOLDER = fileURLToPath(new URL('../drizzle', import.meta.url));

export interface TutorOptions {
  /** Port; `0` picks a free one. @default PORT, else 8085 */
  port?: number;
  /** @default HOST, else 127.0.0.1 */
  host?: string;
  /** @default MT_PAAS_CONFIG, else the app's own mt-paas.yaml */
  configPath?: string;
  /** Variables for `${VAR}` in the config, over `process.env` (tests set DATABASE_URL, ISOLATION_MODE … here). */
  env?: Record<string, string | undefined>;
  /** Start the framework's timers (heartbeat, outbox dispatcher, kill-switch sweep). @default true */
  startTimers?: boolean;
  /** The app role the framework creates on Postgres (without APP_DATABASE_URL). @default 'mt_paas_app' */
  appRole?: string;
}

export interface RunningTutor {
  /** `http://HOST:PORT` */
  url: string;
  app: FastifyInstance;
  mt: ServiceFramework;
  close(): Promise<void>;
}

/**
 * The session-token secret: `JWT_SECRET`, else one generated once and kept (mode 0600) in the data
 * directory, so sessions survive a restart; with `TUTOR_DATA_DIR=memory` a fresh one per process.
 * Several instances must share `JWT_SECRET`.
 */
async function jwtSecret(
  env: Record<string, string | undefined>,
  dataDir: string,
): Promise<{ secret: string; generated: boolean }> {
  const given = env.JWT_SECRET?.trim();
  if (given) return { secret: given, generated: false };
  if (dataDir === 'memory') return { secret: randomBytes(32).toString('base64url'), generated: true };
  const file = join(dataDir, 'jwt-secret');
  try {
    const stored = (await readFile(file, 'utf8')).trim();
    if (stored.length >= 32) return { secret: stored, generated: true };
  } catch {}
  await mkdir(dataDir, { recursive: true });
  const secret = randomBytes(32).toString('base64url');
  await writeFile(file, `${secret}\n`, { mode: 0o600 });
  return { secret, generated: true };
}

export async function startTutor(options: TutorOptions = {}): Promise<RunningTutor> {
  const baseEnv: Record<string, string | undefined> = { ...process.env, ...options.env };
  const dataDir = baseEnv.TUTOR_DATA_DIR?.trim() || '.data/reference-tutor';
  const { secret, generated } = await jwtSecret(baseEnv, dataDir);
  const ssoIssuer = baseEnv.MARKET_SSO_ISSUER?.trim() || undefined;
  const env: Record<string, string | undefined> = {
    ...baseEnv,
    JWT_SECRET: secret,
    // marketplace login is on when there is a market to verify its tokens against
    MARKET_SSO_ENABLED:
      baseEnv.MARKET_SSO_ENABLED?.trim() ||
      String(ssoIssuer !== undefined || Boolean(baseEnv.MARKET_URL?.trim())),
  };
  let tutor: Tutor | undefined;
  const embedded = !env.DATABASE_URL?.trim();

  const mt = await createServiceFramework({
    configPath: options.configPath ?? (env.MT_PAAS_CONFIG?.trim() || DEFAULT_CONFIG_PATH),
    env,
    migrationsFolder: MIGRATIONS_FOLDER,
    ...(embedded ? { dataDir: dataDir === 'memory' ? 'memory' : join(dataDir, 'pglite') } : {}),
    ...(options.startTimers === false ? { start: false } : {}),
    ...(options.appRole === undefined ? {} : { appRole: options.appRole }),
    ...(ssoIssuer === undefined
      ? {}
      : {
          sso: {
            issuer: ssoIssuer,
            jwksUrl:
              env.MARKET_SSO_JWKS_URL?.trim() || `${ssoIssuer.replace(/\/+$/, '')}/.well-known/jwks.json`,
          },
        }),
    onSsoLogin: ssoLoginHook(() => {
      if (tutor === undefined)
        throw new MtPaasError('SERVICE_UNAVAILABLE', 'The tutor is still starting; try again.');
      return tutor;
    }),
    accessUrl: (tenantId) => `${publicUrl}/?tenant=${encodeURIComponent(tenantId)}`,
    hooks: {
      // The tenant's vectors live outside its storage: drop them with it.
      async beforePurge({ tenant }) {
        const { vectorStore } = await mt.providersFor(tenant.id);
        await vectorStore.purgeTenant();
      },
      // The market's admin email becomes the tenant's admin; the password is set later (README: "First login").
      async afterOnboard({ tenant, adminEmail, adminName, scope }) {
        if (adminEmail === undefined) return;
        const admin = await scope.run((tx) =>
          ensureUser(tx, { email: adminEmail, name: adminName ?? adminEmail, role: 'admin' }),
        );
        mt.logger.info(
          { tenantId: tenant.id, userId: admin.id },
          'tenant admin created; it logs in through the marketplace (SSO) or with a password link from POST /api/superadmin/tenants/:tenantId/password-reset',
        );
      },
    },
    pipeline: {
      routes: [
        { path: '/docs', policy: { tenant: 'host-only', auth: 'none' } },
        { path: '/docs/*', policy: { tenant: 'host-only', auth: 'none' } },
      ],
      apiKeys: {
        keys: [
          ...(env.MARKET_API_KEY?.trim()
            ? [{ id: 'marketplace', key: env.MARKET_API_KEY.trim(), roles: ['marketplace'] }]
            : []),
          ...(env.SUPERADMIN_API_KEY?.trim()
            ? [{ id: 'superadmin', key: env.SUPERADMIN_API_KEY.trim(), roles: ['superadmin'] }]
            : []),
        ],
      },
    },
  });
  let publicUrl = mt.config.service.publicUrl?.replace(/\/+$/, '') ?? '';
  if (generated) {
    mt.logger.warn(
      `JWT_SECRET is not set: using a generated secret (${dataDir === 'memory' ? 'new at every start' : `kept in ${join(dataDir, 'jwt-secret')}`}); set JWT_SECRET when several instances serve the tutor`,
    );
  }

  try {
    tutor = createTutor(mt);
    const app = Fastify({
      logger: false,
      bodyLimit: 1_048_576,
      schemaErrorFormatter: (errors, dataVar) =>
        new MtPaasError(
          'INVALID_REQUEST',
          `Invalid ${dataVar}: ${errors
            .slice(0, 5)
            .map(
              (error) =>
                `${error.instancePath === '' ? dataVar : error.instancePath.slice(1).replaceAll('/', '.')} ${error.message ?? 'is invalid'}`,
            )
            .join('; ')}.`,
        ),
    });
    app.setValidatorCompiler(validatorCompiler);
    app.setSerializerCompiler(serializerCompiler);
    await app.register(swagger, {
      openapi: {
        info: {
          title: `${mt.config.service.name} API`,
          description: 'The reference tutor built on @mt-paas/*',
          version: mt.config.service.version,
        },
        components: {
          securitySchemes: {
            bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' },
            tenant: { type: 'apiKey', in: 'header', name: 'X-Tenant-ID' },
            apiKey: { type: 'apiKey', in: 'header', name: 'X-API-Key' },
          },
        },
        security: [{ tenant: [], bearer: [] }],
      },
      transform: jsonSchemaTransform,
    });
    await app.register(swaggerUi, { routePrefix: '/docs' });
    await app.register(mt.fastify);

    await serviceRoutes(app, tutor);
    await authRoutes(app, tutor);
    await ssoRoutes(app, tutor);
    await userRoutes(app);
    await courseRoutes(app, tutor);
    await chatRoutes(app, tutor);
    await superadminRoutes(app, tutor);
    await pageRoutes(app, tutor, { baseDomain: env.TUTOR_BASE_DOMAIN?.trim() || undefined });

    const port = options.port ?? (env.PORT?.trim() ? Number(env.PORT) : 8085);
    if (!Number.isInteger(port) || port < 0 || port > 65_535) {
      throw new MtPaasError(
        'CONFIG_INVALID',
        `PORT must be a port number (0 picks a free one), got "${env.PORT}".`,
      );
    }
    const host = options.host ?? (env.HOST?.trim() || '127.0.0.1');
    await app.listen({ port, host });
    const address = app.server.address();
    const url = `http://${host.includes(':') ? `[${host}]` : host}:${typeof address === 'object' && address !== null ? address.port : port}`;
    if (publicUrl === '') publicUrl = url;

    let closing: Promise<void> | undefined;
    return {
      url,
      app,
      mt,
      close() {
        closing ??= (async () => {
          await app.close();
          await mt.close();
        })();
        return closing;
      },
    };
  } catch (error) {
    await mt.close();
    throw error;
  }
}
