import { MtPaasError } from '@mt-paas/context';
import { parse } from 'yaml';

const PLACEHOLDER = /\{\{\s*([a-z_][a-z0-9_]*)\s*\}\}/g;

/** Values of the docker templates' `{{name}}` placeholders. */
export type TemplateValues = Readonly<Record<string, string | number>>;

/**
 * Fills `{{name}}` placeholders. A placeholder without a value, or a value that would break out of its
 * line (newline, NUL), is refused: a rendered file never carries a placeholder or an injected line.
 *
 * @throws MtPaasError `CONFIG_INVALID` naming the template and the placeholder.
 */
export function renderTemplate(text: string, values: TemplateValues, templateName: string): string {
  for (const [name, value] of Object.entries(values)) {
    if (/[\r\n\0]/.test(String(value))) {
      throw new MtPaasError(
        'CONFIG_INVALID',
        `Template value {{${name}}} contains a line break or NUL; refused.`,
      );
    }
  }
  const missing = new Set<string>();
  const rendered = text.replace(PLACEHOLDER, (match, name: string) => {
    const value = values[name];
    if (value === undefined) {
      missing.add(name);
      return match;
    }
    return String(value);
  });
  if (missing.size > 0) {
    throw new MtPaasError(
      'CONFIG_INVALID',
      `${templateName} uses {{${[...missing].join('}}, {{')}}} which mt-paas does not provide; known: ${Object.keys(values).join(', ')}.`,
      { details: { template: templateName, missing: [...missing] } },
    );
  }
  if (/\{\{|\}\}/.test(rendered)) {
    throw new MtPaasError(
      'CONFIG_INVALID',
      `${templateName}: a "{{" or "}}" is left after rendering; fix the template.`,
    );
  }
  return rendered;
}

/** A problem found in rendered deploy files. */
export interface RenderProblem {
  file: string;
  message: string;
}

/** Host port of a compose `ports:` entry (`"127.0.0.1:10201:8085"`, `"10201:8085"`, `{ published: 10201 }`). */
function hostPortOf(entry: unknown): number | undefined {
  if (typeof entry === 'number') return undefined; // container port only: no host port
  if (typeof entry === 'object' && entry !== null) {
    const published = (entry as { published?: unknown }).published;
    return published === undefined ? undefined : Number(published);
  }
  const parts = String(entry).split('/')[0]!.split(':');
  if (parts.length < 2) return undefined;
  return Number(parts[parts.length - 2]);
}

/**
 * Checks rendered deploy files: the compose file parses as YAML, has backend, frontend and db services,
 * every published host port lies in the tenant's block, and the external marketplace network is declared;
 * no file keeps a placeholder.
 */
export function checkRenderedFiles(
  files: Readonly<Record<string, string>>,
  expect: { firstPort: number; lastPort: number; marketNetwork: string; composeFile: string },
): RenderProblem[] {
  const problems: RenderProblem[] = [];
  for (const [file, text] of Object.entries(files)) {
    if (/\{\{|\}\}/.test(text)) problems.push({ file, message: 'a {{placeholder}} is left' });
  }
  const compose = files[expect.composeFile];
  if (compose === undefined) return [...problems, { file: expect.composeFile, message: 'missing' }];
  let document: unknown;
  try {
    document = parse(compose);
  } catch (error) {
    return [
      ...problems,
      { file: expect.composeFile, message: `not valid YAML: ${(error as Error).message}` },
    ];
  }
  const services = (document as { services?: Record<string, { ports?: unknown[] }> } | null)?.services;
  if (services === undefined || typeof services !== 'object') {
    return [...problems, { file: expect.composeFile, message: 'no services' }];
  }
  for (const name of ['backend', 'frontend', 'db']) {
    if (services[name] === undefined)
      problems.push({ file: expect.composeFile, message: `no "${name}" service` });
  }
  const seen = new Set<number>();
  for (const [name, service] of Object.entries(services)) {
    for (const entry of service?.ports ?? []) {
      const port = hostPortOf(entry);
      if (port === undefined) continue;
      if (!Number.isInteger(port) || port < expect.firstPort || port > expect.lastPort) {
        problems.push({
          file: expect.composeFile,
          message: `service ${name} publishes host port ${String(port)}, outside the tenant's block ${expect.firstPort}-${expect.lastPort}`,
        });
      }
      if (seen.has(port))
        problems.push({ file: expect.composeFile, message: `host port ${port} published twice` });
      seen.add(port);
    }
  }
  const networks = (document as { networks?: Record<string, { external?: boolean } | null> }).networks;
  if (networks?.[expect.marketNetwork]?.external !== true) {
    problems.push({
      file: expect.composeFile,
      message: `the marketplace network "${expect.marketNetwork}" is not declared external`,
    });
  }
  return problems;
}
