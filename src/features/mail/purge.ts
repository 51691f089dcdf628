import type { Clock } from '../../infra/clock.js';
import type { Database } from '../../infra/db/client.js';
import * as repo from './outbox-repo.js';

const EVERY_MS = 3600_000;
const KEEP_SENT_MS = 7 * 24 * 3600_000;

/**
 * For the polling loops (relay, in-process sender): deletes sent rows older than
 * a week, at most once an hour; the outbox is not an archive of who got mail.
 */
export function sentPurge(db: Database, clock: Clock): () => Promise<void> {
  let last = 0;
  return async () => {
    const now = clock.now().getTime();
    if (now - last < EVERY_MS) return;
    last = now;
    await repo.purgeSent(db, new Date(now - KEEP_SENT_MS));
  };
}
