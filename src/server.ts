import cluster from 'node:cluster';
import { buildApp } from './app.js';
import { ConfigError, loadConfig, loadDotEnv, type Config } from './config.js';
import { DataDirLockedError } from './infra/db/data-dir-lock.js';
import { KeyError } from './infra/keys.js';
import { loadConfiguredKeys, openConfiguredDatabase } from './runtime.js';

function fail(err: unknown): never {
  if (err instanceof ConfigError || err instanceof KeyError || err instanceof DataDirLockedError) {
    console.error(`tessera: ${err.message}`);
  } else {
    console.error('tessera: failed to start', err);
  }
  process.exit(1);
}

/** One HTTP server process: open the database, migrate, listen, and close cleanly on SIGTERM/SIGINT. */
async function runServer(config: Config, migrate: boolean): Promise<void> {
  const { ring, generatedAt } = await loadConfiguredKeys(config);
  const database = await openConfiguredDatabase(config, (err) => console.error('tessera: idle database connection error:', err.message));
  if (migrate) await database.migrate();
  const app = await buildApp(config, { database, keys: ring });
  if (generatedAt) app.log.warn({ path: generatedAt }, 'generated a development signing key; set PRIVATE_KEY in production');
  if (database.kind === 'pglite') app.log.info({ dir: config.dataDir }, 'using the embedded database (PGlite); set DATABASE_URL for PostgreSQL');

  let closing = false;
  const shutdown = async (signal: string) => {
    if (closing) return;
    closing = true;
    app.log.info({ signal }, 'shutting down');
    await app.close();
    await database.close();
    process.exit(0);
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
  await app.listen({ host: config.host, port: config.port });
}

async function runPrimary(config: Config): Promise<void> {
  // Migrate and create keys once, before any worker starts.
  await loadConfiguredKeys(config);
  if (config.migrateOnStart) {
    const database = await openConfiguredDatabase(config);
    await database.migrate();
    await database.close();
  }
  let stopping = false;
  const fork = () => cluster.fork({ TESSERA_CLUSTER_WORKER: '1' });
  for (let i = 0; i < config.workers; i++) fork();
  cluster.on('exit', (worker, code, signal) => {
    if (stopping) return;
    console.error(`tessera: worker ${worker.process.pid} exited (${signal ?? code}); starting another`);
    fork();
  });
  const stop = (signal: NodeJS.Signals) => {
    stopping = true;
    for (const w of Object.values(cluster.workers ?? {})) w?.process.kill(signal);
    let left = Object.keys(cluster.workers ?? {}).length;
    if (left === 0) process.exit(0);
    cluster.on('exit', () => {
      left -= 1;
      if (left <= 0) process.exit(0);
    });
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGTERM'));
  console.log(`tessera: primary ${process.pid} started ${config.workers} workers on ${config.host}:${config.port}`);
}

try {
  loadDotEnv();
  const config = loadConfig();
  if (cluster.isPrimary && config.workers > 1) {
    if (!config.database.url) {
      console.error('tessera: WORKERS is ignored on the embedded database (PGlite is single-process); running one process. Set DATABASE_URL to use several.');
      await runServer(config, config.migrateOnStart);
    } else {
      await runPrimary(config);
    }
  } else {
    await runServer(config, config.migrateOnStart && process.env.TESSERA_CLUSTER_WORKER !== '1');
  }
} catch (err) {
  fail(err);
}
