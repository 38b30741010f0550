// Types of the helpers scripts/release-rehearsal.mjs exports (for its tests in tooling/release-rehearsal).

export interface PackageManifest {
  name: string;
  version: string;
  private?: boolean;
  dependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
}

export interface WorkspacePackage {
  name: string;
  /** Relative to the repo: `packages/<dir>`. */
  dir: string;
  manifest: PackageManifest;
  /** Its `@mt-paas/*` dependencies and peer dependencies. */
  internal: string[];
}

/** Problems of a published manifest: workspace-only ranges, internal ranges that miss the published version. */
export function manifestProblems(manifest: PackageManifest, publishedVersions: Map<string, string>): string[];
/** The package names a module's source imports (bare specifiers, reduced to the package name). */
export function importedPackages(source: string): Set<string>;
/** Imports in a package dir's .js / .d.ts files of packages it does not declare. */
export function undeclaredImports(packageDir: string): Array<{ file: string; name: string }>;
/** Node's node_modules lookup of a package name from a directory upwards: the package's folder, or undefined. */
export function lookUp(fromDir: string, name: string): string | undefined;
/** Public packages under `<repo>/packages/*`. */
export function discoverPackages(repo: string): Map<string, WorkspacePackage>;

/** The packages among `names` without a SMOKE entry. */
export function missingSmoke(names: Iterable<string>): string[];

export const SMOKE: Record<string, { scenarios: string[]; alone?: boolean; why?: string }>;
export const SCENARIOS: Record<
  string,
  { packages: string[]; install: string[]; files: Record<string, string> }
>;
export const KNOWN_DEFECTS: Array<{ pkg: string; match: RegExp; note: string }>;
