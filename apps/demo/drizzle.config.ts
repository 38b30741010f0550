import { defineConfig } from 'drizzle-kit';

/** The demo's tenant migrations (`pnpm --filter @mt-paas/demo generate`). */
export default defineConfig({
  dialect: 'postgresql',
  schema: './src/schema.ts',
  out: './drizzle',
});
