import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join, resolve, sep } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { MtPaasError, parseTenantId, type Tenant } from '@mt-paas/context';
import {
  type Catalog,
  DEFAULT_PLACEMENT_APP_ROLE,
  placementAppPassword,
  placementPasswordFingerprint,
} from '@mt-paas/db';
import pg from 'pg';
import type { PlacementStrategy } from './isolation-mode.js';
import { createPortAllocator, type PortAllocator, type PortBlock } from './port-blocks.js';
import { checkRenderedFiles, renderTemplate, type TemplateValues } from './templates.js';

/** Runs the `docker` CLI. Replace it in tests or to go through a remote engine. */
export interface DockerRunner {
  /** True when a Docker engine answers (`docker info`). */
  available(): Promise<boolean>;
  /** Runs `docker <args>` in `cwd`; rejects with its output when it fails. */
  run(args: readonly string[], cwd: string): Promise<void>;
}

/** Options of {@link createDockerPlacement} (seed 001 `isolation.docker` plus the deploy specifics). */
export interface DockerPlacementOptions {
  catalog: Catalog;
  /** The compose template (`isolation.docker.compose_template`). */
  composeTemplate: string;
  /** @default `.env.template` beside the compose template */
  envTemplate?: string;
  /** @default `nginx.tenant.conf.template` beside the compose template */
  nginxTemplate?: string;
  /**
   * Run by the database container on its first start (`/docker-entrypoint-initdb.d`): creates the
   * NOSUPERUSER NOBYPASSRLS role the tenant's backend connects as (the image's own user is a superuser,
   * which row-level security does not apply to).
   * @default `initdb.tenant.sql.template` beside the compose template
   */
  initdbTemplate?: string;
  /** Where per-tenant deploy folders are written (`<deployRoot>/<tenant id>/`). */
  deployRoot: string;
  /** First host port (`port_range_start`). @default 10200 */
  portRangeStart?: number;
  /** Ports per tenant (`port_range_size`). @default 100 */
  portRangeSize?: number;
  /** The service id (`service.id`), in the compose project name and `.env`. */
  serviceId: string;
  /** Tenants get `<tenant id with "_" as "-">.<baseDomain>` (nginx `server_name`). */
  baseDomain: string;
  /** Container images. @default `<serviceId>-backend:latest`, `<serviceId>-frontend:latest` */
  images?: { backend?: string; frontend?: string };
  /** The service market's external network (seed 002). @default 'servicemarket_service-market-network' */
  marketNetwork?: string;
  /** The tenant's container database as the control plane reaches it. */
  database?: {
    /** Host the container's published db port is reached on. @default '127.0.0.1' */
    host?: string;
    /** The owner role (the image's `POSTGRES_USER`; the control plane migrates as it). @default 'tenant' */
    user?: string;
    /**
     * The role the tenant's backend connects as (created NOSUPERUSER NOBYPASSRLS by the init script), with
     * the password `placementAppPassword()` of `@mt-paas/db` derives from the owner's. The tenant db's
     * units of work connect as it too: must equal its `database.placementAppRole`.
     * @default 'app'
     */
    appUser?: string;
    /**
     * Derive the app role's password from this control-plane secret per server and role instead of the
     * owner's password (`placementAppPassword`): must equal the tenant db's `database.placementSecret`.
     */
    placementSecret?: string;
    /** @default `t_<tenant id>` */
    name?: (tenantId: string) => string;
  };
  /** Ports inside the block (offsets from its first port). @default { frontend: 0, backend: 1, db: 2 } */
  portOffsets?: { frontend: number; backend: number; db: number };
  /** @default the `docker` CLI on PATH */
  docker?: DockerRunner;
  /** How long to wait for a started container database (ms). @default 60000 */
  databaseReadyTimeoutMs?: number;
  /** Where the docker command is printed when no engine answers. @default stderr */
  log?: (line: string) => void;
}

/** A tenant's rendered deploy folder. */
export interface RenderedDeployment {
  tenantId: string;
  directory: string;
  files: string[];
  block: PortBlock;
  ports: { frontend: number; backend: number; db: number };
  subdomain: string;
  /** The tenant database URL (the tenant's placement). */
  databaseUrl: string;
  /** `docker compose … up -d`, as run or to run. */
  command: string[];
}

