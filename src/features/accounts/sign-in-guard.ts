import { AppError } from '../../errors.js';
import type { RateLimitConfig } from '../../config/index.js';
import { NO_COUNT, delayMsAfter, keyDigest, type CounterStore } from '../../infra/counter-store.js';
import { ipKey } from '../../infra/ip-key.js';

export type BruteForceSettings = RateLimitConfig['bruteForce'];

/**
 * A reserved attempt: counted as a failure before the password is checked.
 * If the password is wrong, this is what the failure started: a delay for the
 * address (or the known client), and/or the throttle of the IP.
 */
export interface FailureOutcome {
  /** Whose counter this failure went to: the address's (strangers) or a known client's own. */
  scope: 'account' | 'client';
  failures: number;
  /** The delay this failure started for that scope (0: none yet). */
  delaySeconds: number;
  /** This failure is the one that throttles the IP. */
  ipThrottled: boolean;
  ipFailures: number;
  /** The IP's failure counter holds this attempt (given back by `succeeded`). */
  ipReserved: boolean;
}

export type SignInGuard = ReturnType<typeof createSignInGuard>;

/**
 * The delay after `failures` counted failures: none for the free attempts, then
 * base, 2×base, 4×base … up to the maximum.
 */
export function delayAfter(failures: number, settings: Pick<BruteForceSettings, 'freeAttempts' | 'baseDelaySeconds' | 'maxDelaySeconds'>): number {
  return delayMsAfter(failures, scheduleOf(settings)) / 1000;
}

const scheduleOf = (settings: Pick<BruteForceSettings, 'freeAttempts' | 'baseDelaySeconds' | 'maxDelaySeconds'>) => ({
  free: settings.freeAttempts,
  baseMs: settings.baseDelaySeconds * 1000,
  maxMs: settings.maxDelaySeconds * 1000,
});

/**
 * Brute-force protection of password sign-ins (ASVS 6.3.1), in the style of
 * Keycloak's: failed passwords per normalised address (known or not, so it
 * reveals nothing) buy growing delays after the free attempts — base, 2×base,
 * 4×base … up to the maximum — during which every attempt, the right password
 * included, is refused before any hashing. Every attempt is reserved — counted
 * as a failure, in one atomic step with the delay check — before its password
 * is hashed, and given back when the password is right: parallel attempts
 * cannot all pass the check before any of them counts. Counters are forgotten a window
 * after the last failure and cleared by a successful sign-in or a password
 * reset. Failed sign-ins per IP, over all addresses, throttle that IP
 * (password spraying).
 *
 * Known clients (OWASP's "device cookies", keyed by client IP as `ipKey`
 * groups it, since the API has no cookies): the right password from an IP
 * makes that IP known for the address for `knownClientSeconds` after the last
 * success. Attempts from a known client are judged by that client's own
 * counter and delay, with the same free attempts and growth, and never by the
 * address's, so a stranger failing from elsewhere cannot keep the owner out:
 * no permanent lockout anyone can cause. Strangers (every other IP) share the
 * address's counter as before, so stuffing from many IPs is still slowed.
 *
 * Made only when BRUTE_FORCE_ENABLED (app.ts): without a guard, nothing is counted.
 */
