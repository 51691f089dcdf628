import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBcryptHasher, type BcryptHasher } from '../../src/infra/password-hasher.js';
import { createTestApp, json, uniqueEmail, type TestApp } from '../helpers/test-app.js';

// The bcrypt concurrency bound (docs/hardening.md "Password hashing under load", OWASP ASVS 5.0 V6/V13 resource limits): a flood of
// sign-ins with 72-byte passwords queues behind BCRYPT_CONCURRENCY hashing threads instead of
// running them all at once, and beyond BCRYPT_MAX_QUEUE waiting hashes the rest get 503 with
// Retry-After. bcrypt cost 4 keeps it to a few seconds. Each sign-in comes from its own address
// and account, so per-IP and per-account rate limits (if configured) stay out of the way.

const CONCURRENCY = 2;
let hasher: BcryptHasher;
let small: BcryptHasher;
let t: TestApp;
let shedding: TestApp;

/** 72 ASCII bytes: the longest password bcrypt takes in full. */
const longPassword = () => randomBytes(54).toString('base64').slice(0, 72);

async function register(app: TestApp, n: number) {
  const users: Array<{ email: string; password: string }> = [];
  for (let i = 0; i < n; i += 25) {
    const batch = Array.from({ length: Math.min(25, n - i) }, () => ({ email: uniqueEmail('flood'), password: longPassword() }));
    const res = await Promise.all(batch.map((u) => app.app.inject({ method: 'POST', url: '/auth/register', payload: u })));
    for (const r of res) expect(r.statusCode, r.body).toBe(201);
    users.push(...batch);
  }
  return users;
}

const ip = (i: number) => `10.77.${Math.floor(i / 250)}.${(i % 250) + 1}`;

beforeAll(async () => {
  hasher = createBcryptHasher(4, CONCURRENCY);
  // cost 10 (~50 ms a hash): a queue filled here stays full long enough to be seen by a request
  small = createBcryptHasher(10, 1, { maxQueue: 5 });
  t = await createTestApp({ hasher });
  shedding = await createTestApp({ hasher: small, db: t.db });
});

afterAll(async () => {
  await shedding?.close();
  await t?.close();
  await hasher?.close();
  await small?.close();
});

describe('bcrypt concurrency bound', () => {
  it(`200 concurrent sign-ins with 72-byte passwords: all answered correctly, at most ${CONCURRENCY} hashes at once, the rest queued`, async () => {
    const users = await register(t, 200);
    const rssBefore = process.memoryUsage().rss;
    let maxQueued = 0;
    const sampler = setInterval(() => (maxQueued = Math.max(maxQueued, hasher.queueDepth)), 1);
    const results = await Promise.all(
      users.map((u, i) =>
        t.app.inject({
          method: 'POST',
          url: '/auth/login',
          remoteAddress: ip(i),
          // every tenth one with a wrong password (the last byte changed): a bad-credentials answer, not a success
          payload: { email: u.email, password: i % 10 === 9 ? `${u.password.slice(0, 71)}${u.password.endsWith('x') ? 'y' : 'x'}` : u.password },
        }),
      ),
    );
    clearInterval(sampler);
    const rssGrowth = process.memoryUsage().rss - rssBefore;

    results.forEach((res, i) => {
      if (i % 10 === 9) {
        expect(res.statusCode, res.body).toBe(400);
        expect(json(res).error).toBe('invalid_grant');
      } else {
        expect(res.statusCode, res.body).toBe(200);
        expect(typeof json(res).access_token).toBe('string');
      }
    });
    expect(hasher.peakActive).toBe(CONCURRENCY);
    expect(hasher.active).toBe(0);
    expect(maxQueued).toBeGreaterThan(10);
    expect(hasher.queueDepth).toBe(0);
    // 200 requests in flight hold little: no per-request thread or buffer
    expect(rssGrowth).toBeLessThan(64 * 1024 * 1024);
  });

  it('beyond BCRYPT_MAX_QUEUE waiting hashes, sign-ins get 503 service_unavailable with Retry-After (never 500), and recover', async () => {
    const [victim] = await register(shedding, 1);
    const results = await Promise.all(
      Array.from({ length: 60 }, (_, i) =>
        shedding.app.inject({
          method: 'POST',
          url: '/auth/login',
          remoteAddress: ip(1000 + i),
          payload: { email: uniqueEmail('nobody'), password: longPassword() },
        }),
      ),
    );
    const shed = results.filter((r) => r.statusCode === 503);
    const answered = results.filter((r) => r.statusCode === 400);
    expect(shed.length + answered.length).toBe(60);
    expect(shed.length).toBeGreaterThan(0);
    expect(answered.length).toBeGreaterThanOrEqual(6);
    for (const r of shed) {
      expect(json(r).error).toBe('service_unavailable');
      expect(r.headers['retry-after']).toBe('2');
    }
    expect(small.peakActive).toBe(1);
    // once the queue drained, sign-in works again
    const ok = await shedding.app.inject({ method: 'POST', url: '/auth/login', payload: victim });
    expect(ok.statusCode, ok.body).toBe(200);
  });

  it('a sign-up refused for a full queue gets 503 and creates no account; the same sign-up later succeeds', async () => {
    const email = uniqueEmail('shed');
    const password = longPassword();
    // one hash running, one handed to the thread, five waiting: the queue is full
    const fill = Array.from({ length: 7 }, () => small.hash('filling the queue'));
    expect(small.queueDepth).toBe(5);
    const refused = await shedding.app.inject({ method: 'POST', url: '/auth/register', payload: { email, password } });
    expect(refused.statusCode, refused.body).toBe(503);
    expect(json(refused).error).toBe('service_unavailable');
    expect(refused.headers['retry-after']).toBe('2');
    await Promise.all(fill);
    expect(json(await shedding.app.inject({ method: 'POST', url: '/auth/login', payload: { email, password } })).error).toBe('invalid_grant');
    const again = await shedding.app.inject({ method: 'POST', url: '/auth/register', payload: { email, password } });
    expect(again.statusCode, again.body).toBe(201);
  });
});
