#!/usr/bin/env node
import { isMtPaasError, type Tenant } from '@mt-paas/context';
import type { MigrateTenantsResult } from '@mt-paas/db';
import { MultiBar, Presets, type SingleBar } from 'cli-progress';
import Table from 'cli-table3';
import { Command, CommanderError, Option } from 'commander';
import { type CliGlobalOptions, type CliRuntime, openRuntime } from './cli-runtime.js';
import { runDoctor } from './doctor.js';
import type { StorageMode } from './provisioner.js';

/**
 * Exit codes: 0 done; 1 failed (or doctor / migrate found problems); 2 wrong usage or invalid input;
 * 3 tenant not found; 4 conflict (transition not allowed from the current state); 5 storage or service
 * unavailable (retry later).
 */
export const EXIT = { ok: 0, failed: 1, usage: 2, notFound: 3, conflict: 4, unavailable: 5 } as const;

const MODES = ['row', 'schema', 'database', 'docker'];

function exitCodeOf(error: unknown): number {
  if (error instanceof CommanderError) return error.exitCode === 0 ? EXIT.ok : EXIT.usage;
  if (!isMtPaasError(error)) return EXIT.failed;
  switch (error.code) {
    case 'TENANT_NOT_FOUND':
      return EXIT.notFound;
    case 'CONFLICT':
      return EXIT.conflict;
    case 'INVALID_TENANT_ID':
    case 'INVALID_REQUEST':
    case 'CONFIG_INVALID':
      return EXIT.usage;
    case 'TENANT_STORAGE_UNAVAILABLE':
    case 'SERVICE_UNAVAILABLE':
      return EXIT.unavailable;
    default:
      return EXIT.failed;
  }
}

const out = (text: string) => process.stdout.write(`${text}\n`);

function tenantJson(tenant: Tenant) {
  const placement = { ...tenant.placement };
  if (placement.location !== undefined)
    placement.location = placement.location.replace(/(\/\/[^:/@]+):[^@]*@/, '$1:***@');
  return { ...tenant, placement };
}

function tenantLine(tenant: Tenant): string {
  const location = tenant.placement.location?.replace(/(\/\/[^:/@]+):[^@]*@/, '$1:***@');
  return `${tenant.id}  ${tenant.status}  ${tenant.placement.mode}${location ? ` (${location})` : ''}  plan ${tenant.plan}  "${tenant.name}"`;
}

