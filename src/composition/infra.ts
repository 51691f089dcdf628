import type { Logger } from 'pino';
import type { Config } from '../config/index.js';
import { systemClock, type Clock } from '../infra/clock.js';
import { createMemoryCounterStore, createRedisCounterStore, type CounterStore } from '../infra/counter-store.js';
import type { DatabaseHandle } from '../infra/db/client.js';
import type { KeyRing } from '../infra/keys.js';
import { createLogger } from '../infra/logger.js';
import { redisOutageNotice, type OutageNotice } from '../infra/outage-notice.js';
import { createBcryptHasher, type PasswordHasher } from '../infra/password-hasher.js';
import { sessionCacheFor, type SessionCacheHandle } from '../features/sessions/session-cache-wiring.js';

/**
 * The outside systems the services run on. The database and the keys are opened
 * by the entry point (runtime.ts: main, cli, worker) and closed by it, last;
 * what `assembleInfra` creates here it also closes (`close`), in this order:
 * the counters' Redis connection, then the hashing threads.
 */
export interface Infra {
  database: DatabaseHandle;
  keys: KeyRing;
  /** Encrypts TOTP secrets (MFA_ENCRYPTION_KEY, see runtime.ts loadMfaKey). */
  mfaKey: Buffer;
  clock: Clock;
  logger: Logger;
  hasher: PasswordHasher;
  /** Rate-limit and brute-force counters (Redis when configured); null when both are off, and in the CLI. */
  counters: Counters | null;
  /** One warning for a Redis outage however many connections notice it (server only; null without REDIS_URL). */
  redisNotice: OutageNotice | null;
  /** Live sessions served from memory for SESSION_CACHE_TTL_MS, invalidated across instances through Redis (server with REDIS_URL; off otherwise). */
  sessionCache: SessionCacheHandle;
  /** Closes what was created here (not the database, not the keys). */
  close(): Promise<void>;
}

export interface Counters {
  store: CounterStore;
  /** Waits (bounded) for the shared store to answer, so the first requests are counted in Redis. */
  ready(): Promise<void>;
}

export interface InfraOptions {
  database: DatabaseHandle;
  keys: KeyRing;
  mfaKey: Buffer;
  clock?: Clock;
  /** A hasher the caller owns (and closes); `assembleInfra` makes and closes its own otherwise. */
  hasher?: PasswordHasher;
  /** Where the JSON log goes (tests read it); stdout otherwise. */
  logStream?: DestinationStreamLike;
  logger?: Logger;
  /** 'server': bcrypt threads started now and the counters of the limits; 'cli': a hashing thread made at the first hash, no counters, no Redis. */
  role: 'server' | 'cli';
}

type DestinationStreamLike = Parameters<typeof createLogger>[1];

/** bcrypt on BCRYPT_CONCURRENCY threads, started now (the server: the first sign-ins must not wait for threads). */
export function createHasher(config: Config): PasswordHasher {
  const { bcryptRounds, bcryptConcurrency, bcryptMaxQueue, bcryptMaxWaitMs, bcryptNice } = config.passwords;
  return createBcryptHasher(bcryptRounds, bcryptConcurrency, { maxQueue: bcryptMaxQueue, maxWaitMs: bcryptMaxWaitMs, nice: bcryptNice });
}

/**
 * A hasher whose one thread starts at the first hash (the CLI: most commands
 * hash nothing, `users create` hashes once). Closing it before any use closes nothing.
 */
export function createLazyHasher(config: Config): PasswordHasher {
  let made: PasswordHasher | null = null;
  const hasher = () => (made ??= createBcryptHasher(config.passwords.bcryptRounds, 1));
  return {
    hash: (password) => hasher().hash(password),
    verify: (password, hash) => hasher().verify(password, hash),
    verifyDummy: (password) => hasher().verifyDummy(password),
    needsRehash: (hash) => hasher().needsRehash(hash),
    get queueDepth() {
      return made?.queueDepth ?? 0;
    },
    close: async () => {
      await made?.close();
    },
  };
}

/**
 * The counters of the rate limits and the brute-force protection: shared
 * through Redis when configured, this process's own otherwise (and whenever
 * Redis does not answer: the limits stay on). Null when both are off.
 */
export function createCounters(
  config: Config,
  clock: Clock,
  logger: Logger,
  redisNotice: OutageNotice | null = null,
): (Counters & { close(): Promise<void> }) | null {
  const limits = config.rateLimits;
  if (!limits.enabled && !limits.bruteForce.enabled) return null;
  const local = createMemoryCounterStore(clock);
  const shared = config.redisUrl
    ? createRedisCounterStore(
        { url: config.redisUrl, reconnectMaxDelayMs: config.redisReconnectMaxDelayMs, logger, ...(redisNotice ? { notice: redisNotice.connection() } : {}) },
        local,
      )
    : null;
  const store = shared ?? local;
  return {
    store,
    ready: async () => void (await shared?.ready(2000)),
    close: () => store.close(),
  };
}

/** The infrastructure of one process around an opened database and key ring. */
export function assembleInfra(config: Config, opts: InfraOptions): Infra {
  const clock = opts.clock ?? systemClock;
  const logger = opts.logger ?? createLogger(config, opts.logStream);
  const ownHasher = opts.hasher ? null : opts.role === 'server' ? createHasher(config) : createLazyHasher(config);
  const redisNotice = opts.role === 'server' ? serverRedisNotice(config, opts.database, logger) : null;
  const counters = opts.role === 'server' ? createCounters(config, clock, logger, redisNotice) : null;
  // The CLI has no Redis: what it revokes reaches the servers' caches within their bound (docs/operations.md, "Session cache").
  const sessionCache = sessionCacheFor(opts.role === 'server' ? config : { ...config, redisUrl: null }, logger);
  return {
    database: opts.database,
    keys: opts.keys,
    mfaKey: opts.mfaKey,
    clock,
    logger,
    hasher: opts.hasher ?? (ownHasher as PasswordHasher),
    counters,
    redisNotice,
    sessionCache,
    async close() {
      await sessionCache.stop();
      await counters?.close();
      await ownHasher?.close();
    },
  };
}

/** The server's Redis outage line says what still works meanwhile: its own counters, email waiting in the outbox. */
function serverRedisNotice(config: Config, database: DatabaseHandle, logger: Logger): OutageNotice | null {
  if (!config.redisUrl) return null;
  const limits = config.rateLimits;
  const countsInRedis = limits.enabled || limits.bruteForce.enabled;
  const queuesInRedis = database.kind === 'postgres';
  const stillWorks = [countsInRedis ? "rate limits use this process's counters" : '', queuesInRedis ? 'email waits in the outbox' : '']
    .filter(Boolean)
    .join(' and ');
  return redisOutageNotice({ url: config.redisUrl, setting: config.redisUrlSetting }, stillWorks, logger);
}
