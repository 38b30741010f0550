import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { isAbsolute, join, normalize, resolve } from 'node:path';
import { MtPaasError, type TenantId } from '@mt-paas/context';
import * as tar from 'tar';
import { z } from 'zod';

/** Archive format written by `exportTenant` and read by `importTenant`. */
export const ARCHIVE_FORMAT = 'mt-paas-tenant-archive';
/** Current archive format version. */
export const ARCHIVE_FORMAT_VERSION = 1;

const identifier = z.string().regex(/^[a-z_][a-z0-9_]{0,62}$/);
const sha256 = z.string().regex(/^[0-9a-f]{64}$/);

/** The manifest of a tenant archive (`manifest.json`). */
export const archiveManifestSchema = z.strictObject({
  format: z.literal(ARCHIVE_FORMAT),
  formatVersion: z.literal(ARCHIVE_FORMAT_VERSION),
  tenantId: z.string().regex(/^[a-z][a-z0-9_]{1,47}$/),
  /** Isolation mode the tenant was exported from. */
  mode: z.enum(['row', 'schema', 'database', 'docker']),
  /** The last tenant migration applied to the exported storage. */
  migrationVersion: z.string().min(1),
  migrations: z.array(z.string().min(1)),
  exportedAt: z.string().datetime(),
  tenant: z.strictObject({
    name: z.string(),
    plan: z.string(),
    status: z.string(),
    metadata: z.record(z.string(), z.unknown()),
  }),
  /** Data is PostgreSQL COPY text format, one file per table, rows in `ORDER BY row::text` order. */
  encoding: z.literal('copy-text'),
  tables: z.array(
    z.strictObject({
      name: identifier,
      columns: z.array(identifier).min(1),
      rows: z.number().int().min(0),
      file: z.string().regex(/^data\/[a-z_][a-z0-9_]{0,62}\.copy$/),
      sha256,
    }),
  ),
  /** HMAC-SHA256 of the manifest without this field, when exported with a signing key. */
  signature: z
    .string()
    .regex(/^[0-9a-f]{64}$/)
    .optional(),
});

/** The manifest of a tenant archive. */
export type ArchiveManifest = z.infer<typeof archiveManifestSchema>;

function canonical(manifest: Omit<ArchiveManifest, 'signature'>): string {
  const { signature: _omit, ...rest } = manifest as ArchiveManifest;
  return JSON.stringify(rest);
}

/** Signs a manifest (HMAC-SHA256 over its JSON without `signature`). */
export function signManifest(manifest: ArchiveManifest, key: string): ArchiveManifest {
  return { ...manifest, signature: createHmac('sha256', key).update(canonical(manifest)).digest('hex') };
}

