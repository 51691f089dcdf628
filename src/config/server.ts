/**
 * The process and its HTTP server: environment, logging, listening address,
 * public URL, proxies, request bounds, CORS, shutdown, the cluster's crash
 * limit, /metrics, and the Redis connection.
 */
import { isIP } from 'node:net';
import path from 'node:path';
import { list, type Rate, type Reader } from './reader.js';

/** `false` = trust nobody (socket address), `true` = trust every hop, number = hops, string[] = addresses/CIDRs. */
export type TrustProxy = boolean | number | string[];

export interface ServerConfig {
  env: 'development' | 'production' | 'test';
  debug: boolean;
  logLevel: string;
  host: string;
  port: number;
  workers: number;
  publicUrl: string;
  dataDir: string;
  trustProxy: TrustProxy;
  bodyLimit: number;
  /** MAX_HEADER_BYTES: Node's maxHeaderSize, all request headers together; a larger head gets 431 before any route runs. */
  maxHeaderBytes: number;
  /** CORS_ORIGINS: the exact origins (scheme://host[:port]) browsers may call the API from; [] = no CORS headers at all. */
  corsOrigins: string[];
  /** How long SIGTERM/SIGINT waits for in-flight requests (or the worker's jobs) before giving up. */
  shutdownTimeoutMs: number;
  /** REQUEST_DEADLINE_MS: a request not answered by then gets 503 service_unavailable; its transaction, if not committing yet, is rolled back. */
  requestDeadlineMs: number;
  /** WORKER_CRASH_LIMIT: this many worker crashes within the window stop the cluster primary (exit 1); null = never give up. */
  workerCrashLimit: Rate | null;
  /** When set, GET /metrics needs `Authorization: Bearer <token>`. */
  metricsToken: string | null;
  /** METRICS_PUBLIC: production may serve /metrics without METRICS_TOKEN (a private network only). */
  metricsPublic: boolean;
}

export interface RedisConfig {
  /** REDIS_URL (or CELERY_BROKER_URL); null = the server drains the outbox itself. */
  redisUrl: string | null;
  /** Which of the two settings redisUrl came from (log lines name it). */
  redisUrlSetting: 'REDIS_URL' | 'CELERY_BROKER_URL';
  /** REDIS_RECONNECT_MAX_DELAY_MS: the longest wait between two attempts to reach Redis again (every connection). */
  redisReconnectMaxDelayMs: number;
  /** SESSION_CACHE_TTL_MS: how long a live session may be served from memory (needs Redis; 0 = off; docs/operations.md). */
  sessionCacheTtlMs: number;
}

export function serverConfig(r: Reader): ServerConfig {
  const nodeEnv = r.oneOf('NODE_ENV', ['development', 'production', 'test'] as const, 'development');
  const port = r.int('SERVER_PORT', 8000, 0, 65535);
  const publicUrl = (r.url('PUBLIC_URL', `http://localhost:${port}`, ['http:', 'https:']) ?? '').replace(/\/+$/, '');
  const dataDir = path.resolve(r.string('DATA_DIR', './data'));
  const debug = r.bool('DEBUG', false);
  const workers = r.int('WORKERS', 1, 1, 64);
  return {
    env: nodeEnv,
    debug,
    logLevel: r.oneOf('LOG_LEVEL', ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const, debug ? 'debug' : 'info'),
    // Development listens on loopback only, like the original (SERVER=127.0.0.1): set SERVER=0.0.0.0
    // to be reached from other machines or from outside a container. Production keeps every interface.
    host: r.string('SERVER', nodeEnv === 'production' ? '0.0.0.0' : '127.0.0.1'),
    port,
    workers,
    publicUrl,
    dataDir,
    trustProxy: parseTrustProxy(r),
    bodyLimit: r.int('BODY_LIMIT_BYTES', 65536, 1024, 10 * 1024 * 1024),
    maxHeaderBytes: r.int('MAX_HEADER_BYTES', 16384, 1024, 1024 * 1024),
    corsOrigins: parseCorsOrigins(r),
    shutdownTimeoutMs: r.duration('SHUTDOWN_TIMEOUT', 10, 1, 3600) * 1000,
    requestDeadlineMs: r.int('REQUEST_DEADLINE_MS', 10000, 100, 600000),
    workerCrashLimit: r.rate('WORKER_CRASH_LIMIT', '5/1m'),
    metricsToken: r.raw('METRICS_TOKEN') ?? null,
    metricsPublic: r.bool('METRICS_PUBLIC', false),
  };
}

export function redisConfig(r: Reader): RedisConfig {
  const redisUrl = r.url('REDIS_URL', null, ['redis:', 'rediss:']);
  return {
    redisUrl: redisUrl ?? r.url('CELERY_BROKER_URL', null, ['redis:', 'rediss:']),
    redisUrlSetting: redisUrl ? 'REDIS_URL' : 'CELERY_BROKER_URL',
    redisReconnectMaxDelayMs: r.int('REDIS_RECONNECT_MAX_DELAY_MS', 500, 10, 60000),
    sessionCacheTtlMs: r.int('SESSION_CACHE_TTL_MS', 1000, 0, 2000),
  };
}

/** What Fastify's trustProxy (proxy-addr) accepts: an IP, an IP/prefix, or loopback/linklocal/uniquelocal. */
function isProxyAddress(s: string): boolean {
  if (['loopback', 'linklocal', 'uniquelocal'].includes(s)) return true;
  const [address = '', prefix, ...rest] = s.split('/');
  const family = isIP(address);
  if (family === 0 || rest.length > 0) return false;
  return prefix === undefined || (/^\d{1,3}$/.test(prefix) && Number(prefix) <= (family === 4 ? 32 : 128));
}

function parseTrustProxy(r: Reader): TrustProxy {
  const v = r.raw('TRUST_PROXY');
  if (v === undefined) return false;
  const lower = v.toLowerCase();
  if (['false', '0', 'no', 'off'].includes(lower)) return false;
  if (['true', 'yes', 'on'].includes(lower)) return true;
  if (/^\d+$/.test(v)) return Number(v);
  const proxies = list(v);
  if (!proxies.every(isProxyAddress)) r.problems.push(`TRUST_PROXY: expected true, false, a hop count or a list of addresses/CIDRs, got "${v}"`);
  return proxies;
}

/** Exact origins only: what a browser sends in `Origin` (no path, no default port, lower-case host); `*` is refused. */
function parseCorsOrigins(r: Reader): string[] {
  const origins = list(r.raw('CORS_ORIGINS'));
  for (const o of origins) {
    let origin: string | null = null;
    try {
      const u = new URL(o);
      if (u.protocol === 'http:' || u.protocol === 'https:') origin = u.origin;
    } catch {
      // not a URL: reported just below as not an origin
      origin = null;
    }
    if (origin !== o)
      r.problems.push(
        `CORS_ORIGINS: "${o}" is not an origin; list exact origins like https://app.example.com or http://localhost:3000 (scheme://host[:port], lower-case, no path or trailing slash; "*" is not allowed)`,
      );
  }
  return origins;
}