function createProgram(): Command {
  const program = new Command('mt-paas')
    .description('Operate an mt-paas service: tenants, migrations, health checks and docker templates.')
    .option('-c, --config <file>', 'mt-paas.yaml to load (default: mt-paas.yaml in the current directory)')
    .option('-e, --env <name>', 'environment overlay (mt-paas.<env>.yaml)')
    .option(
      '--database-url <url>',
      'central database URL, the owner role (default: $DATABASE_URL, then database.central.url)',
    )
    .option('--app-url <url>', 'the app role URL (default: $MT_PAAS_APP_DATABASE_URL)')
    .option('--migrations <dir>', "the app's tenant migrations folder (default: $MT_PAAS_MIGRATIONS)")
    .option(
      '--deploy-root <dir>',
      'docker mode: per-tenant deploy folders (default: $MT_PAAS_DEPLOY_ROOT, then ./deploy)',
    )
    .option(
      '--base-domain <host>',
      'docker mode: tenants get <tenant>.<base-domain> (default: $MT_PAAS_BASE_DOMAIN)',
    )
    .option('--hooks <module>', 'ESM module exporting `hooks` (afterOnboard seeds the admin user, …)')
    .option('--json', 'machine-readable output on stdout')
    .showHelpAfterError()
    .exitOverride();
  program.configureOutput({ writeErr: (text) => process.stderr.write(text) });
  program.addHelpText(
    'after',
    '\nExit codes: 0 done, 1 failed, 2 wrong usage or invalid input, 3 tenant not found, 4 conflict with the tenant state, 5 unavailable (retry later).',
  );

  const globals = (command: Command) => command.optsWithGlobals() as CliGlobalOptions;
  const withRuntime =
    <A extends unknown[]>(
      action: (
        runtime: CliRuntime,
        options: CliGlobalOptions & Record<string, unknown>,
        ...args: A
      ) => Promise<void>,
    ) =>
    async (...args: unknown[]) => {
      const command = args.at(-1) as Command;
      const options = globals(command) as CliGlobalOptions & Record<string, unknown>;
      const runtime = await openRuntime(options);
      try {
        await action(runtime, options, ...(args.slice(0, -2) as A));
      } finally {
        await runtime.close();
      }
    };
  const report = (options: CliGlobalOptions, tenant: Tenant, verb: string) => {
    if (options.json) out(JSON.stringify({ tenant: tenantJson(tenant) }));
    else out(`${verb} ${tenantLine(tenant)}`);
  };

  const tenant = program
    .command('tenant')
    .description('tenant lifecycle: create, list, show, suspend, …, export, import, move');

  tenant
    .command('create <id>')
    .description('onboard a tenant (idempotent; resumes an interrupted onboarding)')
    .requiredOption('--name <name>', "the institution's display name")
    .option('--plan <plan>', 'plan name')
    .option('--admin-email <email>', 'first admin (passed to the afterOnboard hook)')
    .option('--admin-name <name>', 'first admin name')
    .addOption(new Option('--mode <mode>', 'isolation mode (default: isolation.mode)').choices(MODES))
    .option('--domain <host...>', 'host names of the tenant')
    .action(
      withRuntime(async (runtime, options, id: string) => {
        const created = await runtime.provisioner.onboard({
          id,
          name: options.name as string,
          ...(options.plan === undefined ? {} : { plan: options.plan as string }),
          ...(options.adminEmail === undefined ? {} : { adminEmail: options.adminEmail as string }),
          ...(options.adminName === undefined ? {} : { adminName: options.adminName as string }),
          ...(options.mode === undefined ? {} : { mode: options.mode as Tenant['placement']['mode'] }),
          ...(options.domain === undefined ? {} : { domains: options.domain as string[] }),
        });
        report(options, created, 'onboarded');
      }),
    );

  tenant
    .command('list')
    .description('list tenants')
    .option('--status <status...>', 'only these states')
    .action(
      withRuntime(async (runtime, options) => {
        const tenants: Tenant[] = [];
        let cursor: string | undefined;
        do {
          const page = await runtime.catalog.directory.list({
            limit: 500,
            ...(options.status === undefined ? {} : { status: options.status as Tenant['status'][] }),
            ...(cursor === undefined ? {} : { cursor }),
          });
          tenants.push(...page.tenants);
          cursor = page.nextCursor;
        } while (cursor !== undefined);
        if (options.json) {
          out(JSON.stringify({ tenants: tenants.map(tenantJson) }));
          return;
        }
        const table = new Table({ head: ['id', 'status', 'mode', 'plan', 'name'] });
        for (const row of tenants) table.push([row.id, row.status, row.placement.mode, row.plan, row.name]);
        out(tenants.length === 0 ? 'no tenants' : table.toString());
      }),
    );

  tenant
    .command('show <id>')
    .description('a tenant, its jobs and its port block')
    .action(
      withRuntime(async (runtime, options, id: string) => {
        const found = await runtime.provisioner.get(id);
        const jobs = await runtime.provisioner.jobs(id, { limit: 20 });
        const block = await runtime.docker.ports.get(found.id);
        const retainedUntil = await runtime.provisioner.retainedUntil(found.id);
        if (options.json) {
          out(
            JSON.stringify({
              tenant: tenantJson(found),
              jobs,
              portBlock: block ?? null,
              retainedUntil: retainedUntil ?? null,
            }),
          );
          return;
        }
        out(tenantLine(found));
        if (found.domains?.length) out(`domains: ${found.domains.join(', ')}`);
        if (retainedUntil) out(`retained until ${retainedUntil.toISOString()} (then purge)`);
        if (block) out(`ports: ${block.first}-${block.last}`);
        const table = new Table({ head: ['job', 'action', 'state', 'step', 'attempts', 'updated', 'error'] });
        for (const job of jobs) {
          table.push([
            job.id.slice(0, 8),
            job.action,
            job.state,
            job.step ?? '',
            job.attempts,
            job.updatedAt.toISOString(),
            job.error ?? '',
          ]);
        }
        out(table.toString());
      }),
    );

  const transition = (
    name: string,
    description: string,
    run: (runtime: CliRuntime, id: string, options: Record<string, unknown>) => Promise<Tenant>,
    configure: (command: Command) => Command = (command) => command,
  ) =>
    configure(tenant.command(`${name} <id>`).description(description)).action(
      withRuntime(async (runtime, options, id: string) => {
        report(options, await run(runtime, id, options), `${name}:`);
      }),
    );
  const reason = (command: Command) => command.option('--reason <text>', 'why (stored and audited)');
  const reasonOf = (options: Record<string, unknown>) =>
    options.reason === undefined ? {} : { reason: options.reason as string };
  transition('suspend', 'active → suspended', (r, id, o) => r.provisioner.suspend(id, reasonOf(o)), reason);
  transition('resume', 'suspended → active', (r, id, o) => r.provisioner.resume(id, reasonOf(o)), reason);
  transition(
    'block',
    'the kill switch: → blocked',
    (r, id, o) =>
      r.provisioner.block(id, {
        ...reasonOf(o),
        ...(o.message === undefined ? {} : { message: o.message as string }),
        ...(o.until === undefined ? {} : { until: parseDate(o.until as string) }),
      }),
    (command) =>
      reason(command)
        .option('--message <text>', 'shown to its users')
        .option('--until <iso date>', 'lifts by itself then'),
  );
  transition('unblock', 'blocked → active', (r, id, o) => r.provisioner.unblock(id, reasonOf(o)), reason);
  transition(
    'delete',
    'offboard (soft delete: data kept for the retention, restorable)',
    (r, id, o) => r.provisioner.offboard(id, reasonOf(o)),
    reason,
  );
  transition('restore', 'deleted → active', (r, id, o) => r.provisioner.restore(id, reasonOf(o)), reason);
  transition(
    'purge',
    'deleted → purged: drops its storage (irreversible)',
    (r, id, o) =>
      r.provisioner.purge(id, {
        ...reasonOf(o),
        force: o.force === true,
        ...(o.exportTo === undefined ? {} : { exportTo: o.exportTo as string }),
      }),
    (command) =>
      reason(command)
        .option('--force', 'before the retention period is over')
        .option('--export-to <dir>', 'write an export archive there first'),
  );

  tenant
    .command('export <id>')
    .description('write a portable archive of the tenant (.mtpaas.tgz)')
    .option('-o, --out <file>', 'archive path')
    .option('--dir <dir>', 'folder for the default file name', '.')
    .action(
      withRuntime(async (runtime, options, id: string) => {
        const { file, manifest } = await runtime.provisioner.exportTenant(id, {
          ...(options.out === undefined ? {} : { file: options.out as string }),
          directory: options.dir as string,
        });
        if (options.json) out(JSON.stringify({ file, manifest }));
        else {
          out(`exported ${id} (${manifest.mode}, migration ${manifest.migrationVersion}) to ${file}`);
          for (const table of manifest.tables)
            out(`  ${table.name}: ${table.rows} rows  sha256 ${table.sha256.slice(0, 16)}…`);
        }
      }),
    );

  tenant
    .command('import <archive>')
    .description('restore an archive into a new or purged tenant id')
    .addOption(new Option('--mode <mode>', "isolation mode (default: the archive's)").choices(MODES))
    .action(
      withRuntime(async (runtime, options, file: string) => {
        const restored = await runtime.provisioner.importTenant(file, {
          ...(options.mode === undefined ? {} : { mode: options.mode as Tenant['placement']['mode'] }),
        });
        report(options, restored, 'imported');
      }),
    );

  tenant
    .command('move <id> <mode>')
    .description('move a live tenant to row, schema or database mode')
    .action(
      withRuntime(async (runtime, options, id: string, mode: string) => {
        if (!['row', 'schema', 'database'].includes(mode)) {
          throw new CommanderError(
            EXIT.usage,
            'mt-paas.mode',
            `mode must be row, schema or database, got "${mode}"`,
          );
        }
        report(options, await runtime.provisioner.moveTenant(id, mode as StorageMode), 'moved');
      }),
    );

  program
    .command('migrate')
    .description('apply the tenant migrations: the configured mode, or --all modes')
    .option('--all', 'every mode in use (row shared tables, every schema, every database)')
    .option('--concurrency <n>', 'targets at a time', '4')
    .action(
      withRuntime(async (runtime, options) => {
        const concurrency = Number(options.concurrency);
        if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 64) {
          throw new CommanderError(
            EXIT.usage,
            'mt-paas.concurrency',
            `--concurrency must be 1-64, got "${String(options.concurrency)}"`,
          );
        }
        const configured =
          runtime.config.isolation.mode === 'docker' ? 'database' : runtime.config.isolation.mode;
        const modes = (options.all ? ['row', 'schema', 'database'] : [configured]) as StorageMode[];
        const interactive = process.stderr.isTTY === true && options.json !== true;
        const bars = new MultiBar(
          {
            format: ' {mode} [{bar}] {value}/{total} {target}',
            hideCursor: true,
            clearOnComplete: false,
            noTTYOutput: false,
          },
          Presets.shades_classic,
        );
        const results: Array<MigrateTenantsResult & { mode: StorageMode }> = [];
        try {
          for (const mode of modes) {
            const tenantDb = runtime.tenantDbs[mode];
            if (tenantDb === undefined) {
              throw new CommanderError(
                EXIT.usage,
                'mt-paas.app-url',
                `migrating ${mode} mode needs --app-url / MT_PAAS_APP_DATABASE_URL`,
              );
            }
            let bar: SingleBar | undefined;
            const result = await tenantDb.migrateTenants({
              concurrency,
              onProgress: (event) => {
                if (!interactive) return;
                bar ??= bars.create(event.total, 0, { mode, target: '' });
                bar.update(event.finished, { mode, target: `${event.state} ${event.target}` });
              },
            });
            results.push({ ...result, mode });
          }
        } finally {
          bars.stop();
        }
        const failed = results.reduce((sum, result) => sum + result.failed.length, 0);
        if (options.json) {
          out(
            JSON.stringify({
              results: results.map((result) => ({
                mode: result.mode,
                total: result.total,
                succeeded: result.succeeded,
                failed: result.failed.map((entry) => ({
                  target: entry.target,
                  error: (entry.error as Error)?.message ?? String(entry.error),
                })),
              })),
            }),
          );
        } else {
          const table = new Table({ head: ['mode', 'target', 'result', 'applied'] });
          for (const result of results) {
            for (const entry of result.succeeded)
              table.push([result.mode, entry.target, 'ok', entry.applied.join(', ') || '(up to date)']);
            for (const entry of result.failed)
              table.push([
                result.mode,
                entry.target,
                'FAILED',
                (entry.error as Error)?.message ?? String(entry.error),
              ]);
          }
          out(table.toString());
          const total = results.reduce((sum, result) => sum + result.total, 0);
          out(`${total - failed} of ${total} targets migrated${failed > 0 ? `, ${failed} failed` : ''}`);
        }
        if (failed > 0) process.exitCode = EXIT.failed;
      }),
    );

  program
    .command('doctor')
    .description('check config, catalog, RLS gate, app role and Redis; each line says ok or how to fix it')
    .action(async (_options: unknown, command: Command) => {
      const options = globals(command);
      const checks = await runDoctor(options);
      if (options.json) out(JSON.stringify({ ok: checks.every((check) => check.ok), checks }));
      else {
        for (const check of checks) {
          out(
            `${check.ok ? 'ok  ' : 'FAIL'}  ${check.name}: ${check.detail}${check.ok || check.fix === undefined ? '' : `\n      fix: ${check.fix}`}`,
          );
        }
      }
      if (!checks.every((check) => check.ok)) process.exitCode = EXIT.failed;
    });

  const templates = program.command('templates').description('docker-per-tenant templates');
  templates
    .command('render <tenant>')
    .description(
      "render and check the tenant's deploy folder (compose, .env, nginx); allocates its port block",
    )
    .action(
      withRuntime(async (runtime, options, id: string) => {
        const found = await runtime.provisioner.get(id);
        const deployment = await runtime.docker.render(found);
        const result = {
          ...deployment,
          databaseUrl: deployment.databaseUrl.replace(/(\/\/[^:/@]+):[^@]*@/, '$1:***@'),
        };
        if (options.json) out(JSON.stringify(result));
        else {
          out(`rendered ${deployment.files.length} files into ${deployment.directory} (checked)`);
          out(
            `ports ${deployment.block.first}-${deployment.block.last}: frontend ${deployment.ports.frontend}, backend ${deployment.ports.backend}, db ${deployment.ports.db}`,
          );
          out(`subdomain ${deployment.subdomain}`);
          out(`start with: ${deployment.command.join(' ')}`);
        }
      }),
    );
  return program;
}

