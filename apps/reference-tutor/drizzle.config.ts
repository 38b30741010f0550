import { defineConfig } from 'drizzle-kit';

/** The tutor's tenant migrations (`pnpm --filter @mt-paas/reference-tutor generate`). */
export default defineConfig({
  dialect: 'postgresql',
  schema: './src/schema.ts',
  out: './drizzle',
});
