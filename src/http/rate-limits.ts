import rateLimit from '@fastify/rate-limit';
import type { FastifyInstance, FastifyReply, FastifyRequest, RouteOptions } from 'fastify';
import type { Counter } from 'prom-client';
import {
  ACCOUNT_FIELDS,
  KNOWN_CLIENT_SKIPS,
  RATE_LIMIT_RULES,
  SIGNED_IN_RATE_LIMIT_RULES,
  type Rate,
  type RateLimitName,
  type RequestBody,
} from '../config/index.js';
import { AppError } from '../errors.js';
import { ErrorBody, OAuthErrorBody } from './schemas.js';
import { keyDigest, type CounterStore } from '../infra/counter-store.js';
import { ipKey } from '../infra/ip-key.js';

type Body = RequestBody;
const field = (body: Body, name: string): string => {
  const v = body?.[name];
  return typeof v === 'string' ? v : '';
};

// What the limits are (names, values, which routes count against which, whose key) is defined in
// config/limits.ts; this file only applies them to requests.

/** The submitted address a request's per-account limits count (normalised by the `accountKey` option). */
const submittedAccount = (request: FastifyRequest): string =>
  field(request.body as Body, ACCOUNT_FIELDS[`${request.method} ${request.routeOptions.url}`] ?? 'email');

const SIGNED_IN_LIMITS = new Set(Object.values(SIGNED_IN_RATE_LIMIT_RULES).flat());

/** @fastify/rate-limit's store interface over our counters (shared through Redis, per process as the fallback). */
function storeClass(counters: CounterStore) {
  return class CounterStoreAdapter {
    incr(key: string, cb: (err: Error | null, result?: { current: number; ttl: number }) => void, timeWindow: number): void {
      counters.hit(key, timeWindow).then(
        (r) => cb(null, { current: r.count, ttl: r.ttlMs }),
        (err: Error) => cb(err),
      );
    }
    read(key: string, cb: (err: Error | null, result?: { current: number; ttl: number }) => void): void {
      counters.peek(key).then(
        (r) => cb(null, { current: r.count, ttl: r.ttlMs }),
        (err: Error) => cb(err),
      );
    }
    child(): CounterStoreAdapter {
      return this;
    }
  };
}

export interface RateLimitOptions {
  store: CounterStore;
  limits: Record<RateLimitName, Rate | null>;
  /** `tessera_rate_limited_total{limit}`. */
  rateLimited: Pick<Counter<'limit'>, 'inc'>;
  /** The account an address names (the accounts feature's normalisation): one counter per account, however it is spelled. */
  accountKey: (submitted: string) => string;
  /** The signed-in user of a request that passed its route's guards (the per-account limits of signed-in routes). */
  userOf: (request: FastifyRequest) => string;
  /** Whether `ip` is a known client of the address (brute-force protection on); none: every client counts. */
  isKnownClient?: (email: string, ip: string | null) => Promise<boolean>;
}

/**
 * Puts the request limits of RATE_LIMIT_RULES in front of their routes (call
 * before the routes are registered). Every limit of a request is counted, the
 * first one over its maximum answers 429 `rate_limited` with `Retry-After`;
 * `RateLimit-Limit/Remaining/Reset` describe the tightest limit. Counting
 * happens after body validation (per-account keys need the body).
 *
 * @fastify/rate-limit provides the counting; its per-route hooks are not used
 * because they share one "already limited" flag per request, so a route could
 * have only one limit (IP *or* account). Each limit is a `createRateLimit`
 * checker instead, all over one store.
 */
export async function registerRateLimits(app: FastifyInstance, opts: RateLimitOptions): Promise<void> {
  await app.register(rateLimit, { global: false, store: storeClass(opts.store) });
  const accountOf = (request: FastifyRequest): string => opts.accountKey(submittedAccount(request));
  /** The counter key of one limit for one request; emails only as a digest. */
  const keyOf = (name: RateLimitName, request: FastifyRequest): string => {
    if (SIGNED_IN_LIMITS.has(name)) return `${name}:${opts.userOf(request)}`;
    if (!name.endsWith('_account')) return `${name}:${ipKey(request.ip)}`;
    return `${name}:${keyDigest(accountOf(request))}`;
  };
  const checks = new Map<RateLimitName, ReturnType<FastifyInstance['createRateLimit']>>();
  for (const [name, rate] of Object.entries(opts.limits) as [RateLimitName, Rate | null][]) {
    if (rate) checks.set(name, app.createRateLimit({ max: rate.max, timeWindow: rate.windowSeconds * 1000, keyGenerator: (request) => keyOf(name, request) }));
  }

  const setHeaders = (reply: FastifyReply, max: number, remaining: number, resetSeconds: number) =>
    reply.header('ratelimit-limit', String(max)).header('ratelimit-remaining', String(remaining)).header('ratelimit-reset', String(resetSeconds));

  const limit = (rule: (body: Body) => RateLimitName[]) =>
    async function rateLimits(request: FastifyRequest, reply: FastifyReply): Promise<void> {
      let tightest: { max: number; remaining: number; ttlInSeconds: number } | null = null;
      for (const name of rule(request.body as Body)) {
        const check = checks.get(name);
        if (!check) continue;
        if (KNOWN_CLIENT_SKIPS.has(name) && opts.isKnownClient && (await opts.isKnownClient(accountOf(request), request.ip))) continue;
        const r = await check(request);
        if (r.isAllowed) continue;
        if (r.isExceeded) {
          opts.rateLimited.inc({ limit: name });
          const wait = Math.max(1, r.ttlInSeconds);
          setHeaders(reply, r.max, 0, wait);
          throw new AppError('rate_limited', undefined, undefined, wait);
        }
        if (!tightest || r.remaining < tightest.remaining) tightest = r;
      }
      if (tightest) setHeaders(reply, tightest.max, tightest.remaining, Math.max(1, tightest.ttlInSeconds));
    };

  app.addHook('onRoute', (route: RouteOptions) => {
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    const rule = methods.map((m) => RATE_LIMIT_RULES[`${m} ${route.url}`]).find(Boolean);
    const signedIn = methods.map((m) => SIGNED_IN_RATE_LIMIT_RULES[`${m} ${route.url}`]).find(Boolean);
    if (!rule && !signedIn) return;
    const existing = route.preHandler ? (Array.isArray(route.preHandler) ? route.preHandler : [route.preHandler]) : [];
    // First: a limited request is refused before authentication or any other work;
    // a per-account limit of a signed-in route right after its guards (it needs the verified user).
    route.preHandler = [...(rule ? [limit(rule)] : []), ...existing, ...(signedIn ? [limit(() => signedIn)] : [])] as RouteOptions['preHandler'];
    // The OpenAPI document shows the 429 (in the body shape of the route's other errors).
    if (route.schema?.response && typeof route.schema.response === 'object') {
      const oauth = route.config?.oauthErrors === true;
      const body = {
        ...(oauth ? OAuthErrorBody : ErrorBody),
        description: 'Too many requests (`rate_limited`, or `sign_in_throttled` for a delayed sign-in); wait `Retry-After` seconds',
      };
      route.schema = { ...route.schema, response: { ...(route.schema.response as Record<string, unknown>), 429: body } };
    }
  });
}