function parseDate(value: string): Date {
  const date = new Date(value);
  if (Number.isNaN(date.getTime()))
    throw new CommanderError(EXIT.usage, 'mt-paas.date', `"${value}" is not a date (use ISO 8601)`);
  return date;
}

async function main(argv: string[]): Promise<number> {
  const program = createProgram();
  const json = argv.includes('--json');
  try {
    await program.parseAsync(argv, { from: 'user' });
    return typeof process.exitCode === 'number' ? process.exitCode : EXIT.ok;
  } catch (error) {
    const code = exitCodeOf(error);
    if (error instanceof CommanderError) {
      if (
        code !== EXIT.ok &&
        !['commander.help', 'commander.helpDisplayed', 'commander.version'].includes(error.code)
      ) {
        if (error.code.startsWith('mt-paas.')) process.stderr.write(`mt-paas: ${error.message}\n`);
      }
      return code;
    }
    const message = error instanceof Error ? error.message : String(error);
    if (json) {
      const body = isMtPaasError(error) ? error.toJSON() : { error: { code: 'INTERNAL', message } };
      out(JSON.stringify(body));
    }
    process.stderr.write(`mt-paas: ${isMtPaasError(error) ? `${error.code}: ` : ''}${message}\n`);
    return code;
  }
}

process.exitCode = await main(process.argv.slice(2));
