import { defineConfig } from 'drizzle-kit';

export default defineConfig({
  dialect: 'postgresql',
  schema: './src/catalog-schema.default.ts',
  out: './drizzle/catalog',
  schemaFilter: ['mt_paas'],
});
