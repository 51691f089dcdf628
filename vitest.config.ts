import { defineConfig } from 'vitest/config';

// The integration suite runs once per database engine: always on PGlite (embedded),
// and also on PostgreSQL when TEST_DATABASE_URL is set (CI sets it).
const engines = ['pglite', ...(process.env.TEST_DATABASE_URL ? ['postgres'] : [])];

export default defineConfig({
  test: {
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // Node 20's require(esm) crashed a worker once (FATAL ERROR in loadESMFromCJS, from a CommonJS
    // dependency loading an ES module): test workers load CommonJS entry points only.
    execArgv: ['--no-experimental-require-module'],
    projects: [
      { extends: true, test: { name: 'unit', include: ['test/unit/**/*.test.ts', 'src/**/*.test.ts'] } },
      // The client SDK (packages/client) against a live server on a loopback port (PGlite unless TESSERA_TEST_DB=postgres).
      { extends: true, test: { name: 'client', include: ['test/client/**/*.test.ts'] } },
      // @tessera/verify (packages/verify) against a live server's JWKS, in Express and Fastify apps, and PyJWT.
      { extends: true, test: { name: 'verify', include: ['test/verify/**/*.test.ts'] } },
      // npm pack of packages/client and packages/verify, installed offline into an empty project and imported there.
      { extends: true, test: { name: 'packages', include: ['test/packages/**/*.test.ts'], testTimeout: 60_000 } },
      // Real PostgreSQL + Redis + SMTP + worker processes: the production shape (needs TEST_DATABASE_URL and redis-server).
      ...(process.env.TEST_DATABASE_URL
        ? [
            {
              extends: true as const,
              test: { name: 'services', include: ['test/services/**/*.test.ts'], env: { TESSERA_TEST_DB: 'postgres' }, testTimeout: 60_000 },
            },
          ]
        : []),
      ...engines.map((engine) => ({
        extends: true as const,
        test: { name: engine, include: ['test/integration/**/*.test.ts'], env: { TESSERA_TEST_DB: engine } },
      })),
    ],
  },
});
