import type { Broadcast } from '../../infra/pubsub.js';
import type { SessionWithUser } from './repo.js';

/**
 * The live sessions recently looked up by this process, so that a session
 * check (every authenticated request) costs no database round trip.
 *
 * What keeps "revocation takes effect at once" true (docs/operations.md, Session cache):
 * - Only live sessions are kept, and each at most `ttlMs` (SESSION_CACHE_TTL_MS,
 *   default 1 s) counted from the moment its database read *started*: whatever
 *   was committed before a read is seen by every instance within `ttlMs`, in the worst case.
 * - Every change that ends a session or disables its user calls `invalidateUser`:
 *   this process drops the user's entries at once and publishes the user id to
 *   every instance (Redis pub/sub), which drop theirs as the message arrives
 *   (milliseconds). For `ttlMs` after an invalidation, nothing of that user is
 *   cached again, so a read that raced with the not yet committed change is not kept;
 *   and a read during which any invalidation arrived is not kept either.
 * - The cache is used only while the broadcast is live (its own heartbeat
 *   comes back through Redis): with Redis down, or the subscription not
 *   confirmed, every check goes to the database, and everything cached is
 *   dropped when liveness is lost (messages may have been missed).
 * Roles and permissions are not in it (admin guards read them per request).
 */
export interface SessionCache {
  /** The session from the cache, or from `load` (kept when `keep` says so and nothing invalidated meanwhile). */
  lookup(sessionId: string, load: () => Promise<SessionWithUser | null>, keep: (s: SessionWithUser) => boolean): Promise<SessionWithUser | null>;
  /** Forgets every session of the user here and on every instance. */
  invalidateUser(userId: string): void;
  /** Entries held now (metrics, tests). */
  readonly size: number;
  /** True while entries may be served (the broadcast is live and `ttlMs` > 0). */
  readonly active: boolean;
}

export interface SessionCacheOptions {
  ttlMs: number;
  /** Most entries held; the oldest go first beyond it. */
  maxEntries?: number;
  broadcast: Broadcast;
  /** Milliseconds, monotonic enough for expiry (tests pass their own). */
  now?: () => number;
}

const USER = 'u:';

export function createSessionCache(opts: SessionCacheOptions): SessionCache {
  const { ttlMs, broadcast } = opts;
  const maxEntries = opts.maxEntries ?? 10_000;
  const now = opts.now ?? (() => performance.now());
  const entries = new Map<string, { session: SessionWithUser; until: number }>();
  /** Users invalidated in the last `ttlMs`: nothing of theirs is cached until then. */
  const quiet = new Map<string, number>();
  /** Bumped by every invalidation and liveness change: a read that saw a bump is not kept. */
  let epoch = 0;

  const dropUser = (userId: string) => {
    epoch++;
    const t = now();
    if (quiet.size >= maxEntries) for (const [id, until] of quiet) if (until <= t) quiet.delete(id);
    quiet.set(userId, t + ttlMs);
    for (const [id, e] of entries) if (e.session.userId === userId) entries.delete(id);
  };

  broadcast.subscribe((message) => {
    if (message === null) {
      // Liveness changed: messages may have been missed; start over.
      epoch++;
      entries.clear();
      return;
    }
    if (message.startsWith(USER)) dropUser(message.slice(USER.length));
  });

  const usable = () => ttlMs > 0 && broadcast.live;

  return {
    async lookup(sessionId, load, keep) {
      if (!usable()) return load();
      const t = now();
      const hit = entries.get(sessionId);
      if (hit) {
        if (hit.until > t) return hit.session;
        entries.delete(sessionId);
      }
      const seen = epoch;
      const session = await load();
      if (!session || !keep(session) || seen !== epoch || !usable()) return session;
      const quietUntil = quiet.get(session.userId);
      if (quietUntil !== undefined) {
        if (quietUntil > now()) return session;
        quiet.delete(session.userId);
      }
      if (entries.size >= maxEntries) {
        const oldest = entries.keys().next().value;
        if (oldest !== undefined) entries.delete(oldest);
      }
      entries.set(sessionId, { session, until: t + ttlMs });
      return session;
    },
    invalidateUser(userId) {
      dropUser(userId);
      broadcast.publish(USER + userId);
    },
    get size() {
      return entries.size;
    },
    get active() {
      return usable();
    },
  };
}

/** No cache: every lookup reads (SESSION_CACHE_TTL_MS=0, or no Redis). */
export const noSessionCache: SessionCache = {
  lookup: (_id, load) => load(),
  invalidateUser: () => undefined,
  size: 0,
  active: false,
};
