import { describe, expect, it } from 'vitest';
import { createSessionCache } from '../../src/features/sessions/session-cache.js';
import type { SessionWithUser } from '../../src/features/sessions/repo.js';
import type { Broadcast } from '../../src/infra/pubsub.js';

/** A broadcast in memory: `live` is set by the test; published messages reach every cache on it. */
function fakeBroadcast() {
  const listeners: ((m: string | null) => void)[] = [];
  const b = {
    live: true,
    published: [] as string[],
    publish(m: string) {
      b.published.push(m);
      for (const fn of listeners) fn(m);
    },
    subscribe: (fn: (m: string | null) => void) => void listeners.push(fn),
    setLive(live: boolean) {
      b.live = live;
      for (const fn of listeners) fn(null);
    },
    ready: async () => b.live,
    close: async () => undefined,
  };
  return b satisfies Broadcast & Record<string, unknown>;
}

const session = (userId: string, sessionId = `s-${userId}`): SessionWithUser => ({
  sessionId,
  scope: null,
  userId,
  generation: 0,
  clientId: null,
  amr: ['pwd'],
  createdAt: new Date(0),
  expiresAt: new Date(8.64e15),
  lastRefreshedAt: new Date(0),
  revokedAt: null,
  email: `${userId}@example.com`,
  emailVerifiedAt: null,
  disabledAt: null,
  firstName: null,
  lastName: null,
  hasPassword: true,
  userCreatedAt: new Date(0),
  userUpdatedAt: new Date(0),
});

function setup(ttlMs = 1000) {
  let t = 0;
  const broadcast = fakeBroadcast();
  const cache = createSessionCache({ ttlMs, broadcast, now: () => t });
  let reads = 0;
  const rows = new Map<string, SessionWithUser | null>();
  const lookup = (id: string) =>
    cache.lookup(
      id,
      async () => {
        reads++;
        return rows.get(id) ?? null;
      },
      (s) => !s.revokedAt,
    );
  return { cache, broadcast, rows, lookup, reads: () => reads, advance: (ms: number) => (t += ms) };
}

describe('session cache', () => {
  it('serves a live session from memory for at most the TTL, counted from the start of its read', async () => {
    const c = setup(1000);
    c.rows.set('s-u1', session('u1'));
    await c.lookup('s-u1');
    await c.lookup('s-u1');
    expect(c.reads()).toBe(1);
    c.advance(999);
    await c.lookup('s-u1');
    expect(c.reads()).toBe(1);
    c.advance(1);
    await c.lookup('s-u1');
    expect(c.reads()).toBe(2);
  });

  it('keeps neither ended sessions nor unknown ones', async () => {
    const c = setup();
    c.rows.set('s-u1', { ...session('u1'), revokedAt: new Date() });
    await c.lookup('s-u1');
    await c.lookup('s-u1');
    await c.lookup('nope');
    await c.lookup('nope');
    expect(c.reads()).toBe(4);
    expect(c.cache.size).toBe(0);
  });

  it('an invalidation drops the user’s sessions, is published, and keeps the user out of the cache for the TTL', async () => {
    const c = setup(1000);
    c.rows.set('s-u1', session('u1'));
    c.rows.set('s-u2', session('u2'));
    await c.lookup('s-u1');
    await c.lookup('s-u2');
    c.cache.invalidateUser('u1');
    expect(c.broadcast.published).toEqual(['u:u1']);
    expect(c.cache.size).toBe(1);
    // Within the quiet period (the revoking transaction may not have committed yet), reads are not kept.
    await c.lookup('s-u1');
    await c.lookup('s-u1');
    expect(c.reads()).toBe(4);
    c.advance(1000);
    await c.lookup('s-u1');
    await c.lookup('s-u1');
    expect(c.reads()).toBe(5);
  });

  it('a read during which an invalidation arrived is not kept', async () => {
    const c = setup();
    let release!: () => void;
    const pending = c.cache.lookup(
      's-u1',
      () => new Promise<SessionWithUser>((resolve) => (release = () => resolve(session('u1')))),
      () => true,
    );
    // Another instance ended a session of someone else: any invalidation during a read voids it.
    c.broadcast.publish('u:u9');
    release();
    await pending;
    expect(c.cache.size).toBe(0);
  });

  it('is bypassed while the broadcast is not live, and forgets everything when liveness changes', async () => {
    const c = setup();
    c.rows.set('s-u1', session('u1'));
    await c.lookup('s-u1');
    expect(c.cache.size).toBe(1);
    c.broadcast.setLive(false);
    expect(c.cache.size).toBe(0);
    expect(c.cache.active).toBe(false);
    await c.lookup('s-u1');
    await c.lookup('s-u1');
    expect(c.reads()).toBe(3);
    expect(c.cache.size).toBe(0);
    c.broadcast.setLive(true);
    await c.lookup('s-u1');
    await c.lookup('s-u1');
    expect(c.reads()).toBe(4);
  });

  it('holds at most maxEntries, dropping the oldest', async () => {
    const cache = createSessionCache({ ttlMs: 1000, broadcast: fakeBroadcast(), now: () => 0, maxEntries: 2 });
    for (const u of ['a', 'b', 'c'])
      await cache.lookup(
        `s-${u}`,
        async () => session(u),
        () => true,
      );
    expect(cache.size).toBe(2);
    let read = false;
    await cache.lookup(
      's-a',
      async () => ((read = true), session('a')),
      () => true,
    );
    expect(read).toBe(true);
  });
});
