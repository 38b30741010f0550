#!/usr/bin/env node
import { parseArgs } from 'node:util';
import { MtPaasError } from '@mt-paas/context';
import { stringify } from 'yaml';
import { formatConfigIssue, getConfigIssues } from './config-error.js';
import { findConfigFiles, loadConfig } from './load-config.js';
import { redact } from './redact.js';

const USAGE = `Usage: mt-paas-config check [file] [--env <environment>] [--format yaml|json]

Loads the config (the file, or mt-paas.yaml / mt_paas_config.yaml in the current directory),
merges the overlay of the environment (<name>.<env>.yaml), interpolates \${VAR} from the
environment, validates it and prints the resolved config with secrets redacted.

Options:
  -e, --env <name>      environment overlay to merge (default: $MT_PAAS_ENV, else $NODE_ENV)
  -f, --format <fmt>    yaml (default) or json
  -h, --help            show this help

Exit codes: 0 valid, 1 invalid config, 2 wrong usage.`;

/** Runs the CLI; returns the exit code. */
async function main(argv: string[]): Promise<number> {
  let parsed: ReturnType<typeof parseCommandLine>;
  try {
    parsed = parseCommandLine(argv);
  } catch (error) {
    process.stderr.write(`mt-paas-config: ${(error as Error).message}\n\n${USAGE}\n`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const [command, file, ...extra] = positionals;
  if (command !== 'check' || extra.length > 0) {
    process.stderr.write(
      `mt-paas-config: ${command === undefined ? 'missing command' : command !== 'check' ? `unknown command "${command}"` : `unexpected argument "${extra[0]}"`}\n\n${USAGE}\n`,
    );
    return 2;
  }
  const format = values.format ?? 'yaml';
  if (format !== 'yaml' && format !== 'json') {
    process.stderr.write(`mt-paas-config: --format must be yaml or json, got "${format}"\n`);
    return 2;
  }

  try {
    const options = { path: file, environment: values.env };
    const files = findConfigFiles(options);
    const config = redact(await loadConfig(options));
    if (format === 'json') {
      process.stdout.write(`${JSON.stringify(config, null, 2)}\n`);
    } else {
      const header = [
        `# mt-paas config: valid`,
        `# files: ${[files.main ?? '(none: built-in defaults)', ...files.overlays].join(', ')}`,
        `# environment: ${
          files.environment === undefined
            ? '(none)'
            : files.overlays.length === 0
              ? `${files.environment} (no overlay file for it)`
              : files.environment
        }`,
        '# secrets are redacted',
      ];
      process.stdout.write(`${header.join('\n')}\n${stringify(config)}`);
    }
    return 0;
  } catch (error) {
    const issues = getConfigIssues(error);
    if (issues.length > 0) {
      process.stderr.write(
        `mt-paas config is invalid (${issues.length === 1 ? '1 problem' : `${issues.length} problems`}):\n${issues
          .map((issue) => `  ${formatConfigIssue(issue)}`)
          .join('\n')}\n`,
      );
      return 1;
    }
    process.stderr.write(
      `mt-paas-config: ${MtPaasError.isInstance(error) ? error.message : String(error)}\n`,
    );
    return 1;
  }
}

function parseCommandLine(argv: string[]) {
  return parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      env: { type: 'string', short: 'e' },
      format: { type: 'string', short: 'f' },
      help: { type: 'boolean', short: 'h' },
    },
  });
}

process.exitCode = await main(process.argv.slice(2));
