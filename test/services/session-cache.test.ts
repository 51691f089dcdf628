import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { OwnRedis } from '../helpers/redis-server.js';
import { killServerProcesses, startServerProcess } from '../helpers/server-process.js';
import { PASSWORD, uniqueEmail } from '../helpers/test-app.js';

// The session cache across instances (docs/operations.md, "Session cache"): two server
// processes on one PostgreSQL database and one Redis. A session ended through one is
// refused by the other at once (pub/sub), well within SESSION_CACHE_TTL_MS; a change that
// publishes nothing (a direct UPDATE) shows within the bound; and with Redis down, every
// check goes to the database.

const TTL_MS = 2000;

let db: TestDatabase;
let redis: OwnRedis;
let dataDir: string;
let a: Instance;
let b: Instance;

interface Instance {
  base: string;
  output: () => string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 30_000, output?: () => string) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}\n${output?.() ?? ''}`);
    await sleep(10);
  }
}

async function startInstance(): Promise<Instance> {
  return startServerProcess({
    databaseUrl: db.url ?? '',
    dataDir,
    env: {
      WORKERS: '1',
      REDIS_URL: redis.url,
      SESSION_CACHE_TTL_MS: String(TTL_MS),
      // Two instances of one service: one issuer.
      PUBLIC_URL: 'http://tessera.test',
      BRUTE_FORCE_ENABLED: 'false',
    },
    readyTimeoutMs: 60_000,
  });
}

async function signIn(via: Instance): Promise<{ access: string; sessionId: string }> {
  const email = uniqueEmail('cache');
  const reg = await fetch(`${via.base}/auth/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email, password: PASSWORD }),
  });
  expect(reg.status).toBe(201);
  const login = await fetch(`${via.base}/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email, password: PASSWORD }),
  });
  expect(login.status).toBe(200);
  const access = ((await login.json()) as { access_token: string }).access_token;
  const payload = JSON.parse(Buffer.from(access.split('.')[1]!, 'base64url').toString()) as { sid: string };
  return { access, sessionId: payload.sid };
}

const me = (via: Instance, access: string) => fetch(`${via.base}/users/me`, { headers: { authorization: `Bearer ${access}` } }).then((r) => r.status);

/** Milliseconds until `via` refuses the token (401), polling every 10 ms; fails after `limitMs`. */
async function msUntilRefused(via: Instance, access: string, limitMs: number): Promise<number> {
  const started = Date.now();
  for (;;) {
    if ((await me(via, access)) === 401) return Date.now() - started;
    if (Date.now() - started > limitMs) throw new Error(`still accepted after ${limitMs} ms`);
    await sleep(10);
  }
}

async function revokeInDatabase(sessionId: string): Promise<void> {
  const c = new pg.Client({ connectionString: db.url ?? '' });
  await c.connect();
  try {
    await c.query(`update sessions set revoked_at = now(), revoked_reason = 'test' where id = $1`, [sessionId]);
  } finally {
    await c.end();
  }
}

beforeAll(async () => {
  db = await createTestDatabase();
  redis = await OwnRedis.start();
  dataDir = mkdtempSync(path.join(tmpdir(), 'tessera-session-cache-'));
  // One after the other: the first migrates and creates the data dir's MFA key.
  a = await startInstance();
  b = await startInstance();
}, 120_000);

afterAll(async () => {
  killServerProcesses();
  await redis?.stop();
  await db?.drop();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

describe('session cache across two instances (one PostgreSQL, one Redis)', () => {
  it('a session signed out through one instance is refused by the other at once, far within the bound', async () => {
    const s = await signIn(a);
    // B holds the session in its cache now.
    expect(await me(b, s.access)).toBe(200);
    expect(await me(b, s.access)).toBe(200);
    const logout = await fetch(`${a.base}/users/me/sessions/${s.sessionId}`, { method: 'DELETE', headers: { authorization: `Bearer ${s.access}` } });
    expect(logout.status).toBe(204);
    const ms = await msUntilRefused(b, s.access, TTL_MS);
    // The invalidation travels through Redis in milliseconds; the TTL would take 2 s.
    expect(ms).toBeLessThan(TTL_MS / 4);
  });

  it('sign-out-everywhere through one instance ends every cached session on the other', async () => {
    const s = await signIn(a);
    expect(await me(b, s.access)).toBe(200);
    const all = await fetch(`${a.base}/auth/logout/all`, { method: 'POST', headers: { authorization: `Bearer ${s.access}` } });
    expect(all.status).toBeLessThan(300);
    expect(await msUntilRefused(b, s.access, TTL_MS)).toBeLessThan(TTL_MS / 4);
  });

  it('a change that publishes nothing (a direct UPDATE) is served from the cache for at most the bound', async () => {
    const s = await signIn(a);
    const cachedAt = Date.now();
    expect(await me(b, s.access)).toBe(200);
    const revokedAt = Date.now();
    await revokeInDatabase(s.sessionId);
    // Served from B's cache: the entry was read before the UPDATE (unless this machine is so slow that it expired).
    const status = await me(b, s.access);
    if (Date.now() - cachedAt < TTL_MS - 200) expect(status).toBe(200);
    await msUntilRefused(b, s.access, TTL_MS + 1000);
    expect(Date.now() - revokedAt).toBeLessThanOrEqual(TTL_MS + 500);
  });

  it('GET /users/me is served with the session: a profile change through one instance shows on the other at once', async () => {
    const s = await signIn(a);
    const profile = (via: Instance) =>
      fetch(`${via.base}/users/me`, { headers: { authorization: `Bearer ${s.access}` } }).then(async (r) => ({
        status: r.status,
        body: (await r.json()) as { first_name: string | null; updated_at: string },
      }));
    // B holds the session (and with it the profile) in its cache now.
    const before = await profile(b);
    expect(before).toMatchObject({ status: 200, body: { first_name: null } });
    const patch = await fetch(`${a.base}/users/me`, {
      method: 'PATCH',
      headers: { authorization: `Bearer ${s.access}`, 'content-type': 'application/json' },
      body: JSON.stringify({ first_name: 'Ada' }),
    });
    expect(patch.status).toBe(200);
    const changedAt = Date.now();
    // Read-your-writes on the instance that changed it, and on the other within the pub/sub delay, far within the TTL.
    expect((await profile(a)).body.first_name).toBe('Ada');
    let seen = await profile(b);
    while (seen.body.first_name !== 'Ada' && Date.now() - changedAt < TTL_MS) seen = await profile(b);
    expect(seen.body.first_name).toBe('Ada');
    expect(Date.now() - changedAt).toBeLessThan(TTL_MS / 4);
    expect(seen.body.updated_at > before.body.updated_at).toBe(true);
  });

  it('with Redis down the cache is bypassed: every check reads the database', async () => {
    const s = await signIn(a);
    expect(await me(b, s.access)).toBe(200);
    await redis.down();
    try {
      await until('B to notice Redis is gone', () => /subscription not confirmed/.test(b.output()), 10_000, b.output);
      await revokeInDatabase(s.sessionId);
      // No pub/sub message could tell B; it refuses at once because it reads the database.
      expect(await me(b, s.access)).toBe(401);
      const other = await signIn(a);
      expect(await me(b, other.access)).toBe(200);
      await revokeInDatabase(other.sessionId);
      expect(await me(b, other.access)).toBe(401);
    } finally {
      await redis.up();
    }
    // Once the subscription is confirmed again, sessions are cached again (and still refused when ended).
    await until('B to confirm its subscription again', () => /subscription confirmed again/.test(b.output()), 15_000, b.output);
    const again = await signIn(a);
    expect(await me(b, again.access)).toBe(200);
    await fetch(`${a.base}/auth/logout/all`, { method: 'POST', headers: { authorization: `Bearer ${again.access}` } });
    expect(await msUntilRefused(b, again.access, TTL_MS)).toBeLessThan(TTL_MS / 4);
  });
});
