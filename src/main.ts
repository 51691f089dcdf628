import cluster from 'node:cluster';
import { ConfigError, loadConfig, loadDotEnv } from './config.js';
import { DataDirLockedError } from './infra/db/data-dir-lock.js';
import { KeyError } from './infra/keys.js';

function fail(err: unknown): never {
  if (err instanceof ConfigError || err instanceof KeyError || err instanceof DataDirLockedError) {
    console.error(`tessera: ${err.message}`);
  } else {
    console.error('tessera: failed to start', err);
  }
  process.exit(1);
}

// Entry point of `npm start` and of every cluster worker. The primary of a cluster and
// a single server load different code (dynamic imports),
// so the primary stays small.
try {
  loadDotEnv();
  const config = loadConfig();
  const isWorker = process.env.TESSERA_CLUSTER_WORKER === '1';
  if (cluster.isPrimary && config.workers > 1 && config.database.url) {
    const { runClusterPrimary } = await import('./cluster-primary.js');
    await runClusterPrimary(config);
  } else {
    if (config.workers > 1 && !config.database.url) {
      console.error('tessera: WORKERS is ignored on the embedded database (PGlite is single-process); running one process. Set DATABASE_URL to use several.');
    }
    const { runHttpServer } = await import('./http-server.js');
    await runHttpServer(config, config.migrateOnStart && !isWorker);
  }
} catch (err) {
  fail(err);
}
