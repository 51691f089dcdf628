import type { Logger } from 'pino';
import type { RedisConfig } from '../../config/index.js';
import { createRedisBroadcast } from '../../infra/pubsub.js';
import { createSessionCache, noSessionCache, type SessionCache } from './session-cache.js';

/** The Redis channel of session invalidations (one per Redis; every instance of the service listens). */
export const SESSION_CHANNEL = 'tessera:sessions:invalidate';

export interface SessionCacheHandle {
  cache: SessionCache;
  /** Whether sessions are cached at all (REDIS_URL and SESSION_CACHE_TTL_MS > 0). */
  enabled: boolean;
  /** Waits (briefly) for the subscription; until it is confirmed, sessions are read from the database. */
  start(): Promise<void>;
  stop(): Promise<void>;
}

/** The session cache of this process: on with Redis and SESSION_CACHE_TTL_MS > 0; `noSessionCache` otherwise. */
export function sessionCacheFor(config: RedisConfig, logger: Pick<Logger, 'warn' | 'info'>): SessionCacheHandle {
  if (!config.redisUrl || config.sessionCacheTtlMs <= 0)
    return { cache: noSessionCache, enabled: false, start: async () => undefined, stop: async () => undefined };
  const broadcast = createRedisBroadcast({ url: config.redisUrl, channel: SESSION_CHANNEL, reconnectMaxDelayMs: config.redisReconnectMaxDelayMs, logger });
  return {
    cache: createSessionCache({ ttlMs: config.sessionCacheTtlMs, broadcast }),
    enabled: true,
    start: async () => void (await broadcast.ready(1000)),
    stop: () => broadcast.close(),
  };
}
