import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { reconnectWithin } from './redis-reconnect.js';

/**
 * Messages to every instance of the service (all processes of all hosts on one
 * Redis), for caches that must forget something at once. `live` tells whether
 * this process would receive a message published now; a cache must not serve
 * anything while it is false.
 */
export interface Broadcast {
  /** True while the subscription is confirmed: this process's own heartbeat came back through Redis within `heartbeatMs × 3`. */
  readonly live: boolean;
  /** Sends `message` to every subscribed process (this one included); never throws, never waits for Redis. */
  publish(message: string): void;
  /** `fn` runs for every message (not the heartbeats), and with `null` whenever `live` changes. */
  subscribe(fn: (message: string | null) => void): void;
  /** Resolves true once live, false after `timeoutMs`. */
  ready(timeoutMs: number): Promise<boolean>;
  close(): Promise<void>;
}

export interface RedisBroadcastOptions {
  url: string;
  channel: string;
  reconnectMaxDelayMs: number;
  logger: Pick<Logger, 'warn' | 'info'>;
  /** How often this process sends itself a heartbeat through Redis (default 500 ms). */
  heartbeatMs?: number;
}

const HEARTBEAT = '\u0000hb:';

/**
 * Redis pub/sub on two connections (a subscribed connection can do nothing
 * else). Liveness is proven, not assumed: every `heartbeatMs` the process
 * publishes a heartbeat with its own nonce and counts as live only while those
 * come back; a closed or hanging connection, a lost subscription (a Redis
 * restart), or a publisher that cannot publish all end liveness within
 * `3 × heartbeatMs`, a closed subscriber connection at once.
 */
export function createRedisBroadcast(opts: RedisBroadcastOptions): Broadcast {
  const heartbeatMs = opts.heartbeatMs ?? 500;
  const common = {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    connectTimeout: 1000,
    retryStrategy: reconnectWithin(opts.reconnectMaxDelayMs),
    // Resubscribing is done on 'ready' below, where it is known to have succeeded.
    autoResubscribe: false,
  };
  const sub = new Redis(opts.url, common);
  const pub = new Redis(opts.url, { ...common, commandTimeout: 250 });
  const nonce = randomBytes(8).toString('hex');
  const listeners: ((message: string | null) => void)[] = [];
  let subscribed = false;
  let lastBeat = 0;
  let wasLive = false;
  let closed = false;
  let warned = false;

  const isLive = () => subscribed && Date.now() - lastBeat < 3 * heartbeatMs;
  const notify = (message: string | null) => {
    for (const fn of listeners) fn(message);
  };
  /** Tells the listeners when liveness changed (they drop what they hold). */
  const check = () => {
    const now = isLive();
    if (now === wasLive) return;
    wasLive = now;
    if (now) {
      if (warned) opts.logger.info({ channel: opts.channel }, 'broadcast: Redis subscription confirmed again');
      warned = false;
    } else if (!closed && !warned) {
      warned = true;
      opts.logger.warn({ channel: opts.channel }, 'broadcast: Redis subscription not confirmed; caches that depend on it are bypassed');
    }
    notify(null);
  };

  const beat = () => {
    if (pub.status === 'ready') pub.publish(opts.channel, HEARTBEAT + nonce).catch(() => undefined);
    check();
  };
  const timer = setInterval(beat, heartbeatMs);
  timer.unref();

  sub.on('error', () => undefined);
  pub.on('error', () => undefined);
  sub.on('close', () => {
    subscribed = false;
    check();
  });
  sub.on('ready', () => {
    sub.subscribe(opts.channel).then(
      () => {
        subscribed = true;
        beat();
      },
      () => undefined,
    );
  });
  pub.on('ready', beat);
  sub.on('message', (_channel: string, message: string) => {
    if (message.startsWith(HEARTBEAT)) {
      if (message.slice(HEARTBEAT.length) === nonce) {
        lastBeat = Date.now();
        check();
      }
      return;
    }
    notify(message);
  });

  return {
    get live() {
      return isLive();
    },
    publish(message) {
      if (pub.status !== 'ready') return;
      pub.publish(opts.channel, message).catch(() => undefined);
    },
    subscribe(fn) {
      listeners.push(fn);
    },
    ready: async (timeoutMs) => {
      const until = Date.now() + timeoutMs;
      while (!isLive()) {
        if (Date.now() >= until || closed) return false;
        await new Promise((r) => setTimeout(r, 20));
      }
      check();
      return true;
    },
    close: async () => {
      closed = true;
      clearInterval(timer);
      subscribed = false;
      check();
      sub.disconnect();
      pub.disconnect();
    },
  };
}
