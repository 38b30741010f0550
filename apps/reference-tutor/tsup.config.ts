import { defineConfig } from 'tsup';

/** The tutor is an app, not a library: ESM for Node 20, `dist/main.js` (the process) and `dist/server.js`. */
export default defineConfig({
  entry: ['src/main.ts', 'src/server.ts'],
  format: ['esm'],
  dts: false,
  sourcemap: true,
  clean: true,
  target: 'node20',
  platform: 'node',
});