export function createSignInGuard(deps: { store: CounterStore; settings: Omit<BruteForceSettings, 'enabled'>; throttled?: (limit: string) => void }) {
  const { store, settings } = deps;
  const failKey = (email: string) => `bf:fail:${keyDigest(email)}`;
  const waitKey = (email: string) => `bf:wait:${keyDigest(email)}`;
  const ipFailKey = (ip: string | null) => `bf:ip:${ipKey(ip)}`;
  /** One digest of (address, client): the store never links an account's address to an IP in clear. */
  const client = (email: string, ip: string | null) => (settings.knownClientSeconds > 0 && ip ? keyDigest(`${email}\n${ipKey(ip)}`) : null);
  const knownKey = (c: string) => `bf:known:${c}`;
  const clientFailKey = (c: string) => `bf:cfail:${c}`;
  const clientWaitKey = (c: string) => `bf:cwait:${c}`;
  /** The client's digest when it is a known client of the address, else null (a stranger). */
  const knownClient = async (email: string, ip: string | null) => {
    const c = client(email, ip);
    return c && (await store.peek(knownKey(c))).ttlMs > 0 ? c : null;
  };
  const refuse = (limit: string, ttlMs: number): never => {
    deps.throttled?.(limit);
    throw new AppError('sign_in_throttled', undefined, undefined, Math.max(1, Math.ceil(ttlMs / 1000)));
  };

  return {
    /**
     * A probe that counts nothing: throws 429 `sign_in_throttled` (Retry-After)
     * while the IP is throttled, or while the address is delayed (a stranger)
     * or the known client is delayed.
     */
    async check(email: string, ip: string | null): Promise<void> {
      const ipRate = settings.ipFailures;
      const c = client(email, ip);
      const [known, clientWait, wait, fromIp] = await Promise.all([
        c ? store.peek(knownKey(c)) : NO_COUNT,
        c ? store.peek(clientWaitKey(c)) : NO_COUNT,
        store.peek(waitKey(email)),
        ipRate ? store.peek(ipFailKey(ip)) : null,
      ]);
      const own = known.ttlMs > 0 ? clientWait : wait;
      if (own.ttlMs > 0) refuse('sign_in_delay', own.ttlMs);
      if (ipRate && fromIp && fromIp.count >= ipRate.max && fromIp.ttlMs > 0) refuse('sign_in_failures_ip', fromIp.ttlMs);
    },

    /** Whether this IP is a known client of the address (it is judged by its own counter). */
    isKnownClient: async (email: string, ip: string | null): Promise<boolean> => (await knownClient(email, ip)) !== null,

    /**
     * Reserves one attempt before its password is checked: throws 429
     * `sign_in_throttled` (Retry-After) while the IP is throttled or the
     * address (a stranger) or known client is delayed; otherwise counts it as
     * a failure of the address (or the known client's own counter) and of the
     * IP, starting the delay it earns. Hand the outcome to `succeeded` when
     * the password proves right; when it is wrong, nothing more is counted.
     */
    async reserve(email: string, ip: string | null): Promise<FailureOutcome> {
      const ipRate = settings.ipFailures;
      const c = await knownClient(email, ip);
      const [fails, wait] = c ? [clientFailKey(c), clientWaitKey(c)] : [failKey(email), waitKey(email)];
      // Cheap early answer during a delay (reserve below is what decides): the IP's count is not touched.
      const delayed = await store.peek(wait);
      if (delayed.ttlMs > 0) refuse('sign_in_delay', delayed.ttlMs);
      const fromIp = ipRate ? await store.take(ipFailKey(ip), ipRate.windowSeconds * 1000, ipRate.max) : null;
      if (fromIp && !fromIp.taken) refuse('sign_in_failures_ip', fromIp.ttlMs);
      const counted = await store.reserve(fails, wait, settings.windowSeconds * 1000, scheduleOf(settings));
      if (!counted.taken) {
        if (fromIp) await store.release(ipFailKey(ip));
        refuse('sign_in_delay', counted.ttlMs);
      }
      return {
        scope: c ? 'client' : 'account',
        failures: counted.count,
        delaySeconds: counted.delayMs / 1000,
        ipThrottled: Boolean(ipRate && fromIp?.count === ipRate.max),
        ipFailures: fromIp?.count ?? 0,
        ipReserved: fromIp !== null,
      };
    },

    /**
     * The right password from this client: a known client forgets its own
     * failures and delay (the address's, which strangers built, stay); a
     * stranger clears the address's. Either way the client is (again) known
     * for `knownClientSeconds`. The IP's count stays, less this attempt's
     * reservation (`reserved`).
     */
    async succeeded(email: string, ip: string | null, reserved?: FailureOutcome): Promise<void> {
      if (reserved?.ipReserved) await store.release(ipFailKey(ip));
      const c = client(email, ip);
      if (!c) return void (await store.delete(failKey(email), waitKey(email)));
      const known = (await store.peek(knownKey(c))).ttlMs > 0;
      await Promise.all([
        known ? store.delete(clientFailKey(c), clientWaitKey(c)) : store.delete(failKey(email), waitKey(email)),
        store.set(knownKey(c), 1, settings.knownClientSeconds * 1000),
      ]);
    },

    /** Forgets the address's failures and delay (a password reset). Known clients' own counters and the IP's count stay. */
    async reset(email: string): Promise<void> {
      await store.delete(failKey(email), waitKey(email));
    },
  };
}
