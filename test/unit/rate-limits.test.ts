import { describe, expect, it } from 'vitest';
import { ConfigError, RATE_LIMITS, loadConfig } from '../../src/config/index.js';
import { createSignInGuard, delayAfter } from '../../src/features/accounts/sign-in-guard.js';
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
    expect(c.bruteForce).toEqual({
      enabled: true,
      freeAttempts: 5,
      baseDelaySeconds: 1,
      maxDelaySeconds: 900,
      windowSeconds: 86400,
      knownClientSeconds: 30 * 86400,
      ipFailures: { max: 30, windowSeconds: 900 },
    });
    expect(loadConfig({ BRUTE_FORCE_KNOWN_CLIENT_TTL: '0' }).rateLimits.bruteForce.knownClientSeconds).toBe(0);
    expect(loadConfig({ BRUTE_FORCE_KNOWN_CLIENT_TTL: '7d' }).rateLimits.bruteForce.knownClientSeconds).toBe(7 * 86400);
  });

  it('reads count/duration with the duration units, and off', () => {
    const c = loadConfig({
      RATE_LIMIT_SIGN_IN_IP: '10/1m',
      RATE_LIMIT_REGISTER_IP: '5 / h',
      RATE_LIMIT_REFRESH_IP: 'off',
      RATE_LIMIT_MFA_VERIFY_IP: '7/90',
      BRUTE_FORCE_IP_FAILURES: 'off',
      RATE_LIMIT_ENABLED: 'false',
    }).rateLimits;
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
      loadConfig({
        RATE_LIMIT_SIGN_IN_IP: 'ten per minute',
        RATE_LIMIT_TOKEN_IP: '10/30d',
        BRUTE_FORCE_FREE_ATTEMPTS: '0',
        BRUTE_FORCE_MAX_DELAY: 'soon',
        BRUTE_FORCE_KNOWN_CLIENT_TTL: 'forever',
      });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    const problems = (err as ConfigError).problems.join('\n');
    for (const name of ['RATE_LIMIT_SIGN_IN_IP', 'RATE_LIMIT_TOKEN_IP', 'BRUTE_FORCE_FREE_ATTEMPTS', 'BRUTE_FORCE_MAX_DELAY', 'BRUTE_FORCE_KNOWN_CLIENT_TTL'])
      expect(problems).toContain(name);
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

  it('take counts only below the maximum; reserve refuses while the block lives, else counts and starts the delay it earns; release gives one back', async () => {
    const clock = new ManualClock(0);
    const store = createMemoryCounterStore(clock);
    expect(await store.take('ip', 1000, 2)).toEqual({ taken: true, count: 1, ttlMs: 1000 });
    expect(await store.take('ip', 1000, 2)).toMatchObject({ taken: true, count: 2 });
    expect(await store.take('ip', 1000, 2)).toMatchObject({ taken: false, count: 2 });
    await store.release('ip');
    expect(await store.take('ip', 1000, 2)).toMatchObject({ taken: true, count: 2 });

    const schedule = { free: 2, baseMs: 1000, maxMs: 3000 };
    expect(await store.reserve('n', 'b', 60_000, schedule)).toEqual({ taken: true, count: 1, ttlMs: 60_000, delayMs: 0 });
    expect(await store.reserve('n', 'b', 60_000, schedule)).toMatchObject({ taken: true, count: 2, delayMs: 1000 });
    expect(await store.reserve('n', 'b', 60_000, schedule)).toEqual({ taken: false, count: 2, ttlMs: 1000, delayMs: 0 });
    clock.advance(1000);
    expect(await store.reserve('n', 'b', 60_000, schedule)).toMatchObject({ taken: true, count: 3, delayMs: 2000 });
    clock.advance(2000);
    expect(await store.reserve('n', 'b', 60_000, schedule)).toMatchObject({ taken: true, count: 4, delayMs: 3000 });
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
  const settings = {
    enabled: true,
    freeAttempts: 3,
    baseDelaySeconds: 2,
    maxDelaySeconds: 10,
    windowSeconds: 3600,
    knownClientSeconds: 86400,
    ipFailures: null,
  };

  it('doubles the delay per failure up to the maximum, and forgets a window after the last failure', async () => {
    const clock = new ManualClock(0);
    const guard = createSignInGuard({ store: createMemoryCounterStore(clock), settings });
    const delays = [];
    for (let i = 0; i < 6; i++) {
      delays.push((await guard.reserve('a@example.com', '192.0.2.1')).delaySeconds);
      clock.advance(10_000);
    }
    expect(delays).toEqual([0, 0, 2, 4, 8, 10]);
    clock.advance(3600_000);
    expect((await guard.reserve('a@example.com', '192.0.2.1')).delaySeconds).toBe(0);
  });

  it('refuses during a delay with 429 sign_in_throttled and the seconds left', async () => {
    const clock = new ManualClock(0);
    const guard = createSignInGuard({ store: createMemoryCounterStore(clock), settings });
    for (let i = 0; i < 3; i++) await guard.reserve('b@example.com', null);
    clock.advance(500);
    await expect(guard.check('b@example.com', null)).rejects.toMatchObject({ code: 'sign_in_throttled', status: 429, retryAfterSeconds: 2 });
    await expect(guard.check('c@example.com', null)).resolves.toBeUndefined();
    clock.advance(1500);
    await expect(guard.check('b@example.com', null)).resolves.toBeUndefined();
  });

  it('delayAfter: nothing for the free attempts, then base × 2ⁿ up to the maximum', () => {
    expect([1, 2, 3, 4, 5, 6, 7, 100].map((n) => delayAfter(n, settings))).toEqual([0, 0, 2, 4, 8, 10, 10, 10]);
  });

  it('a known client is judged by its own counter: strangers delay the address, not the owner at home', async () => {
    const clock = new ManualClock(0);
    const guard = createSignInGuard({ store: createMemoryCounterStore(clock), settings });
    const [home, stranger, other] = ['192.0.2.10', '198.51.100.7', '203.0.113.5'];
    await guard.succeeded('d@example.com', home);
    // A stranger's failures go to the address's counter, and delay every other unknown client too.
    const outcomes = [];
    for (let i = 0; i < 3; i++) outcomes.push(await guard.reserve('d@example.com', stranger));
    expect(outcomes.map((o) => [o.scope, o.delaySeconds])).toEqual([
      ['account', 0],
      ['account', 0],
      ['account', 2],
    ]);
    await expect(guard.check('d@example.com', stranger)).rejects.toMatchObject({ code: 'sign_in_throttled' });
    await expect(guard.check('d@example.com', other)).rejects.toMatchObject({ code: 'sign_in_throttled' });
    await expect(guard.check('d@example.com', home)).resolves.toBeUndefined();
    // The owner's typos go to the client's own counter, with the same free attempts and growth.
    const own = [];
    for (let i = 0; i < 3; i++) own.push(await guard.reserve('d@example.com', home));
    expect(own.map((o) => [o.scope, o.failures, o.delaySeconds])).toEqual([
      ['client', 1, 0],
      ['client', 2, 0],
      ['client', 3, 2],
    ]);
    await expect(guard.check('d@example.com', home)).rejects.toMatchObject({ code: 'sign_in_throttled', retryAfterSeconds: 2 });
    // The same /64 is the same client.
    await guard.succeeded('e@example.com', '2001:db8:1:2::1');
    for (let i = 0; i < 3; i++) await guard.reserve('e@example.com', '2001:db8:9:9::1');
    await expect(guard.check('e@example.com', '2001:db8:1:2:ffff::77')).resolves.toBeUndefined();
    await expect(guard.check('e@example.com', '2001:db8:1:3::1')).rejects.toMatchObject({ code: 'sign_in_throttled' });
  });

  it("a success from a known client clears only its own counter; from a stranger, the address's; known clients are forgotten after knownClientSeconds", async () => {
    const clock = new ManualClock(0);
    const guard = createSignInGuard({ store: createMemoryCounterStore(clock), settings });
    const [home, stranger] = ['192.0.2.20', '198.51.100.8'];
    await guard.succeeded('f@example.com', home);
    for (let i = 0; i < 2; i++) await guard.reserve('f@example.com', home);
    for (let i = 0; i < 2; i++) await guard.reserve('f@example.com', stranger);
    await guard.succeeded('f@example.com', home);
    // The address's count (2) survived the owner's success: the 3rd stranger failure starts the delay.
    expect((await guard.reserve('f@example.com', stranger)).delaySeconds).toBe(2);
    // The owner's count was cleared: their next failure is the 1st again.
    expect((await guard.reserve('f@example.com', home)).failures).toBe(1);
    // A day later without a success from home, home is a stranger again (and the address's count is forgotten too).
    clock.advance(86400_000);
    expect(await guard.reserve('f@example.com', home)).toMatchObject({ scope: 'account', failures: 1 });
    // A success from a stranger clears the address's counter and makes that client known.
    await guard.reserve('f@example.com', stranger);
    await guard.succeeded('f@example.com', stranger);
    expect(await guard.reserve('f@example.com', stranger)).toMatchObject({ scope: 'client', failures: 1 });
    expect(await guard.reserve('f@example.com', '203.0.113.99')).toMatchObject({ scope: 'account', failures: 1 });
  });

  it("with knownClientSeconds 0, or no client IP, everyone shares the address's counter", async () => {
    const clock = new ManualClock(0);
    const guard = createSignInGuard({ store: createMemoryCounterStore(clock), settings: { ...settings, knownClientSeconds: 0 } });
    await guard.succeeded('g@example.com', '192.0.2.30');
    expect(await guard.reserve('g@example.com', '192.0.2.30')).toMatchObject({ scope: 'account', failures: 1 });
    const withIp = createSignInGuard({ store: createMemoryCounterStore(clock), settings });
    await withIp.succeeded('h@example.com', null);
    expect(await withIp.reserve('h@example.com', null)).toMatchObject({ scope: 'account', failures: 1 });
  });
});