/** The docker-per-tenant placement. */
export interface DockerPlacement extends PlacementStrategy {
  readonly ports: PortAllocator;
  /** Allocates the port block (kept when it exists) and renders and checks the deploy folder. */
  render(tenant: Pick<Tenant, 'id' | 'placement'>): Promise<RenderedDeployment>;
  /** The deploy folder of a tenant (validated: always inside `deployRoot`). */
  directoryOf(tenantId: string): string;
}

const COMPOSE_FILE = 'docker-compose.yml';

/** The `docker` CLI. */
export function createDockerCli(): DockerRunner {
  const exec = (args: readonly string[], cwd: string | undefined, timeoutMs: number) =>
    new Promise<{ code: number | null; output: string }>((resolvePromise) => {
      let output = '';
      let child: ReturnType<typeof spawn>;
      try {
        child = spawn('docker', args, { cwd, stdio: ['ignore', 'pipe', 'pipe'], timeout: timeoutMs });
      } catch (error) {
        resolvePromise({ code: -1, output: String(error) });
        return;
      }
      child.stdout?.on('data', (chunk: Buffer) => {
        output += chunk.toString();
      });
      child.stderr?.on('data', (chunk: Buffer) => {
        output += chunk.toString();
      });
      child.on('error', (error) => resolvePromise({ code: -1, output: error.message }));
      child.on('close', (code) => resolvePromise({ code, output }));
    });
  return {
    async available() {
      const { code } = await exec(['info', '--format', '{{.ServerVersion}}'], undefined, 5000);
      return code === 0;
    },
    async run(args, cwd) {
      const { code, output } = await exec(args, cwd, 600_000);
      if (code !== 0) {
        throw new MtPaasError(
          'SERVICE_UNAVAILABLE',
          `docker ${args.join(' ')} failed (${code}): ${output.trim()}`,
          {
            retryAfterSeconds: 30,
          },
        );
      }
    },
  };
}

/**
 * Docker-per-tenant placement: a port block from the catalog, a rendered and checked deploy folder
 * (compose, `.env`, nginx), `docker compose up -d` when an engine answers (else the command is printed),
 * and the container database URL as the tenant's placement.
 */
