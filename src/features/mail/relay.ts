import type { Logger } from 'pino';
import type { Clock } from '../../infra/clock.js';
import type { Database } from '../../infra/db/client.js';
import { createPoller, type Poller } from '../../infra/poller.js';
import { sentPurge } from './purge.js';
import * as repo from './outbox-repo.js';

export interface JobQueue {
  /** Adds one job per outbox id (the id is the job id, so adding twice is a no-op). Throws when the queue is unreachable. */
  add(ids: string[]): Promise<void>;
  /** Calls `listener` whenever the connection to the queue comes back. */
  onReconnect(listener: () => void): void;
}

const BATCH = 500;
const SWEEP_EVERY_MS = 30_000;

/**
 * Moves outbox rows to the job queue. Rows are locked, added to the queue, and
 * marked queued in one transaction: if Redis is down the transaction rolls back
 * and the rows wait. Rows queued long ago and still unsent are added again (a
 * Redis without persistence forgets its jobs on restart), and every unsent
 * queued row is added again at once when the connection to Redis comes back;
 * the job id dedupes, so a job that still exists is not doubled.
 */
export function createRelay(opts: {
  db: Database;
  clock: Clock;
  queue: JobQueue;
  pollIntervalMs: number;
  staleAfterMs: number;
  logger: Pick<Logger, 'warn' | 'info'>;
}): Poller {
  const { db, clock, queue, logger } = opts;
  let lastSweep = 0;
  const purge = sentPurge(db, clock);
  let failing = false;
  let sweepEverything = false;

  const poller = createPoller(
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
      if (sweepEverything || now.getTime() - lastSweep > SWEEP_EVERY_MS) {
        lastSweep = now.getTime();
        const queuedBefore = sweepEverything ? now : new Date(now.getTime() - opts.staleAfterMs);
        sweepEverything = false;
        await db.transaction(async (tx) => {
          const stale = await repo.lockStaleQueued(tx, queuedBefore, now, BATCH);
          if (stale.length === 0) return;
          await queue.add(stale);
          await repo.touchQueued(tx, stale, now);
        });
      }
      await purge();
      return moved === BATCH;
    },
    opts.pollIntervalMs,
    (err) => {
      if (!failing) logger.warn({ err: (err as Error).message }, 'cannot relay email to the job queue; it waits in the outbox');
      failing = true;
    },
  );
  queue.onReconnect(() => {
    sweepEverything = true;
    poller.wake();
  });
  return poller;
}
