import { buildApp } from './app.js';
import { assembleInfra } from './composition/infra.js';
import { createServices } from './composition/services.js';
import { watchWorkerCrashes } from './cluster-stats.js';
import type { Config } from './config/index.js';
import { SetupError } from './fatal.js';
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
  try {
    await app.listen({ host: config.host, port: config.port });
  } catch (err) {
    const why = listenFailure(err);
    if (!why) throw err;
    // Another server on the port (often a previous service on 8000): one line, after closing what was opened.
    stopWatchingKeys();
    await app.close().catch(() => {});
    await database.close().catch(() => {});
    throw new SetupError(`cannot listen on ${config.host}:${config.port} (SERVER, SERVER_PORT): ${why}`);
  }
}

/** Why the listening socket could not be opened, in words a person can act on; null for anything else. */
function listenFailure(err: unknown): string | null {
  switch ((err as NodeJS.ErrnoException).code) {
    case 'EADDRINUSE':
      return 'the port is in use by another process (EADDRINUSE): stop it, or set SERVER_PORT to a free port';
    case 'EACCES':
      return 'permission denied (EACCES): ports below 1024 need privileges; use SERVER_PORT=8000 behind a proxy';
    case 'EADDRNOTAVAIL':
      return 'this machine has no such address (EADDRNOTAVAIL): SERVER is 127.0.0.1 (this machine only) or 0.0.0.0 (every interface, e.g. in a container)';
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return 'the SERVER host name does not resolve: use an address, e.g. 127.0.0.1 or 0.0.0.0';
    default:
      return null;
  }
}
