import { createHash } from 'node:crypto';
import { AppError } from '../../errors.js';
import type { RateLimitConfig } from '../../config.js';
import type { CounterStore } from '../../infra/counter-store.js';
import { ipKey } from '../../infra/ip-key.js';

export type BruteForceSettings = RateLimitConfig['bruteForce'];

/** What one counted failure started: a delay for the address, and/or the throttle of the IP. */
export interface FailureOutcome {
  failures: number;
  /** The delay this failure started for the address (0: none yet). */
  delaySeconds: number;
  /** This failure is the one that throttles the IP. */
  ipThrottled: boolean;
  ipFailures: number;
}

export type SignInGuard = ReturnType<typeof createSignInGuard>;

/** Email addresses never become keys as they are: Redis and memory see a digest. */
const digest = (email: string) => createHash('sha256').update(email).digest('base64url').slice(0, 32);

/**
 * Brute-force protection of password sign-ins (ASVS 6.3.1), in the style of
 * Keycloak's: failed passwords per normalised address (known or not, so it
 * reveals nothing) buy growing delays after the free attempts — base, 2×base,
 * 4×base … up to the maximum — during which every attempt, the right password
 * included, is refused before any hashing. Counters are forgotten a window
 * after the last failure and cleared by a successful sign-in or a password
 * reset: no permanent lockout anyone can cause. Failed sign-ins per IP, over
 * all addresses, throttle that IP (password spraying).
 */
export function createSignInGuard(deps: { store: CounterStore; settings: BruteForceSettings; throttled?: (limit: string) => void }) {
  const { store, settings } = deps;
  const failKey = (email: string) => `bf:fail:${digest(email)}`;
  const waitKey = (email: string) => `bf:wait:${digest(email)}`;
  const ipFailKey = (ip: string | null) => `bf:ip:${ipKey(ip)}`;
  const refuse = (limit: string, ttlMs: number): never => {
    deps.throttled?.(limit);
    throw new AppError('sign_in_throttled', undefined, undefined, Math.max(1, Math.ceil(ttlMs / 1000)));
  };

  return {
    enabled: settings.enabled,

    /** Throws 429 `sign_in_throttled` (Retry-After) while the address is delayed or the IP throttled. */
    async check(email: string, ip: string | null): Promise<void> {
      if (!settings.enabled) return;
      const ipRate = settings.ipFailures;
      const [wait, fromIp] = await Promise.all([store.peek(waitKey(email)), ipRate ? store.peek(ipFailKey(ip)) : null]);
      if (wait.ttlMs > 0) refuse('sign_in_delay', wait.ttlMs);
      if (ipRate && fromIp && fromIp.count >= ipRate.max && fromIp.ttlMs > 0) refuse('sign_in_failures_ip', fromIp.ttlMs);
    },

    /** Counts a wrong password (or unknown address) for the address and the IP. */
    async failed(email: string, ip: string | null): Promise<FailureOutcome> {
      if (!settings.enabled) return { failures: 0, delaySeconds: 0, ipThrottled: false, ipFailures: 0 };
      const ipRate = settings.ipFailures;
      const [account, fromIp] = await Promise.all([
        store.hit(failKey(email), settings.windowSeconds * 1000, { slide: true }),
        ipRate ? store.hit(ipFailKey(ip), ipRate.windowSeconds * 1000) : null,
      ]);
      const over = account.count - settings.freeAttempts;
      const delaySeconds = over >= 0 ? Math.min(settings.maxDelaySeconds, settings.baseDelaySeconds * 2 ** Math.min(over, 30)) : 0;
      if (delaySeconds > 0) await store.set(waitKey(email), 1, delaySeconds * 1000);
      return { failures: account.count, delaySeconds, ipThrottled: Boolean(ipRate && fromIp?.count === ipRate.max), ipFailures: fromIp?.count ?? 0 };
    },

    /** Forgets the address's failures and delay (a right password, a password reset). The IP's count stays. */
    async reset(email: string): Promise<void> {
      if (!settings.enabled) return;
      await store.delete(failKey(email), waitKey(email));
    },
  };
}