async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** Writes `manifest.json` and the `data/` folder of `staging` into a gzip'd tar at `file`. */
export async function packArchive(staging: string, manifest: ArchiveManifest, file: string): Promise<void> {
  await writeFile(join(staging, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`, { mode: 0o600 });
  await tar.create(
    { gzip: true, cwd: staging, file, portable: true, mode: 0o600 } as tar.TarOptionsWithAliasesAsyncFile,
    ['manifest.json', ...manifest.tables.map((table) => table.file)],
  );
}

/** An unpacked, verified archive. */
export interface OpenedArchive {
  manifest: ArchiveManifest;
  /** Folder holding `manifest.json` and `data/`. */
  directory: string;
  /** Removes the unpacked files. */
  dispose(): Promise<void>;
}

function invalidArchive(file: string, why: string): MtPaasError {
  return new MtPaasError(
    'INVALID_REQUEST',
    `${file} is not a valid mt-paas tenant archive: ${why}. Export it again; never edit an archive by hand.`,
    { details: { archive: file, problem: why } },
  );
}

/**
 * Unpacks and verifies an archive: only `manifest.json` and `data/<table>.copy` regular files are
 * accepted (no absolute path, no `..`, no link, no device), the manifest must parse, every data file's
 * sha256 and row count must match it, no file may be missing or extra, and with `signingKey` the
 * signature must match.
 *
 * @throws MtPaasError `INVALID_REQUEST` naming the problem (tampered, truncated, unsafe path …).
 */
export async function openArchive(
  file: string,
  options: { signingKey?: string } = {},
): Promise<OpenedArchive> {
  const info = await stat(file).catch(() => undefined);
  if (info === undefined || !info.isFile()) {
    throw new MtPaasError('INVALID_REQUEST', `Archive ${file} does not exist or is not a file.`);
  }
  const directory = await mkdtemp(join(tmpdir(), 'mtp-import-'));
  const dispose = () => rm(directory, { recursive: true, force: true });
  try {
    const refused: string[] = [];
    const entries = new Set<string>();
    const allowed = (path: string) =>
      path === 'manifest.json' || /^data\/[a-z_][a-z0-9_]{0,62}\.copy$/.test(path);
    await mkdir(join(directory, 'data'), { mode: 0o700 });
    await tar
      .extract({
        file,
        cwd: directory,
        strict: true,
        preservePaths: false,
        filter: (path, entry) => {
          const type = (entry as { type?: string }).type;
          const clean = normalize(path).replaceAll('\\', '/');
          const safe =
            !isAbsolute(path) &&
            !path.split(/[\\/]/).includes('..') &&
            clean === path &&
            allowed(path) &&
            (type === 'File' || type === 'OldFile') &&
            !entries.has(path);
          if (type === 'Directory' && (path === 'data/' || path === 'data')) return false;
          if (!safe) refused.push(`${path} (${type ?? 'unknown'})`);
          else entries.add(path);
          return safe;
        },
      })
      .catch((error: unknown) => {
        throw invalidArchive(file, `cannot be unpacked (${(error as Error).message})`);
      });
    if (refused.length > 0) throw invalidArchive(file, `unexpected or unsafe entries: ${refused.join(', ')}`);
    if (!entries.has('manifest.json')) throw invalidArchive(file, 'manifest.json is missing');
    let manifest: ArchiveManifest;
    try {
      manifest = archiveManifestSchema.parse(
        JSON.parse(await readFile(join(directory, 'manifest.json'), 'utf8')),
      );
    } catch (error) {
      throw invalidArchive(file, `manifest.json does not parse (${(error as Error).message.slice(0, 300)})`);
    }
    if (options.signingKey !== undefined) {
      const expected = createHmac('sha256', options.signingKey).update(canonical(manifest)).digest();
      const given = Buffer.from(manifest.signature ?? '', 'hex');
      if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
        throw invalidArchive(
          file,
          'the manifest signature does not match (tampered, or signed with another key)',
        );
      }
    }
    const listed = new Set(manifest.tables.map((table) => table.file));
    if (listed.size !== manifest.tables.length) throw invalidArchive(file, 'a data file is listed twice');
    for (const entry of entries) {
      if (entry !== 'manifest.json' && !listed.has(entry))
        throw invalidArchive(file, `${entry} is not in the manifest`);
    }
    for (const table of manifest.tables) {
      if (!entries.has(table.file)) throw invalidArchive(file, `${table.file} is missing`);
      if (table.file !== `data/${table.name}.copy`)
        throw invalidArchive(file, `${table.file} does not belong to ${table.name}`);
      const path = resolve(directory, table.file);
      if ((await sha256File(path)) !== table.sha256) {
        throw invalidArchive(file, `${table.file} does not match its sha256 (tampered or corrupt)`);
      }
      const text = await readFile(path);
      let rows = 0;
      for (const byte of text) if (byte === 10) rows += 1;
      if (rows !== table.rows)
        throw invalidArchive(file, `${table.file} has ${rows} rows, the manifest says ${table.rows}`);
    }
    return { manifest, directory, dispose };
  } catch (error) {
    await dispose();
    throw error;
  }
}

/** A fresh staging folder for an export. */
export async function stagingFolder(tenantId: TenantId): Promise<string> {
  const directory = await mkdtemp(join(tmpdir(), `mtp-export-${tenantId}-`));
  await mkdir(join(directory, 'data'), { mode: 0o700 });
  return directory;
}
