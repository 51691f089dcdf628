import { createHash } from 'node:crypto';
import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { systemClock, type Clock } from './clock.js';
import type { OutageReporter } from './outage-notice.js';
import { reconnectWithin } from './redis-reconnect.js';

/** A counter's value and the milliseconds until it expires (0 when absent). */
export interface Count {
  count: number;
  ttlMs: number;
}

/** The answer to a reservation: `taken` (counted, `count` includes it) or refused (`ttlMs`: how long the refusal lasts). */
export interface Taken extends Count {
  taken: boolean;
}

/** A growing block after a counter's first `free` counts: `baseMs`, 2×, 4× … up to `maxMs`. */
export interface DelaySchedule {
  free: number;
  baseMs: number;
  maxMs: number;
}

/** The block that the `count`th count starts under `s` (0: none). */
export function delayMsAfter(count: number, s: DelaySchedule): number {
  const over = count - s.free;
  return over >= 0 ? Math.min(s.maxMs, s.baseMs * 2 ** Math.min(over, 30)) : 0;
}

/**
 * Expiring counters for rate limits and brute-force delays. Keys are opaque
 * strings; the caller hashes anything personal before it becomes a key.
 *
 * `take` and `reserve` decide and count in one atomic step, so that parallel
 * requests cannot all pass a check before any of them is counted: count first
 * (a reservation), then do the costly check, then `release` or `delete` on success.
 */
export interface CounterStore {
  /**
   * Adds one to `key`. A new key lives `windowMs`; with `slide`, every hit
   * restarts that time (failures forgotten `windowMs` after the last one).
   */
  hit(key: string, windowMs: number, opts?: { slide?: boolean }): Promise<Count>;
  peek(key: string): Promise<Count>;
  /** Adds one to `key` (a new key lives `windowMs`) unless it already reached `max`: then refused, `ttlMs` until it expires. */
  take(key: string, windowMs: number, max: number): Promise<Taken>;
  /**
   * Refused while `blockKey` lives (`ttlMs`: what is left of it). Otherwise adds
   * one to `key` (sliding `windowMs`) and, when that count starts a delay of
   * `schedule`, sets `blockKey` for it (`delayMs`).
   */
  reserve(key: string, blockKey: string, windowMs: number, schedule: DelaySchedule): Promise<Taken & { delayMs: number }>;
  /** Gives one back (a reservation that turned out fine); never below zero, the expiry stays. */
  release(key: string): Promise<void>;
  /** Sets `key` to `value` for `ttlMs` (a delay). */
  set(key: string, value: number, ttlMs: number): Promise<void>;
  delete(...keys: string[]): Promise<void>;
  close(): Promise<void>;
}

/** How anything personal (an email address) becomes part of a key: a digest, never the value itself. */
export const keyDigest = (value: string): string => createHash('sha256').update(value).digest('base64url').slice(0, 32);

/** An absent counter. */
export const NO_COUNT: Count = { count: 0, ttlMs: 0 };

/**
 * One process's counters, expiring by the injected clock. Bounded: past
 * `maxKeys` live keys, the ones that expire soonest are dropped first.
 */
export function createMemoryCounterStore(clock: Clock, maxKeys = 100_000): CounterStore {
  const entries = new Map<string, { count: number; expiresAt: number }>();
  const now = () => clock.now().getTime();
  const live = (key: string) => {
    const e = entries.get(key);
    if (e && e.expiresAt <= now()) {
      entries.delete(key);
      return undefined;
    }
    return e;
  };
  const makeRoom = () => {
    if (entries.size < maxKeys) return;
    const t = now();
    for (const [k, e] of entries) if (e.expiresAt <= t) entries.delete(k);
    if (entries.size < maxKeys) return;
    const soonest = [...entries].sort((a, b) => a[1].expiresAt - b[1].expiresAt).slice(0, Math.ceil(maxKeys / 10));
    for (const [k] of soonest) entries.delete(k);
  };
  // Synchronous steps: nothing else runs between a check and its count (one event loop).
  const hit = (key: string, windowMs: number, slide = false): Count => {
    const e = live(key);
    if (!e) {
      makeRoom();
      entries.set(key, { count: 1, expiresAt: now() + windowMs });
      return { count: 1, ttlMs: windowMs };
    }
    e.count += 1;
    if (slide) e.expiresAt = now() + windowMs;
    return { count: e.count, ttlMs: e.expiresAt - now() };
  };
  const peek = (key: string): Count => {
    const e = live(key);
    return e ? { count: e.count, ttlMs: e.expiresAt - now() } : NO_COUNT;
  };
  const set = (key: string, value: number, ttlMs: number) => {
    if (!live(key)) makeRoom();
    entries.set(key, { count: value, expiresAt: now() + ttlMs });
  };
  return {
    hit: async (key, windowMs, opts) => hit(key, windowMs, opts?.slide),
    peek: async (key) => peek(key),
    async take(key, windowMs, max) {
      const current = peek(key);
      return current.count >= max ? { taken: false, ...current } : { taken: true, ...hit(key, windowMs) };
    },
    async reserve(key, blockKey, windowMs, schedule) {
      const blocked = peek(blockKey);
      if (blocked.ttlMs > 0) return { taken: false, count: peek(key).count, ttlMs: blocked.ttlMs, delayMs: 0 };
      const counted = hit(key, windowMs, true);
      const delayMs = delayMsAfter(counted.count, schedule);
      if (delayMs > 0) set(blockKey, 1, delayMs);
      return { taken: true, ...counted, delayMs };
    },
    async release(key) {
      const e = live(key);
      if (e && e.count > 0) e.count -= 1;
    },
    set: async (key, value, ttlMs) => set(key, value, ttlMs),
    async delete(...keys) {
      for (const k of keys) entries.delete(k);
    },
    async close() {
      entries.clear();
    },
  };
}

