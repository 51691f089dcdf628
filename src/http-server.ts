import { buildApp } from './app.js';
import { assembleInfra } from './composition/infra.js';
import { createServices } from './composition/services.js';
import { watchWorkerCrashes } from './cluster-stats.js';
import type { Config } from './config/index.js';
import { niceCurrentThread } from './infra/thread-priority.js';
import { migrateDatabase } from './migrate.js';
import { connectConfiguredDatabase, loadConfiguredKeys, loadMfaKey, watchKeys } from './runtime.js';

/**
 * One HTTP server process: open the database, migrate, listen, and close cleanly
 * on SIGTERM/SIGINT: stop accepting connections (requests arriving on open
 * keep-alive connections, readiness included, get 503), let the requests in
 * flight finish, stop the email sender, close the database, exit 0. After
 * SHUTDOWN_TIMEOUT the remaining connections are cut and the exit code is 1.
 */
export async function runHttpServer(config: Config, migrate: boolean): Promise<void> {
  const keys = await loadConfiguredKeys(config);
  const { ring, generatedAt } = keys;
  const database = await connectConfiguredDatabase(config, (err) => console.error('tessera: idle database connection error:', err.message));
  if (migrate) await migrateDatabase(database, (line) => console.warn(`tessera: ${line}`));
  const workerCrashes = watchWorkerCrashes();
  const infra = assembleInfra(config, { role: 'server', database, keys: ring, mfaKey: loadMfaKey(config) });
  const app = await buildApp(config, createServices(config, infra, { sendEmail: true }), workerCrashes ? { workerCrashes } : {});
  // The hashing threads run now, at BCRYPT_NICE: this thread (and any started after it) yields them a share under overload.
  const nice = niceCurrentThread(config.passwords.eventLoopNice);
  if (nice < config.passwords.eventLoopNice) app.log.warn({ nice, wanted: config.passwords.eventLoopNice }, 'EVENT_LOOP_NICE could not be applied');
  if (generatedAt) app.log.warn({ path: generatedAt }, 'generated a development signing key; set PRIVATE_KEY or KEYS_DIR in production');
  // KEYS_DIR: a rotated-in key is published (and later signs) without a restart.
  const stopWatchingKeys = watchKeys(keys, config.jwt.keysReloadIntervalSeconds, app.log);
  if (database.kind === 'pglite') app.log.info({ dir: config.dataDir }, 'using the embedded database (PGlite); set DATABASE_URL for PostgreSQL');

  let closing = false;
  const shutdown = async (signal: string) => {
    if (closing) return;
    closing = true;
    app.log.info({ signal, timeoutMs: config.shutdownTimeoutMs }, 'shutting down: finishing requests in flight');
    const deadline = setTimeout(() => {
      app.log.error({ timeoutMs: config.shutdownTimeoutMs }, 'shutdown timed out; closing the remaining connections');
      app.server.closeAllConnections();
      process.exit(1);
    }, config.shutdownTimeoutMs);
    deadline.unref();
    stopWatchingKeys();
    await app.close();
    await database.close();
    clearTimeout(deadline);
    app.log.info('stopped');
    process.exit(0);
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
  await app.listen({ host: config.host, port: config.port });
}
