import type { Logger } from 'pino';
import type { Clock } from '../../infra/clock.js';
import type { Database } from '../../infra/db/client.js';
import { createPoller, type Poller } from '../../infra/poller.js';
import type { Deliver } from './delivery.js';
import * as repo from './repo.js';

const PURGE_EVERY_MS = 3600_000;
const KEEP_SENT_MS = 7 * 24 * 3600_000;

/**
 * The in-process sender used when there is no Redis: polls the outbox and
 * delivers due rows itself, with the same claim, retry and failure rules as the worker.
 */
export function createDrainer(opts: { db: Database; clock: Clock; deliver: Deliver; concurrency: number; pollIntervalMs: number; logger: Pick<Logger, 'warn' | 'error' | 'info'> }): Poller {
  const { db, clock, logger } = opts;
  let lastPurge = 0;
  return createPoller(
    async () => {
      const ids = await repo.dueIds(db, clock.now(), opts.concurrency);
      await Promise.all(
        ids.map((id) =>
          opts.deliver(id, 'pending').catch((err: unknown) => logger.warn({ err, outboxId: id }, 'email delivery interrupted; it stays in the outbox')),
        ),
      );
      if (Date.now() - lastPurge > PURGE_EVERY_MS) {
        lastPurge = Date.now();
        await repo.purgeSent(db, new Date(clock.now().getTime() - KEEP_SENT_MS));
      }
      return ids.length === opts.concurrency;
    },
    opts.pollIntervalMs,
    (err) => logger.warn({ err }, 'outbox poll failed; retrying'),
  );
}
