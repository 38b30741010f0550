import { defineConfig } from 'drizzle-kit';

/** The simulator's own tables (`pnpm --filter @mt-paas/market-sim generate`). */
export default defineConfig({
  dialect: 'postgresql',
  schema: './src/schema.ts',
  out: './drizzle',
});
