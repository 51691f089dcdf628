import cluster from 'node:cluster';
import { loadConfig, loadDotEnv } from './config/index.js';
import { reportFatal } from './fatal.js';

// Entry point of `npm start` and of every cluster worker. The primary of a cluster
// and a single server load different code (dynamic imports), so the primary stays small.
try {
  loadDotEnv();
  const config = loadConfig();
  if (cluster.isPrimary && config.workers > 1 && config.database.url) {
    const { runClusterPrimary } = await import('./cluster-primary.js');
    await runClusterPrimary(config);
  } else {
    if (config.workers > 1 && !config.database.url) {
      console.error('tessera: WORKERS is ignored on the embedded database (PGlite is single-process); running one process. Set DATABASE_URL to use several.');
    }
    const server = import('./http-server.js');
    // A cluster worker loads its code while its primary migrates, and starts once it has.
    if (cluster.isWorker) await (await import('./cluster-stats.js')).primaryMigrated();
    const { runHttpServer } = await server;
    await runHttpServer(config, config.migrateOnStart && cluster.isPrimary);
  }
} catch (err) {
  reportFatal(err, 'failed to start');
  process.exit(1);
}
