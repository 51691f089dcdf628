import type { Logger } from 'pino';
import type { Clock } from '../../infra/clock.js';
import type { Database } from '../../infra/db/client.js';
import { createPoller, type Poller } from '../../infra/poller.js';
import * as repo from './repo.js';

export interface JobQueue {
  /** Adds one job per outbox id (the id is the job id, so adding twice is a no-op). Throws when the queue is unreachable. */
  add(ids: string[]): Promise<void>;
}

const BATCH = 500;
const SWEEP_EVERY_MS = 30_000;
const PURGE_EVERY_MS = 3600_000;
const KEEP_SENT_MS = 7 * 24 * 3600_000;

/**
 * Moves outbox rows to the job queue. Rows are locked, added to the queue, and
 * marked queued in one transaction: if Redis is down the transaction rolls back
 * and the rows wait. Rows queued long ago and still unsent are added again (a
 * Redis without persistence forgets its jobs on restart); the job id dedupes.
 */
export function createRelay(opts: { db: Database; clock: Clock; queue: JobQueue; pollIntervalMs: number; staleAfterMs: number; logger: Pick<Logger, 'warn' | 'info'> }): Poller {
  const { db, clock, queue, logger } = opts;
  let lastSweep = 0;
  let lastPurge = 0;
  let failing = false;

  return createPoller(
    async () => {
      const now = clock.now();
      const moved = await db.transaction(async (tx) => {
        const ids = await repo.lockPendingForRelay(tx, now, BATCH);
        if (ids.length === 0) return 0;
        await queue.add(ids);
        await repo.markQueued(tx, ids, now);
        return ids.length;
      });
      if (failing && moved > 0) {
        logger.info('job queue reachable again; relaying email');
        failing = false;
      }
      if (Date.now() - lastSweep > SWEEP_EVERY_MS) {
        lastSweep = Date.now();
        await db.transaction(async (tx) => {
          const stale = await repo.lockStaleQueued(tx, new Date(now.getTime() - opts.staleAfterMs), now, BATCH);
          if (stale.length === 0) return;
          await queue.add(stale);
          await repo.touchQueued(tx, stale, now);
        });
      }
      if (Date.now() - lastPurge > PURGE_EVERY_MS) {
        lastPurge = Date.now();
        await repo.purgeSent(db, new Date(now.getTime() - KEEP_SENT_MS));
      }
      return moved === BATCH;
    },
    opts.pollIntervalMs,
    (err) => {
      if (!failing) logger.warn({ err: (err as Error).message }, 'cannot relay email to the job queue; it waits in the outbox');
      failing = true;
    },
  );
}
