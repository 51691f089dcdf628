import { createHash } from 'node:crypto';
import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { Clock } from './clock.js';
import { reconnectWithin } from './redis-reconnect.js';

/** A counter's value and the milliseconds until it expires (0 when absent). */
export interface Count {
  count: number;
  ttlMs: number;
}

/**
 * Expiring counters for rate limits and brute-force delays. Keys are opaque
 * strings; the caller hashes anything personal before it becomes a key.
 */
export interface CounterStore {
  /**
   * Adds one to `key`. A new key lives `windowMs`; with `slide`, every hit
   * restarts that time (failures forgotten `windowMs` after the last one).
   */
  hit(key: string, windowMs: number, opts?: { slide?: boolean }): Promise<Count>;
  peek(key: string): Promise<Count>;
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
  return {
    async hit(key, windowMs, opts) {
      const e = live(key);
      if (!e) {
        makeRoom();
        entries.set(key, { count: 1, expiresAt: now() + windowMs });
        return { count: 1, ttlMs: windowMs };
      }
      e.count += 1;
      if (opts?.slide) e.expiresAt = now() + windowMs;
      return { count: e.count, ttlMs: e.expiresAt - now() };
    },
    async peek(key) {
      const e = live(key);
      return e ? { count: e.count, ttlMs: e.expiresAt - now() } : NO_COUNT;
    },
    async set(key, value, ttlMs) {
      if (!live(key)) makeRoom();
      entries.set(key, { count: value, expiresAt: now() + ttlMs });
    },
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

type Scripted = Redis & {
  counterHit(key: string, windowMs: number, slide: string): Promise<[number, number]>;
  counterPeek(key: string): Promise<[number, number]>;
};

export interface RedisCounterOptions {
  url: string;
  /** REDIS_RECONNECT_MAX_DELAY_MS. */
  reconnectMaxDelayMs: number;
  logger: Pick<Logger, 'warn' | 'info'>;
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

  let down = false;
  // After a failed command, this process counts alone for a second: a hanging Redis costs one timeout per second, not one per request.
  let skipUntil = 0;
  const failed = (err: unknown) => {
    skipUntil = Date.now() + 1000;
    if (!down) opts.logger.warn({ err: (err as Error).message }, 'rate limits: Redis unreachable; counting per process until it is back');
    down = true;
  };
  redis.on('error', failed);
  redis.on('ready', () => {
    if (down) opts.logger.info('rate limits: Redis is back; counters are shared again');
    down = false;
  });

  /** Redis when connected, else (or when the command fails) this process's counters. */
  async function either<T>(viaRedis: () => Promise<T>, local: () => Promise<T>): Promise<T> {
    if (redis.status !== 'ready' || Date.now() < skipUntil) return local();
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
