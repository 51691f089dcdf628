import pino from 'pino';
import type { Config } from './config/index.js';
import { createConfiguredDelivery, createConfiguredMailer, createConfiguredRelay } from './features/email/runtime.js';
import { SetupError } from './fatal.js';
import { systemClock } from './infra/clock.js';
import { createEmailWorker, type JobResult } from './infra/queue.js';
import type { DeliveryOutcome } from './features/outbox/delivery.js';
import { loadConfiguredKeys, openConfiguredDatabase, watchKeys } from './runtime.js';

const toJobResult = (o: DeliveryOutcome): JobResult => {
  switch (o.kind) {
    case 'sent':
    case 'skipped':
      return { kind: 'done' };
    case 'retry':
      return { kind: 'delay', until: o.retryAt };
    case 'failed':
      return { kind: 'give_up', error: o.error };
    case 'busy':
      return { kind: 'delay', until: new Date(o.until.getTime() + 100) };
  }
};

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
  const mailer = createConfiguredMailer(config, logger);
  const deliver = createConfiguredDelivery(config, { db: database.db, clock: systemClock, keys: ring, mailer, logger });
  const worker = createEmailWorker(
    { redisUrl: config.redisUrl, concurrency: config.email.workerConcurrency, lockDurationMs: Math.max(5000, config.email.smtp?.timeoutMs ?? 30_000), reconnectMaxDelayMs: config.redisReconnectMaxDelayMs, logger },
    async (outboxId) => {
      const outcome = await deliver(outboxId, 'queued');
      logger.debug({ outboxId, outcome: outcome.kind }, 'email job processed');
      return toJobResult(outcome);
    },
  );
  // The worker relays too, so rows re-queued by `tessera outbox retry` move even when no API server runs.
  const { relay, close: closeQueue } = createConfiguredRelay({ ...config, redisUrl: config.redisUrl }, { db: database.db, clock: systemClock, logger });
  relay.start();
  logger.info({ concurrency: config.email.workerConcurrency, smtp: config.email.smtp ? `${config.email.smtp.host}:${config.email.smtp.port}` : 'files' }, 'email worker started');

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
    await relay.stop();
    await worker.close();
    await closeQueue();
    mailer.close();
    await database.close();
    process.exit(0);
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
}