// INCR and its expiry in one step: no key is ever left without a TTL, whatever fails between two commands.
const HIT = `
local c = redis.call('INCR', KEYS[1])
if c == 1 or ARGV[2] == '1' then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) ttl = tonumber(ARGV[1]) end
return {c, ttl}`;

const PEEK = `
local c = redis.call('GET', KEYS[1])
if not c then return {0, 0} end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then ttl = 0 end
return {tonumber(c), ttl}`;

// GET, then INCR only below the maximum: a refused request is not counted.
const TAKE = `
local c = tonumber(redis.call('GET', KEYS[1]) or '0')
local taken = 0
if c < tonumber(ARGV[2]) then
  c = redis.call('INCR', KEYS[1])
  taken = 1
  if c == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) ttl = tonumber(ARGV[1]) end
return {taken, c, ttl}`;

// The brute-force step in one go: refused while the block lives; else count (sliding) and start the delay that count earns.
const RESERVE = `
local blocked = redis.call('PTTL', KEYS[2])
if blocked > 0 then return {0, tonumber(redis.call('GET', KEYS[1]) or '0'), blocked, 0} end
local c = redis.call('INCR', KEYS[1])
redis.call('PEXPIRE', KEYS[1], ARGV[1])
local over = c - tonumber(ARGV[2])
local delay = 0
if over >= 0 then delay = math.min(tonumber(ARGV[4]), tonumber(ARGV[3]) * 2 ^ math.min(over, 30)) end
if delay > 0 then redis.call('SET', KEYS[2], '1', 'PX', delay) end
return {1, c, tonumber(ARGV[1]), delay}`;

const RELEASE = `
local c = tonumber(redis.call('GET', KEYS[1]) or '0')
if c > 0 then redis.call('DECR', KEYS[1]) end
return c`;

type Scripted = Redis & {
  counterHit(key: string, windowMs: number, slide: string): Promise<[number, number]>;
  counterPeek(key: string): Promise<[number, number]>;
  counterTake(key: string, windowMs: number, max: number): Promise<[number, number, number]>;
  counterReserve(key: string, blockKey: string, windowMs: number, free: number, baseMs: number, maxMs: number): Promise<[number, number, number, number]>;
  counterRelease(key: string): Promise<number>;
};

export interface RedisCounterOptions {
  url: string;
  /** REDIS_RECONNECT_MAX_DELAY_MS. */
  reconnectMaxDelayMs: number;
  logger: Pick<Logger, 'warn' | 'info'>;
  /**
   * Times the second Redis is left alone after a failed command. Real time by default, and on
   * purpose not the app's clock: it backs off from a real connection whose timeouts and
   * reconnects run in real time (a test's frozen clock would keep Redis skipped for ever).
   */
  backoffClock?: Clock;
  /** Reports outages once per process (with the queue's connection); without it, this store logs its own. */
  notice?: OutageReporter;
}

/** Every counter's Redis key starts with this. */
const PREFIX = 'tessera:rl:';

/**
 * Counters shared by every instance through Redis, falling back to this
 * process's own counters (the same limits) whenever Redis does not answer:
 * limits stay on ("fail closed") and no request waits for a dead Redis. Its
 * own connection: no offline queue, one try per command, a short command
 * timeout, reconnecting in the background (at most REDIS_RECONNECT_MAX_DELAY_MS apart); once Redis is back, it
 * is used again. After a command fails, Redis is left alone for a second.
 *
 * Reservations (`take`, `reserve`) also write what Redis answered into this
 * process's counters (a local floor): a delay this process saw in force, or
 * started, is still in force here when Redis stops answering mid-delay.
 */
