import { like } from 'drizzle-orm';
import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { users } from '../../src/features/accounts/tables.js';
import { openDatabase, type DatabaseHandle } from '../../src/infra/db/client.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { PASSWORD, createTestApp, type TestApp } from '../helpers/test-app.js';

// REQUEST_DEADLINE_MS on PostgreSQL: a second connection holds a lock on the users table,
// so Tessera's own connections wait behind it (statements on the lock, more requests for a
// pool connection), with the default DB_CONNECT_TIMEOUT_MS (5 s) and DB_STATEMENT_TIMEOUT_MS
// (10 s): up to 15 s before. Every request must be answered 503 within the deadline, none of
// them may leave a row behind once the lock is gone, and service resumes at once.

const DEADLINE_MS = 1500;
/** Scheduling slack on a shared 2-core machine. */
const SLACK_MS = 700;
const POOL = 3;
const REQUESTS = 8;

let db: TestDatabase;
/** The app's own pool of POOL connections, with the default connect and statement timeouts. */
let appDb: DatabaseHandle;
let t: TestApp;
let base: string;
const prefix = `deadline.${process.pid}.${Date.now()}`;

beforeAll(async () => {
  db = await createTestDatabase();
  appDb = await openDatabase({ url: db.url!, poolMax: POOL, connectTimeoutMs: 5000, statementTimeoutMs: 10_000 });
  t = await createTestApp({
    db: { handle: appDb, url: db.url, drop: async () => undefined },
    env: { REQUEST_DEADLINE_MS: String(DEADLINE_MS), DB_POOL_MAX: String(POOL), RATE_LIMIT_ENABLED: 'false', BCRYPT_ROUNDS: '4' },
  });
  base = await t.app.listen({ port: 0, host: '127.0.0.1' });
});
afterAll(async () => {
  await t?.close();
  await appDb?.close();
  await db?.drop();
});

const register = async (email: string) => {
  const start = performance.now();
  const res = await fetch(`${base}/auth/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email, password: PASSWORD }),
    signal: AbortSignal.timeout(30_000),
  });
  return { email, status: res.status, retryAfter: res.headers.get('retry-after'), body: await res.text(), ms: Math.round(performance.now() - start) };
};

it('a lock held by another connection: every request gets 503 within REQUEST_DEADLINE_MS, nothing is written, service resumes', async () => {
  const locker = new pg.Client({ connectionString: db.url! });
  await locker.connect();
  let released = false;
  try {
    await locker.query('BEGIN');
    await locker.query('LOCK TABLE users IN ACCESS EXCLUSIVE MODE');
    const emails = Array.from({ length: REQUESTS }, (_, i) => `${prefix}.${i}@example.com`);
    const answers = await Promise.all(emails.map(register));
    console.log(`behind a lock (pool ${POOL}, REQUEST_DEADLINE_MS=${DEADLINE_MS}): ${answers.map((a) => `${a.status} in ${a.ms} ms`).join(', ')}`);
    for (const a of answers) {
      expect(a.status, a.body).toBe(503);
      expect(JSON.parse(a.body)).toMatchObject({ error: 'service_unavailable' });
      expect(a.retryAfter).toBe('5');
      expect(a.ms, `${a.email} answered after ${a.ms} ms`).toBeLessThan(DEADLINE_MS + SLACK_MS);
    }

    // The lock goes while the cut-off statements are still queued behind it: they must roll back, not commit.
    await locker.query('COMMIT');
    released = true;
    await new Promise((r) => setTimeout(r, 500));
    const after = await register(`${prefix}.after@example.com`);
    expect(after.status, after.body).toBe(201);
    expect(after.ms).toBeLessThan(DEADLINE_MS);
    await new Promise((r) => setTimeout(r, 500));
    const rows = await db.handle.db
      .select({ email: users.email })
      .from(users)
      .where(like(users.email, `${prefix}.%`));
    expect(rows.map((r) => r.email)).toEqual([`${prefix}.after@example.com`]);
    // Every pooled connection is back (none leaked by a cut-off request).
    expect(appDb.poolStats()).toMatchObject({ waiting: 0 });
  } finally {
    if (!released) await locker.query('ROLLBACK').catch(() => undefined);
    await locker.end();
  }
});