export function createDockerPlacement(options: DockerPlacementOptions): DockerPlacement {
  const ports = createPortAllocator(options.catalog, {
    ...(options.portRangeStart === undefined ? {} : { start: options.portRangeStart }),
    ...(options.portRangeSize === undefined ? {} : { size: options.portRangeSize }),
  });
  const size = options.portRangeSize ?? 100;
  const offsets = options.portOffsets ?? { frontend: 0, backend: 1, db: 2 };
  for (const [name, offset] of Object.entries(offsets)) {
    if (!Number.isInteger(offset) || offset < 0 || offset >= size) {
      throw new MtPaasError(
        'CONFIG_INVALID',
        `Port offset ${name}=${offset} is outside a block of ${size} ports.`,
      );
    }
  }
  const templateDir = dirname(options.composeTemplate);
  const envTemplate = options.envTemplate ?? join(templateDir, '.env.template');
  const nginxTemplate = options.nginxTemplate ?? join(templateDir, 'nginx.tenant.conf.template');
  const initdbTemplate = options.initdbTemplate ?? join(templateDir, 'initdb.tenant.sql.template');
  const root = resolve(options.deployRoot);
  const docker = options.docker ?? createDockerCli();
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const marketNetwork = options.marketNetwork ?? 'servicemarket_service-market-network';
  const dbHost = options.database?.host ?? '127.0.0.1';
  const dbUser = options.database?.user ?? 'tenant';
  const dbAppUser = options.database?.appUser ?? DEFAULT_PLACEMENT_APP_ROLE;
  const placementSecret = options.database?.placementSecret;
  for (const [what, role] of [
    ['database.user', dbUser],
    ['database.appUser', dbAppUser],
  ] as const) {
    if (!/^[a-z_][a-z0-9_]{0,62}$/.test(role)) {
      throw new MtPaasError('CONFIG_INVALID', `${what} "${role}" is not a plain lower-case role name.`);
    }
  }
  if (dbUser === dbAppUser) {
    throw new MtPaasError('CONFIG_INVALID', 'database.appUser must differ from database.user (the owner).');
  }
  const dbNameOf = options.database?.name ?? ((tenantId: string) => `t_${tenantId}`);
  if (!/^[a-z0-9][a-z0-9.-]*$/.test(options.baseDomain)) {
    throw new MtPaasError(
      'CONFIG_INVALID',
      `baseDomain "${options.baseDomain}" is not a lower-case host name.`,
    );
  }

  const directoryOf = (rawTenantId: string) => {
    const tenantId = parseTenantId(rawTenantId);
    const directory = resolve(root, tenantId);
    if (!directory.startsWith(root + sep)) {
      throw new MtPaasError(
        'INVALID_REQUEST',
        `Deploy folder of "${tenantId}" would leave ${root}; refused.`,
      );
    }
    return directory;
  };

  /**
   * The owner's password, kept across renders (from the placement URL, else the deploy folder's `.env`),
   * and the app role's, derived from it (the tenant db derives the same one to connect as the app role).
   */
  const secretsOf = async (
    tenant: Pick<Tenant, 'id' | 'placement'>,
    directory: string,
    dbPort: number,
  ): Promise<{ owner: string; app: string }> => {
    const existing = await readFile(join(directory, '.env'), 'utf8').catch(() => '');
    const fromEnv = (key: string) => {
      const match = new RegExp(`^${key}=postgresql://[^:]+:([^@]+)@`, 'm').exec(existing);
      return match?.[1] === undefined ? undefined : decodeURIComponent(match[1]);
    };
    let owner: string | undefined;
    const location = tenant.placement.location;
    if (location !== undefined && /^postgres(ql)?:\/\//.test(location)) {
      const password = decodeURIComponent(new URL(location).password);
      if (password !== '') owner = password;
    }
    const ownerPassword = owner ?? fromEnv('MIGRATION_DATABASE_URL') ?? randomBytes(18).toString('base64url');
    // Derived from the placement URL the tenant db will hold (host and db port as the control plane
    // reaches them: with a placementSecret the server is part of the derivation).
    const app = placementAppPassword(
      `postgresql://${encodeURIComponent(dbUser)}:${encodeURIComponent(ownerPassword)}@${dbHost}:${dbPort}/${encodeURIComponent(dbNameOf(tenant.id))}`,
      dbAppUser,
      placementSecret === undefined ? {} : { secret: placementSecret },
    );
    return { owner: ownerPassword, app: app! };
  };

  const composeCommand = (tenantId: string, directory: string, action: string[]) => [
    'compose',
    '--project-directory',
    directory,
    '-f',
    join(directory, COMPOSE_FILE),
    '-p',
    projectOf(tenantId),
    ...action,
  ];
  const projectOf = (tenantId: string) =>
    `${options.serviceId}-${tenantId}`.toLowerCase().replace(/[^a-z0-9_-]/g, '-');

  const render = async (tenant: Pick<Tenant, 'id' | 'placement'>): Promise<RenderedDeployment> => {
    const directory = directoryOf(tenant.id);
    const block = await ports.allocate(tenant.id);
    const tenantPorts = {
      frontend: block.first + offsets.frontend,
      backend: block.first + offsets.backend,
      db: block.first + offsets.db,
    };
    const secrets = await secretsOf(tenant, directory, tenantPorts.db);
    for (const secret of [secrets.owner, secrets.app]) {
      if (!/^[A-Za-z0-9_-]{16,}$/.test(secret)) {
        throw new MtPaasError(
          'CONFIG_INVALID',
          `A database password of "${tenant.id}" (from its placement or ${join(directory, '.env')}) is not 16+ characters of A-Z a-z 0-9 _ -; refused (it is put into SQL and URLs). Fix or remove it to get a new one.`,
        );
      }
    }
    const password = secrets.owner;
    const dbName = dbNameOf(tenant.id);
    const subdomain = `${tenant.id.replaceAll('_', '-')}.${options.baseDomain}`;
    const values: TemplateValues = {
      tenant_id: tenant.id,
      service_id: options.serviceId,
      project: projectOf(tenant.id),
      subdomain,
      frontend_port: tenantPorts.frontend,
      backend_port: tenantPorts.backend,
      db_port: tenantPorts.db,
      db_name: dbName,
      db_user: dbUser,
      db_password: password,
      db_app_user: dbAppUser,
      db_app_password: secrets.app,
      db_app_password_fingerprint: placementPasswordFingerprint(secrets.app),
      backend_image: options.images?.backend ?? `${options.serviceId}-backend:latest`,
      frontend_image: options.images?.frontend ?? `${options.serviceId}-frontend:latest`,
      market_network: marketNetwork,
      port_range_start: block.first,
      port_range_end: block.last,
    };
    const files: Record<string, string> = {
      [COMPOSE_FILE]: renderTemplate(
        await readTemplate(options.composeTemplate),
        values,
        options.composeTemplate,
      ),
      '.env': renderTemplate(await readTemplate(envTemplate), values, envTemplate),
      'nginx.conf': renderTemplate(await readTemplate(nginxTemplate), values, nginxTemplate),
      'initdb.sql': renderTemplate(await readTemplate(initdbTemplate), values, initdbTemplate),
    };
    const problems = checkRenderedFiles(files, {
      firstPort: block.first,
      lastPort: block.last,
      marketNetwork,
      composeFile: COMPOSE_FILE,
    });
    if (problems.length > 0) {
      throw new MtPaasError(
        'CONFIG_INVALID',
        `The rendered deploy files of "${tenant.id}" are not valid: ${problems.map((p) => `${p.file}: ${p.message}`).join('; ')}. Fix the templates.`,
        { details: { problems } },
      );
    }
    await mkdir(directory, { recursive: true, mode: 0o700 });
    await chmod(directory, 0o700);
    for (const [name, text] of Object.entries(files)) {
      const target = join(directory, name);
      const temporary = `${target}.tmp-${process.pid}`;
      await writeFile(temporary, text, { mode: name === '.env' ? 0o600 : 0o644 });
      await rename(temporary, target);
    }
    const databaseUrl = `postgresql://${encodeURIComponent(dbUser)}:${encodeURIComponent(password)}@${dbHost}:${tenantPorts.db}/${encodeURIComponent(dbName)}`;
    return {
      tenantId: tenant.id,
      directory,
      files: Object.keys(files).map((name) => join(directory, name)),
      block,
      ports: tenantPorts,
      subdomain,
      databaseUrl,
      command: ['docker', ...composeCommand(tenant.id, directory, ['up', '-d'])],
    };
  };

  return {
    mode: 'docker',
    ports,
    render,
    directoryOf,
    async prepare(tenant) {
      const deployment = await render(tenant);
      if (await docker.available()) {
        await docker.run(deployment.command.slice(1), deployment.directory);
        await waitForDatabase(deployment.databaseUrl, options.databaseReadyTimeoutMs ?? 60_000);
      } else {
        log(
          `mt-paas: no Docker engine answers; start tenant "${tenant.id}" with:\n  ${deployment.command.join(' ')}`,
        );
      }
      return deployment.databaseUrl;
    },
    async release(tenant) {
      const directory = directoryOf(tenant.id);
      const down = composeCommand(tenant.id, directory, ['down', '-v']);
      if (await docker.available()) await docker.run(down, directory);
      else
        log(
          `mt-paas: no Docker engine answers; remove tenant "${tenant.id}"'s containers with:\n  docker ${down.join(' ')}`,
        );
      await rm(directory, { recursive: true, force: true });
      await ports.release(tenant.id);
    },
  };
}

async function readTemplate(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    throw new MtPaasError(
      'CONFIG_INVALID',
      `Cannot read the template ${path}: ${(error as Error).message}. Copy templates/ of mt-paas next to your mt-paas.yaml or set isolation.docker.compose_template.`,
      { cause: error },
    );
  }
}

async function waitForDatabase(url: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const client = new pg.Client({ connectionString: url.replace(/\/[^/?]*(\?|$)/, '/postgres$1') });
    client.on('error', () => {});
    try {
      await client.connect();
      await client.end();
      return;
    } catch (error) {
      await client.end().catch(() => {});
      if (Date.now() > deadline) {
        throw new MtPaasError(
          'TENANT_STORAGE_UNAVAILABLE',
          `The tenant's container database did not answer within ${timeoutMs} ms: ${(error as Error).message}. Check \`docker compose ps\` in its deploy folder, then run onboard again (it resumes).`,
          { retryAfterSeconds: 10, cause: error },
        );
      }
      await sleep(1000);
    }
  }
}
