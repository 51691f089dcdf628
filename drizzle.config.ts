import { defineConfig } from 'drizzle-kit';

// `npm run db:generate` writes a new SQL migration into migrations/ from the
// table definitions; no database is needed to generate.
export default defineConfig({
  dialect: 'postgresql',
  schema: './src/db-schema.ts',
  out: './migrations',
});