export function createRedisCounterStore(opts: RedisCounterOptions, fallback: CounterStore): CounterStore & { ready(timeoutMs: number): Promise<boolean> } {
  const redis = new Redis(opts.url, {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    // Bounds one command: a Redis that hangs is noticed within this, not after minutes.
    commandTimeout: 250,
    connectTimeout: 1000,
    retryStrategy: reconnectWithin(opts.reconnectMaxDelayMs),
    // A rate limiter must not make the app wait for Redis at start either.
    lazyConnect: false,
  }) as Scripted;
  redis.defineCommand('counterHit', { numberOfKeys: 1, lua: HIT });
  redis.defineCommand('counterPeek', { numberOfKeys: 1, lua: PEEK });
  redis.defineCommand('counterTake', { numberOfKeys: 1, lua: TAKE });
  redis.defineCommand('counterReserve', { numberOfKeys: 2, lua: RESERVE });
  redis.defineCommand('counterRelease', { numberOfKeys: 1, lua: RELEASE });

  let down = false;
  // After a failed command, this process counts alone for a second: a hanging Redis costs one timeout per second, not one per request.
  let skipUntil = 0;
  const backoffClock = opts.backoffClock ?? systemClock;
  const failed = (err: unknown) => {
    skipUntil = backoffClock.now().getTime() + 1000;
    if (opts.notice) opts.notice.down(err);
    else if (!down) opts.logger.warn({ err: (err as Error).message }, 'rate limits: Redis unreachable; counting per process until it is back');
    down = true;
  };
  redis.on('error', failed);
  redis.on('ready', () => {
    if (opts.notice) opts.notice.up();
    else if (down) opts.logger.info('rate limits: Redis is back; counters are shared again');
    down = false;
  });

  const ms = (v: number) => Math.max(1, Math.round(v));

  /** Redis when connected, else (or when the command fails) this process's counters. */
  async function either<T>(viaRedis: () => Promise<T>, local: () => Promise<T>): Promise<T> {
    if (redis.status !== 'ready' || backoffClock.now().getTime() < skipUntil) return local();
    try {
      return await viaRedis();
    } catch (err) {
      failed(err);
      return local();
    }
  }

  return {
    hit: (key, windowMs, o) =>
      either(
        async () => {
          const [count, ttlMs] = await redis.counterHit(PREFIX + key, Math.max(1, Math.round(windowMs)), o?.slide ? '1' : '0');
          return { count: Number(count), ttlMs: Number(ttlMs) };
        },
        () => fallback.hit(key, windowMs, o),
      ),
    peek: (key) =>
      either(
        async () => {
          const [count, ttlMs] = await redis.counterPeek(PREFIX + key);
          return { count: Number(count), ttlMs: Number(ttlMs) };
        },
        () => fallback.peek(key),
      ),
    take: (key, windowMs, max) =>
      either(
        async () => {
          const [taken, count, ttlMs] = (await redis.counterTake(PREFIX + key, ms(windowMs), max)).map(Number) as [number, number, number];
          // The local floor: what Redis last said survives an outage in this process.
          if (count > 0 && ttlMs > 0) await fallback.set(key, count, ttlMs);
          return { taken: taken === 1, count, ttlMs };
        },
        () => fallback.take(key, windowMs, max),
      ),
    reserve: (key, blockKey, windowMs, schedule) =>
      either(
        async () => {
          const [taken, count, ttlMs, delayMs] = (
            await redis.counterReserve(PREFIX + key, PREFIX + blockKey, ms(windowMs), schedule.free, ms(schedule.baseMs), ms(schedule.maxMs))
          ).map(Number) as [number, number, number, number];
          // The local floor: a delay (and the count that earned it) Redis decided or reported stays in force here if Redis goes away.
          if (taken === 1) {
            await fallback.set(key, count, ttlMs);
            if (delayMs > 0) await fallback.set(blockKey, 1, delayMs);
          } else {
            await fallback.set(blockKey, 1, ttlMs);
          }
          return { taken: taken === 1, count, ttlMs, delayMs };
        },
        () => fallback.reserve(key, blockKey, windowMs, schedule),
      ),
    release: async (key) => {
      // Both, like delete: the floor must not keep a reservation Redis gave back.
      await fallback.release(key);
      await either(
        async () => void (await redis.counterRelease(PREFIX + key)),
        async () => undefined,
      );
    },
    set: (key, value, ttlMs) =>
      either(
        async () => {
          await redis.set(PREFIX + key, String(value), 'PX', Math.max(1, Math.round(ttlMs)));
        },
        () => fallback.set(key, value, ttlMs),
      ),
    delete: async (...keys) => {
      // Both: a counter may have been written to either while Redis came and went.
      await fallback.delete(...keys);
      await either(
        async () => {
          if (keys.length) await redis.del(...keys.map((k) => PREFIX + k));
        },
        async () => undefined,
      );
    },
    /** Waits (at most `timeoutMs`) for the first connection; false when Redis is not there yet. */
    ready: (timeoutMs) =>
      redis.status === 'ready'
        ? Promise.resolve(true)
        : new Promise((resolve) => {
            const timer = setTimeout(() => {
              redis.off('ready', onReady);
              resolve(false);
            }, timeoutMs);
            const onReady = () => {
              clearTimeout(timer);
              resolve(true);
            };
            redis.once('ready', onReady);
          }),
    close: async () => {
      redis.disconnect();
      await fallback.close();
    },
  };
}
