import type { FastifyBaseLogger } from 'fastify';
import type { Config } from '../../config/index.js';
import type { Clock } from '../../infra/clock.js';
import type { DatabaseHandle } from '../../infra/db/client.js';
import type { KeyRing } from '../../infra/keys.js';
import type { OutageReporter } from '../../infra/outage-notice.js';
import type { Poller } from '../../infra/poller.js';
import { createDrainer } from './drainer.js';
import type { OutboxService } from './outbox.js';
import type { NoticeSender } from './delivery.js';
import { createConfiguredDelivery, createConfiguredMailer, createConfiguredRelay } from './setup.js';
import { loadTemplates } from './templates.js';

export interface EmailSender {
  mode: 'queue' | 'in-process';
  /** In queue mode: checks Redis answers (readiness). */
  redis: { ping: () => Promise<void> } | null;
  start(): void;
  stop(): Promise<void>;
}

/**
 * What the API server does with the outbox. With Redis (and PostgreSQL), a
 * relay hands rows to the BullMQ queue and `npm run worker` sends them. Without
 * Redis, or on the embedded database (where no worker may open it), the server
 * sends them itself.
 */
export function createEmailSender(
  config: Config,
  deps: {
    database: DatabaseHandle;
    keys: KeyRing;
    clock: Clock;
    outbox: OutboxService;
    logger: FastifyBaseLogger;
    redisNotice?: OutageReporter;
    /** The senders of the outbox's other kinds (back-channel logout notices), for the in-process path. */
    notices?: Readonly<Record<string, NoticeSender>>;
  },
): EmailSender {
  const { database, clock, logger } = deps;
  const log = logger.child({ component: 'email' });
  let poller: Poller;
  let close: () => Promise<void> | void;
  let mode: EmailSender['mode'];
  let redis: EmailSender['redis'] = null;
  let check: () => Promise<void> = () => Promise.resolve();

  if (config.redisUrl && database.kind === 'postgres') {
    // The worker renders; loading the templates here too reports a broken override at start.
    loadTemplates(config.email.templatesDir);
    const relayed = createConfiguredRelay(
      { ...config, redisUrl: config.redisUrl },
      { db: database.db, clock, logger: log, ...(deps.redisNotice ? { redisNotice: deps.redisNotice } : {}) },
    );
    poller = relayed.relay;
    close = relayed.close;
    redis = { ping: () => relayed.queue.ping() };
    mode = 'queue';
  } else {
    if (config.redisUrl) log.info('REDIS_URL is not used on the embedded database: the server sends email itself (a worker cannot open PGlite)');
    const mailer = createConfiguredMailer(config, log);
    const deliver = createConfiguredDelivery(config, {
      db: database.db,
      clock,
      keys: deps.keys,
      mailer,
      logger: log,
      ...(deps.notices ? { notices: deps.notices } : {}),
    });
    poller = createDrainer({
      db: database.db,
      clock,
      deliver,
      concurrency: config.email.workerConcurrency,
      pollIntervalMs: config.email.pollIntervalMs,
      logger: log,
    });
    close = () => mailer.close();
    // The server sends: a wrong SMTP host or password is said at start, not at the first registration.
    check = () => mailer.check?.() ?? Promise.resolve();
    mode = 'in-process';
  }
  deps.outbox.onCommitted(() => poller.wake());
  return {
    mode,
    redis,
    start: () => {
      void check();
      poller.start();
    },
    async stop() {
      await poller.stop();
      await close();
    },
  };
}
