import { defineConfig } from 'drizzle-kit';

/** The test fixture's tenant migrations (`pnpm generate:fixture`). */
export default defineConfig({
  dialect: 'postgresql',
  schema: './src/__fixtures__/app-schema.ts',
  out: '../../tooling/test-env/fixtures/app-migrations',
});
