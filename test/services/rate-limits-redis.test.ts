import { and, eq } from 'drizzle-orm';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { users } from '../../src/features/accounts/tables.js';
import { auditEvents } from '../../src/features/audit/tables.js';
import { keyDigest } from '../../src/infra/counter-store.js';
import { OwnRedis } from '../helpers/redis-server.js';
import { PASSWORD, createTestApp, json, uniqueEmail, type TestApp } from '../helpers/test-app.js';

// Rate limits and brute-force counters shared by two app instances through one
// Redis (a redis-server of this test's own). Then Redis is killed: the credential
// endpoints stay limited by each process's own counters, every answer stays a
// prompt 2xx/4xx (no 500, no hang); once Redis is back, the counters are shared again.

let redis: OwnRedis;
let probe: Redis;
let a: TestApp;
let b: TestApp;

const env = (url: string) => ({
  REDIS_URL: url,
  RATE_LIMIT_ENABLED: 'true',
  BRUTE_FORCE_ENABLED: 'true',
  RATE_LIMIT_FORGOT_PASSWORD_IP: '4/1h',
});

beforeAll(async () => {
  redis = await OwnRedis.start();
  probe = new Redis(redis.url, { maxRetriesPerRequest: 1 });
  probe.on('error', () => undefined);
  a = await createTestApp({ env: env(redis.url) });
  b = await createTestApp({ db: a.db, env: env(redis.url) });
  // Both instances count in Redis before any test: until its connection is up, an instance counts in
  // its own memory (the outage fallback), which a loaded machine can make last into the first test.
  for (const [n, app] of [a, b].entries()) {
    const ip = `10.78.0.${n + 1}`;
    const deadline = Date.now() + 15_000;
    while (!(await probe.exists(`tessera:rl:forgot_password_ip:${ip}`))) {
      if (Date.now() > deadline) throw new Error('an instance never counted in Redis');
      await forgot(app, ip);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
});
afterAll(async () => {
  await redis?.up();
  await b?.close();
  await a?.close();
  probe?.disconnect();
  await redis?.stop();
});

let nextIp = 0;
const freshIp = () => `10.77.${Math.floor(++nextIp / 250)}.${nextIp % 250}`;

const forgot = (app: TestApp, ip: string) =>
  app.app.inject({ method: 'POST', url: '/auth/password/forgot', payload: { email: uniqueEmail('shared') }, remoteAddress: ip });
const login = (app: TestApp, email: string, password: string, ip: string) =>
  app.app.inject({ method: 'POST', url: '/auth/login', payload: { email, password }, remoteAddress: ip });

async function account(): Promise<string> {
  const email = uniqueEmail('shared');
  const res = await a.app.inject({ method: 'POST', url: '/auth/register', payload: { email, password: PASSWORD }, remoteAddress: freshIp() });
  expect(res.statusCode).toBe(201);
  return email;
}

/** Both instances count in Redis again (each reconnects on its own, within about a second). */
async function untilShared(timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (const app of [a, b]) {
    for (;;) {
      const ip = freshIp();
      await forgot(app, ip);
      if (await probe.exists(`tessera:rl:forgot_password_ip:${ip}`).catch(() => 0)) break;
      if (Date.now() > deadline) throw new Error('the counters did not move back to Redis');
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

describe('two instances, one Redis', () => {
  it('share the per-IP request counters', async () => {
    const ip = freshIp();
    const answers = [];
    for (const app of [a, b, a, b, a, b]) answers.push((await forgot(app, ip)).statusCode);
    expect(answers).toEqual([202, 202, 202, 202, 429, 429]);
    // The counter lives in Redis, keyed by limit and address, with its expiry.
    const ttl = await probe.pttl(`tessera:rl:forgot_password_ip:${ip}`);
    expect(ttl).toBeGreaterThan(3_500_000);
    expect(ttl).toBeLessThanOrEqual(3_600_000);
  });

  it('share the brute-force count of an account: failures on either add up', async () => {
    const email = await account();
    for (const app of [a, b, a, b, a]) expect((await login(app, email, 'wrong password', freshIp())).statusCode).toBe(400);
    const onB = await login(b, email, PASSWORD, freshIp());
    expect(onB.statusCode).toBe(429);
    expect(json(onB).error).toBe('sign_in_throttled');
    expect((await login(a, email, PASSWORD, freshIp())).statusCode).toBe(429);
    // No email in Redis, only digests.
    const keys = await probe.keys('tessera:rl:*');
    expect(keys.some((k) => k.startsWith('tessera:rl:bf:wait:'))).toBe(true);
    expect(keys.join(' ')).not.toContain(email);
  });

  it('count parallel attempts on both instances before hashing: 25 at once, only the 5 free ones are checked', async () => {
    const email = await account();
    const passwords = [...Array.from({ length: 24 }, (_, i) => `parallel ${i}`), PASSWORD];
    const answers = await Promise.all(passwords.map((password, i) => login(i % 2 ? b : a, email, password, freshIp())));
    const [user] = await a.db.handle.db.select().from(users).where(eq(users.email, email));
    const checked = await a.db.handle.db
      .select()
      .from(auditEvents)
      .where(and(eq(auditEvents.userId, user!.id), eq(auditEvents.type, 'sign_in_failed')));
    expect(checked).toHaveLength(5);
    expect(answers.filter((r) => r.statusCode === 400)).toHaveLength(5);
    // The rest: the delay (or, past 10, the request limit per address), never a hash.
    expect(answers.filter((r) => r.statusCode === 429)).toHaveLength(20);
  });

  it('share known clients: the owner known on one instance signs in on the other during the delay strangers built', async () => {
    const email = await account();
    const home = freshIp();
    expect((await login(a, email, PASSWORD, home)).statusCode).toBe(200);
    for (const app of [b, a, b, a, b]) expect((await login(app, email, 'stranger guess', freshIp())).statusCode).toBe(400);
    expect((await login(b, email, PASSWORD, freshIp())).statusCode).toBe(429);
    expect((await login(b, email, PASSWORD, home)).statusCode).toBe(200);
    // Kept 30 days, as a digest of (address, client): neither the address nor the IP in clear.
    const known = await probe.keys('tessera:rl:bf:known:*');
    expect(known).toHaveLength(1);
    expect(known[0]).toMatch(/^tessera:rl:bf:known:[\w-]{32}$/);
    expect(await probe.pttl(known[0]!)).toBeGreaterThan(29 * 86400_000);
  });
});

describe('Redis down', () => {
  it('a Redis that hangs (CLIENT PAUSE) costs at most the command timeout, then this process counts', async () => {
    await probe.call('CLIENT', 'PAUSE', '1500', 'ALL');
    const ip = freshIp();
    const start = performance.now();
    const res = await forgot(a, ip);
    const took = performance.now() - start;
    expect(res.statusCode).toBe(202);
    expect(took).toBeGreaterThanOrEqual(200);
    expect(took).toBeLessThan(800);
    // The next requests do not wait again: Redis is left alone for a second after a failure.
    const next = performance.now();
    expect((await forgot(a, ip)).statusCode).toBe(202);
    expect((await forgot(a, ip)).statusCode).toBe(202);
    expect(performance.now() - next).toBeLessThan(150);
    await new Promise((r) => setTimeout(r, 1600));
  });

  it('credential endpoints stay limited per process, and every answer is a prompt 2xx/4xx', async () => {
    await redis.down();
    const timings: number[] = [];
    const statuses: number[] = [];
    const timed = async (run: () => Promise<{ statusCode: number }>) => {
      const start = performance.now();
      const res = await run();
      timings.push(performance.now() - start);
      statuses.push(res.statusCode);
      return res.statusCode;
    };

    const ip = freshIp();
    const onA = [];
    for (let i = 0; i < 5; i++) onA.push(await timed(() => forgot(a, ip)));
    expect(onA).toEqual([202, 202, 202, 202, 429]);
    // Each process counts on its own meanwhile: the other instance has its own allowance.
    expect(await timed(() => forgot(b, ip))).toBe(202);

    // Brute force still on: failures counted in this process.
    const email = await account();
    for (let i = 0; i < 5; i++) expect(await timed(() => login(a, email, `wrong ${i}`, freshIp()))).toBe(400);
    expect(await timed(() => login(a, email, PASSWORD, freshIp()))).toBe(429);
    // A sign-in elsewhere works; a bad one is refused: no 500.
    const other = await account();
    expect(await timed(() => login(b, other, PASSWORD, freshIp()))).toBe(200);
    expect(await timed(() => login(b, other, 'wrong', freshIp()))).toBe(400);

    expect(statuses.every((s) => s < 500)).toBe(true);
    // Bounded by the counters' command timeout (250 ms) at worst, not by Redis reconnecting.
    expect(Math.max(...timings)).toBeLessThan(600);
  });

  it('once Redis is back, the counters are shared again', async () => {
    await redis.up();
    await untilShared();
    const ip = freshIp();
    const answers = [];
    for (const app of [b, a, b, a, b]) answers.push((await forgot(app, ip)).statusCode);
    expect(answers).toEqual([202, 202, 202, 202, 429]);
  });
});

describe('Redis down while a delay is pending', () => {
  // An instance of its own, with a delay long enough to outlast the test in real time (Redis keeps real time).
  let c: TestApp;
  beforeAll(async () => {
    await redis.up();
    await untilShared();
    c = await createTestApp({ db: a.db, env: { ...env(redis.url), BRUTE_FORCE_BASE_DELAY: '60s' } });
  });
  afterAll(async () => {
    await redis.up();
    await c?.close();
  });

  it('keeps the delay: the right password still gets 429 until it ends, then signs in', async () => {
    const email = await account();
    const ip = freshIp();
    for (let i = 1; i <= 5; i++) expect((await login(c, email, `wrong ${i}`, ip)).statusCode).toBe(400);
    // The delay is in Redis.
    expect(await probe.pttl(`tessera:rl:bf:wait:${keyDigest(email)}`)).toBeGreaterThan(50_000);
    await redis.down();

    const refused = await login(c, email, PASSWORD, ip);
    expect(refused.statusCode, refused.body).toBe(429);
    expect(json(refused).error).toBe('sign_in_throttled');
    expect(Number(refused.headers['retry-after'])).toBeGreaterThan(50);
    expect((await login(c, email, PASSWORD, freshIp())).statusCode).toBe(429);
    // The delay ends (by this instance's clock): the right password is let in, Redis or not.
    c.clock.advance(60_000);
    expect((await login(c, email, PASSWORD, ip)).statusCode).toBe(200);
  });
});
