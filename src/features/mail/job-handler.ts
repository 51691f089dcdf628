import type { Logger } from 'pino';
import type { Config } from '../../config/index.js';
import type { Clock } from '../../infra/clock.js';
import type { Database } from '../../infra/db/client.js';
import type { KeyRing } from '../../infra/keys.js';
import { redisOutageNotice } from '../../infra/outage-notice.js';
import type { JobResult } from '../../infra/queue.js';
import type { Deliver, DeliveryOutcome } from './delivery.js';
import { createEmailWorker } from './queue.js';
import { createConfiguredDelivery, createConfiguredMailer, createConfiguredRelay } from './setup.js';

/** What BullMQ is told about a delivery: done, give up, or run the job again at a time. */
export const toJobResult = (o: DeliveryOutcome): JobResult => {
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

/** What the worker runs for one email job: deliver the outbox row it names. */
export function createMailJobHandler(deliver: Deliver, logger: Pick<Logger, 'debug'>): (outboxId: string) => Promise<JobResult> {
  return async (outboxId) => {
    const outcome = await deliver(outboxId, 'queued');
    logger.debug({ outboxId, outcome: outcome.kind }, 'email job processed');
    return toJobResult(outcome);
  };
}

export interface MailWorker {
  /** Stops relaying, finishes the jobs in hand, then closes the queue and the SMTP transport. */
  stop(): Promise<void>;
}

/**
 * The mail side of `npm run worker`: consumes the BullMQ `email` queue, and
 * relays too, so rows re-queued by `tessera outbox retry` move even when no API
 * server runs. The process (keys, database, signals) is src/worker-process.ts.
 */
export function startMailWorker(
  config: Config & { redisUrl: string },
  deps: { db: Database; clock: Clock; keys: KeyRing; logger: Pick<Logger, 'debug' | 'info' | 'warn' | 'error'> },
): MailWorker {
  const { db, clock, keys, logger } = deps;
  const mailer = createConfiguredMailer(config, logger);
  // A wrong SMTP host or password is said at start, not at the first message.
  void mailer.check?.();
  // The worker's connections to Redis (jobs, relay) say an outage once between them.
  const redisNotice = redisOutageNotice({ url: config.redisUrl, setting: config.redisUrlSetting }, 'email waits in the outbox', logger);
  const deliver = createConfiguredDelivery(config, { db, clock, keys, mailer, logger });
  const worker = createEmailWorker(
    {
      redisUrl: config.redisUrl,
      concurrency: config.email.workerConcurrency,
      lockDurationMs: Math.max(5000, config.email.smtp?.timeoutMs ?? 30_000),
      reconnectMaxDelayMs: config.redisReconnectMaxDelayMs,
      logger,
      notice: redisNotice.connection(),
    },
    createMailJobHandler(deliver, logger),
  );
  const { relay, close: closeQueue } = createConfiguredRelay(config, { db, clock, logger, redisNotice: redisNotice.connection() });
  relay.start();
  return {
    async stop() {
      await relay.stop();
      await worker.close();
      await closeQueue();
      mailer.close();
    },
  };
}
