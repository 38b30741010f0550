import { defineConfig } from 'tsup';

/**
 * The build every published package shares: ESM only, `.d.ts`, source maps, Node 20 target.
 * A package passes only what differs (usually its entry points).
 *
 * @param {import('tsup').Options} [overrides]
 */
export function packageConfig(overrides = {}) {
  return defineConfig({
    entry: ['src/index.ts'],
    format: ['esm'],
    dts: true,
    sourcemap: true,
    clean: true,
    target: 'node20',
    platform: 'node',
    splitting: true,
    treeshake: true,
    ...overrides,
  });
}
