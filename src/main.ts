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
    const { runHttpServer } = await import('./http-server.js');
    // Cluster workers start after their primary has migrated.
    await runHttpServer(config, config.migrateOnStart && cluster.isPrimary);
  }
} catch (err) {
  reportFatal(err, 'failed to start');
  process.exit(1);
}
