import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { PasswordHasher } from './password-hasher.js';

/**
 * The application's Prometheus metrics, one registry per app (tests build many
 * apps in one process). Services get the narrow counters they feed; they never
 * see the registry or the HTTP layer.
 */
export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: 1 });
  return {
    registry,
    signIns: new Counter({
      name: 'tessera_sign_ins_total',
      // One reason for an unknown address and a wrong password: /metrics must not tell which addresses have accounts (the audit trail keeps the difference).
      help: 'Password sign-ins by result (success, failure, pending) and reason (ok, invalid_credentials, disabled, email_not_verified; pending/mfa_required: the password was right and a code is asked)',
      labelNames: ['result', 'reason'],
      registers: [registry],
    }),
    refreshReuse: new Counter({
      name: 'tessera_refresh_token_reuse_total',
      help: 'Replays of a spent refresh token outside the grace window (each revoked its session)',
      registers: [registry],
    }),
    rateLimited: new Counter({
      name: 'tessera_rate_limited_total',
      help: 'Requests refused with 429 by a limit: a request limit (sign_in_ip, sign_in_account, register_ip, …; RATE_LIMIT_*), sign_in_delay (an email address, or a known client of it, in its brute-force delay) or sign_in_failures_ip (an IP over BRUTE_FORCE_IP_FAILURES)',
      labelNames: ['limit'],
      registers: [registry],
    }),
    hashSeconds: new Histogram({
      name: 'tessera_password_hash_seconds',
      help: 'Time of a bcrypt operation (hash, verify: a dummy verify for an unknown address counts as verify), queueing for a hashing thread included',
      labelNames: ['op'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    }),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;

/** What the account and session services report. */
export interface ServiceMetrics {
  signIns: Pick<Counter<'result' | 'reason'>, 'inc'>;
  refreshReuse: Pick<Counter, 'inc'>;
}

/** A hasher that times every operation into `tessera_password_hash_seconds`. */
export function instrumentHasher(hasher: PasswordHasher, seconds: Metrics['hashSeconds']): PasswordHasher {
  const timed =
    <A extends unknown[], R>(op: string, fn: (...args: A) => Promise<R>) =>
    async (...args: A): Promise<R> => {
      const end = seconds.startTimer({ op });
      try {
        return await fn(...args);
      } finally {
        end();
      }
    };
  return {
    hash: timed('hash', (p: string) => hasher.hash(p)),
    verify: timed('verify', (p: string, h: string) => hasher.verify(p, h)),
    // Timed as `verify`: a separate label would count the sign-ins to unknown addresses.
    verifyDummy: timed('verify', (p: string) => hasher.verifyDummy(p)),
    needsRehash: (h) => hasher.needsRehash(h),
    get queueDepth() {
      return hasher.queueDepth;
    },
    close: () => hasher.close(),
  };
}
