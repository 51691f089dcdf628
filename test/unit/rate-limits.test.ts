import { describe, expect, it } from 'vitest';
import { ConfigError, RATE_LIMITS, loadConfig } from '../../src/config.js';
import { createSignInGuard } from '../../src/features/accounts/sign-in-guard.js';
import { ManualClock } from '../../src/infra/clock.js';
import { createMemoryCounterStore } from '../../src/infra/counter-store.js';
import { ipKey } from '../../src/infra/ip-key.js';

describe('rate limit configuration', () => {
  it('has a default for every limit, and brute-force protection on', () => {
    const c = loadConfig({}).rateLimits;
    expect(c.enabled).toBe(true);
    expect(Object.keys(c.limits).sort()).toEqual(Object.keys(RATE_LIMITS).sort());
    expect(c.limits.sign_in_ip).toEqual({ max: 30, windowSeconds: 300 });
    expect(c.limits.sign_in_account).toEqual({ max: 10, windowSeconds: 300 });
    expect(c.limits.register_ip).toEqual({ max: 30, windowSeconds: 3600 });
    expect(c.bruteForce).toEqual({ enabled: true, freeAttempts: 5, baseDelaySeconds: 1, maxDelaySeconds: 900, windowSeconds: 86400, ipFailures: { max: 30, windowSeconds: 900 } });
  });

  it('reads count/duration with the duration units, and off', () => {
    const c = loadConfig({ RATE_LIMIT_SIGN_IN_IP: '10/1m', RATE_LIMIT_REGISTER_IP: '5 / h', RATE_LIMIT_REFRESH_IP: 'off', RATE_LIMIT_MFA_VERIFY_IP: '7/90', BRUTE_FORCE_IP_FAILURES: 'off', RATE_LIMIT_ENABLED: 'false' }).rateLimits;
    expect(c.enabled).toBe(false);
    expect(c.limits.sign_in_ip).toEqual({ max: 10, windowSeconds: 60 });
    expect(c.limits.register_ip).toEqual({ max: 5, windowSeconds: 3600 });
    expect(c.limits.refresh_ip).toBeNull();
    expect(c.limits.mfa_verify_ip).toEqual({ max: 7, windowSeconds: 90 });
    expect(c.bruteForce.ipFailures).toBeNull();
  });

  it('names every bad value', () => {
    let err: unknown;
    try {
      loadConfig({ RATE_LIMIT_SIGN_IN_IP: 'ten per minute', RATE_LIMIT_TOKEN_IP: '10/30d', BRUTE_FORCE_FREE_ATTEMPTS: '0', BRUTE_FORCE_MAX_DELAY: 'soon' });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    const problems = (err as ConfigError).problems.join('\n');
    for (const name of ['RATE_LIMIT_SIGN_IN_IP', 'RATE_LIMIT_TOKEN_IP', 'BRUTE_FORCE_FREE_ATTEMPTS', 'BRUTE_FORCE_MAX_DELAY']) expect(problems).toContain(name);
    expect(problems).toContain('10/1m');
  });
});

describe('ipKey', () => {
  it('keeps IPv4, unwraps IPv4-mapped IPv6, and groups other IPv6 addresses by /64', () => {
    expect(ipKey('203.0.113.9')).toBe('203.0.113.9');
    expect(ipKey('::ffff:203.0.113.9')).toBe('203.0.113.9');
    expect(ipKey('2001:db8:1:2:3:4:5:6')).toBe('2001:db8:1:2::/64');
    expect(ipKey('2001:DB8:1:2::9')).toBe('2001:db8:1:2::/64');
    expect(ipKey('2001:db8:1:3::9')).toBe('2001:db8:1:3::/64');
    expect(ipKey(null)).toBe('unknown');
  });
});

describe('memory counters', () => {
  it('expire by the injected clock; sliding ones restart with each hit', async () => {
    const clock = new ManualClock(0);
    const store = createMemoryCounterStore(clock);
    expect(await store.hit('k', 1000)).toEqual({ count: 1, ttlMs: 1000 });
    clock.advance(600);
    expect(await store.hit('k', 1000)).toEqual({ count: 2, ttlMs: 400 });
    clock.advance(400);
    expect(await store.peek('k')).toEqual({ count: 0, ttlMs: 0 });
    await store.hit('s', 1000, { slide: true });
    clock.advance(900);
    expect(await store.hit('s', 1000, { slide: true })).toEqual({ count: 2, ttlMs: 1000 });
  });

  it('stay bounded: past maxKeys the soonest to expire go first', async () => {
    const clock = new ManualClock(0);
    const store = createMemoryCounterStore(clock, 100);
    for (let i = 0; i < 100; i++) await store.hit(`short${i}`, 1000 + i);
    await store.hit('long', 60_000);
    expect((await store.peek('long')).count).toBe(1);
    expect((await store.peek('short0')).count).toBe(0);
    expect((await store.peek('short99')).count).toBe(1);
  });
});

describe('sign-in guard', () => {
  const settings = { enabled: true, freeAttempts: 3, baseDelaySeconds: 2, maxDelaySeconds: 10, windowSeconds: 3600, ipFailures: null };

  it('doubles the delay per failure up to the maximum, and forgets a window after the last failure', async () => {
    const clock = new ManualClock(0);
    const guard = createSignInGuard({ store: createMemoryCounterStore(clock), settings });
    const delays = [];
    for (let i = 0; i < 6; i++) {
      delays.push((await guard.failed('a@example.com', '192.0.2.1')).delaySeconds);
      clock.advance(10_000);
    }
    expect(delays).toEqual([0, 0, 2, 4, 8, 10]);
    clock.advance(3600_000);
    expect((await guard.failed('a@example.com', '192.0.2.1')).delaySeconds).toBe(0);
  });

  it('refuses during a delay with 429 sign_in_throttled and the seconds left', async () => {
    const clock = new ManualClock(0);
    const guard = createSignInGuard({ store: createMemoryCounterStore(clock), settings });
    for (let i = 0; i < 3; i++) await guard.failed('b@example.com', null);
    clock.advance(500);
    await expect(guard.check('b@example.com', null)).rejects.toMatchObject({ code: 'sign_in_throttled', status: 429, retryAfterSeconds: 2 });
    await expect(guard.check('c@example.com', null)).resolves.toBeUndefined();
    clock.advance(1500);
    await expect(guard.check('b@example.com', null)).resolves.toBeUndefined();
  });
});
