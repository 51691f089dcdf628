import type { Logger } from 'pino';
import type { Clock } from '../../infra/clock.js';
import type { Database } from '../../infra/db/client.js';
import { createPoller, type Poller } from '../../infra/poller.js';
import type { Deliver } from './delivery.js';
import { sentPurge } from './purge.js';
import * as repo from './outbox-repo.js';

/**
 * The in-process sender used when there is no Redis: polls the outbox and
 * delivers due rows itself, with the same claim, retry and failure rules as the worker.
 */
export function createDrainer(opts: {
  db: Database;
  clock: Clock;
  deliver: Deliver;
  concurrency: number;
  pollIntervalMs: number;
  logger: Pick<Logger, 'warn' | 'error' | 'info'>;
}): Poller {
  const { db, clock, logger } = opts;
  const purge = sentPurge(db, clock);
  return createPoller(
    async () => {
      const ids = await repo.dueIds(db, clock.now(), opts.concurrency);
      await Promise.all(
        ids.map((id) =>
          opts.deliver(id, 'pending').catch((err: unknown) => logger.warn({ err, outboxId: id }, 'email delivery interrupted; it stays in the outbox')),
        ),
      );
      await purge();
      return ids.length === opts.concurrency;
    },
    opts.pollIntervalMs,
    (err) => logger.warn({ err }, 'outbox poll failed; retrying'),
  );
}
