import pino from 'pino';
import type { Config } from './config/index.js';
import { backchannelNotices } from './features/backchannel/post-notice.js';
import { startMailWorker } from './features/mail/index.js';
import { SetupError } from './fatal.js';
import { systemClock } from './infra/clock.js';
import { loadConfiguredKeys, openConfiguredDatabase, watchKeys } from './runtime.js';

/** `npm run worker` / `tessera worker`: sends the email jobs of the BullMQ `email` queue until SIGTERM/SIGINT. */
export async function runWorker(config: Config): Promise<void> {
  if (!config.database.url) {
    throw new SetupError(
      'the worker needs PostgreSQL (DATABASE_URL or DB_HOST): the embedded database (PGlite) is single-process, and without it the server sends email itself.',
    );
  }
  if (!config.redisUrl) {
    throw new SetupError('REDIS_URL (or CELERY_BROKER_URL) is not set: without Redis there is no queue, and the server sends email itself.');
  }
  const logger = pino({ level: config.logLevel, base: { pid: process.pid, role: 'worker' } });
  const keys = await loadConfiguredKeys(config);
  const { ring } = keys;
  // Links sealed under a newly rotated-in key must open here too.
  const stopWatchingKeys = watchKeys(keys, config.jwt.keysReloadIntervalSeconds, logger);
  const database = await openConfiguredDatabase(config, (err) => logger.warn({ err: err.message }, 'idle database connection error'));
  const mail = startMailWorker(
    { ...config, redisUrl: config.redisUrl },
    // The worker delivers back-channel logout notices too (they travel through the same outbox and queue).
    { db: database.db, clock: systemClock, keys: ring, logger, notices: backchannelNotices({ keys: ring, clock: systemClock, issuer: config.jwt.issuer }) },
  );
  logger.info(
    { concurrency: config.email.workerConcurrency, smtp: config.email.smtp ? `${config.email.smtp.host}:${config.email.smtp.port}` : 'files' },
    'email worker started',
  );

  let closing = false;
  const shutdown = async (signal: string) => {
    if (closing) return;
    closing = true;
    logger.info({ signal, timeoutMs: config.shutdownTimeoutMs }, 'worker stopping: finishing the jobs in hand');
    // A job still running at the deadline is left to BullMQ: its lock expires and another worker takes it.
    const deadline = setTimeout(() => {
      logger.error('shutdown timed out; exiting with jobs in hand (another worker will take them over)');
      process.exit(1);
    }, config.shutdownTimeoutMs);
    deadline.unref();
    stopWatchingKeys();
    await mail.stop();
    await database.close();
    process.exit(0);
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
}
