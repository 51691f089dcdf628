import { like, sql } from 'drizzle-orm';
import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { users } from '../../src/features/accounts/tables.js';
import { openDatabase, type DatabaseHandle } from '../../src/infra/db/client.js';
import { isDatabaseUnavailable } from '../../src/infra/db/errors.js';
import type { TestDatabase } from '../helpers/database.js';
import { OwnPostgres } from '../helpers/own-postgres.js';
import { PASSWORD, createTestApp, type TestApp } from '../helpers/test-app.js';

// PostgreSQL goes away under load and comes back. A server of this test's own is
// stopped (`pg_ctl stop -m fast`) while four clients keep registering, signing in,
// reading their profile and asking for readiness over real HTTP; then it is started again.
// While it is down every answer is a prompt 503 service_unavailable (never a 500, never
// a hang, no internals); once it is back, service resumes within seconds on its own;
// and every 201 is a row in the database. Two short tests then make certain the two ways a
// cut connection can hurt a pool (found by the first test, at random there): one cut while a
// transaction holds it, and one handed to a transaction dead.

const CONNECT_TIMEOUT_MS = 1000;
const STATEMENT_TIMEOUT_MS = 2000;
/** No request may take longer than a connect attempt plus a statement, plus slack. */
const MAX_REQUEST_MS = CONNECT_TIMEOUT_MS + STATEMENT_TIMEOUT_MS + 1000;
const HEALTHY_MS = 2000;
const DOWN_MS = 4000;
const RECOVERY_LIMIT_MS = 5000;
const AFTER_RECOVERY_MS = 2000;
const LOOPS = 4;

type Kind = 'register' | 'ready' | 'login' | 'me';
const KINDS: Kind[] = ['register', 'ready', 'login', 'me'];
const SUCCESS: Record<Kind, number> = { register: 201, ready: 200, login: 200, me: 200 };

interface Sample {
  kind: Kind;
  loop: number;
  start: number;
  end: number;
  status: number;
  body: string;
  email?: string;
}

let server: OwnPostgres;
let db: TestDatabase;
let t: TestApp;
let base: string;
const prefix = `outage.${process.pid}.${Date.now()}`;

const now = () => performance.now();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function call(method: string, url: string, body?: unknown, token?: string): Promise<{ status: number; body: string }> {
  const headers: Record<string, string> = {};
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (token) headers.authorization = `Bearer ${token}`;
  const res = await fetch(`${base}${url}`, {
    method,
    headers,
    body: body === undefined ? null : JSON.stringify(body),
    // Far above MAX_REQUEST_MS: a hang shows up as a slow sample, not as a stuck test.
    signal: AbortSignal.timeout(15_000),
  });
  return { status: res.status, body: await res.text() };
}

/**
 * Closes a handle, waiting at most `ms`: a pool that leaked a client never ends
 * (pool.end() waits for it); the tests below report the leak, the teardown must not hang on it.
 */
async function closeWithin(handle: DatabaseHandle, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const gaveUp = new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), ms)));
  const outcome = await Promise.race([handle.close().then(() => 'closed' as const), gaveUp]).finally(() => clearTimeout(timer));
  if (outcome === 'timeout') console.warn(`the pool did not end within ${ms} ms (a client is still checked out: ${JSON.stringify(handle.poolStats())})`);
}

/** Waits until no pooled client is checked out (nothing is running); the pool's numbers if that never happens. */
async function poolSettled(handle: DatabaseHandle, ms = 2000) {
  const deadline = now() + ms;
  for (;;) {
    const stats = handle.poolStats()!;
    if (stats.idle === stats.total && stats.waiting === 0) return { checkedOut: 0, ...stats };
    if (now() > deadline) return { checkedOut: stats.total - stats.idle, ...stats };
    await sleep(20);
  }
}

beforeAll(async () => {
  server = await OwnPostgres.start();
  const admin = new pg.Client({ connectionString: server.url });
  await admin.connect();
  await admin.query('CREATE DATABASE tessera');
  await admin.end();
  const url = server.urlFor('tessera');
  const handle = await openDatabase({ url, poolMax: 10, connectTimeoutMs: CONNECT_TIMEOUT_MS, statementTimeoutMs: STATEMENT_TIMEOUT_MS });
  await handle.migrate();
  db = { handle, url, drop: () => closeWithin(handle, 5000) };
  // The app runs on the handle above (createTestApp uses the one it is given); the env keeps its config in step.
  t = await createTestApp({ db, env: { DB_CONNECT_TIMEOUT_MS: String(CONNECT_TIMEOUT_MS), DB_STATEMENT_TIMEOUT_MS: String(STATEMENT_TIMEOUT_MS) } });
  base = await t.app.listen({ port: 0, host: '127.0.0.1' });
});

afterAll(async () => {
  try {
    await t?.close();
    await db?.drop();
  } finally {
    await server?.destroy();
  }
});

it('PostgreSQL stopped under load: prompt 503s while it is down, service resumes on its own, no 201 lost', async () => {
  // One account per loop, created and signed in before the outage.
  const accounts = await Promise.all(
    Array.from({ length: LOOPS }, async (_, i) => {
      const email = `${prefix}.before.${i}@example.com`;
      const reg = await call('POST', '/auth/register', { email, password: PASSWORD });
      expect(reg.status, reg.body).toBe(201);
      const login = await call('POST', '/auth/login', { email, password: PASSWORD });
      expect(login.status, login.body).toBe(200);
      return { email, access: (JSON.parse(login.body) as { access_token: string }).access_token };
    }),
  );

  const samples: Sample[] = [];
  let running = true;
  let counter = 0;

  async function sample(kind: Kind, loop: number, method: string, url: string, body?: unknown, token?: string, email?: string) {
    const start = now();
    let res: { status: number; body: string };
    try {
      res = await call(method, url, body, token);
    } catch (err) {
      // No answer at all (a reset or our 15 s abort): recorded as status 0.
      res = { status: 0, body: String(err) };
    }
    samples.push({ kind, loop, start, end: now(), status: res.status, body: res.body, ...(email ? { email } : {}) });
  }

  async function loop(i: number) {
    const account = accounts[i]!;
    while (running) {
      const email = `${prefix}.loop.${i}.${++counter}@example.com`;
      await sample('register', i, 'POST', '/auth/register', { email, password: PASSWORD }, undefined, email);
      await sample('ready', i, 'GET', '/health/ready');
      await sample('login', i, 'POST', '/auth/login', { email: account.email, password: PASSWORD });
      await sample('me', i, 'GET', '/users/me', undefined, account.access);
    }
  }

  const loops = Array.from({ length: LOOPS }, (_, i) => loop(i));
  const stopped = { begin: 0, end: 0 };
  const started = { begin: 0, end: 0 };
  const recoveredAt: Partial<Record<Kind, number>> = {};
  try {
    await sleep(HEALTHY_MS);
    stopped.begin = now();
    await server.stop();
    stopped.end = now();
    await sleep(DOWN_MS);
    started.begin = now();
    await server.startAgain();
    started.end = now();

    // Until every kind of request has succeeded again (started after PostgreSQL was back), then a bit more.
    const deadline = started.end + RECOVERY_LIMIT_MS + 3000;
    while (now() < deadline) {
      for (const s of samples) {
        if (s.start >= started.end && s.status === SUCCESS[s.kind] && recoveredAt[s.kind] === undefined) recoveredAt[s.kind] = s.end;
      }
      if (KINDS.every((k) => recoveredAt[k] !== undefined)) break;
      await sleep(20);
    }
    await sleep(AFTER_RECOVERY_MS);
  } finally {
    running = false;
    await Promise.all(loops);
  }

  const ms = (x: number) => Math.round(x);
  const show = (s: Sample) =>
    `${s.kind} loop ${s.loop} at ${ms(s.start - stopped.begin)} ms after the stop: ${s.status} in ${ms(s.end - s.start)} ms ${s.body.slice(0, 300)}`;
  const recovery = Object.fromEntries(KINDS.map((k) => [k, recoveredAt[k] === undefined ? null : ms(recoveredAt[k] - started.end)]));
  const counts = (list: Sample[]) =>
    list.reduce<Record<string, number>>((acc, s) => ({ ...acc, [`${s.kind} ${s.status}`]: (acc[`${s.kind} ${s.status}`] ?? 0) + 1 }), {});
  console.log(
    [
      `db outage: ${samples.length} requests; pg_ctl stop took ${ms(stopped.end - stopped.begin)} ms, start ${ms(started.end - started.begin)} ms`,
      `recovery after PostgreSQL was back (first success per request kind): ${JSON.stringify(recovery)} ms`,
      `slowest request: ${ms(Math.max(...samples.map((s) => s.end - s.start)))} ms`,
      `answers: ${JSON.stringify(counts(samples))}`,
    ].join('\n'),
  );

  // Never a 500 (nor anything else unexpected), never a hang.
  const unexpected = samples.filter((s) => s.status !== SUCCESS[s.kind] && s.status !== 503);
  expect(unexpected.map(show), 'answers other than success or 503').toEqual([]);
  const slow = samples.filter((s) => s.end - s.start > MAX_REQUEST_MS);
  expect(slow.map(show), `requests slower than ${MAX_REQUEST_MS} ms`).toEqual([]);

  // Before the outage: all good.
  const healthy = samples.filter((s) => s.end <= stopped.begin);
  expect(healthy.length).toBeGreaterThan(LOOPS * 4);
  expect(healthy.filter((s) => s.status !== SUCCESS[s.kind]).map(show)).toEqual([]);

  // Every 503, whenever it came: the catalogue's body (readiness: its own shape), and no internals.
  for (const s of samples.filter((x) => x.status === 503)) {
    expect(s.body, show(s)).not.toMatch(/ECONNREFUSED|ECONNRESET|postgres|stack|terminat|\.ts:\d|node_modules/i);
    const body = JSON.parse(s.body) as Record<string, unknown>;
    if (s.kind === 'ready') expect(body, show(s)).toEqual({ status: 'unavailable', checks: { database: 'down' } });
    // /auth/login is an OAuth2 endpoint: RFC 6749 §5.2 shape, same code.
    else if (s.kind === 'login') expect(body, show(s)).toEqual({ error: 'service_unavailable', error_description: expect.any(String) as unknown });
    else expect(body, show(s)).toEqual({ error: 'service_unavailable', message: expect.any(String) as unknown });
  }

  // While it is down (the request began after the stop completed and ended before the start began): 503, every one.
  const down = samples.filter((s) => s.start >= stopped.end && s.end <= started.begin);
  for (const k of KINDS) expect(down.filter((s) => s.kind === k).length, `${k} requests while down`).toBeGreaterThanOrEqual(LOOPS);
  expect(down.filter((s) => s.status !== 503).map(show), 'answers while PostgreSQL was down').toEqual([]);

  // Back: each kind succeeds again within the limit, and from then on everything succeeds.
  for (const k of KINDS) {
    expect(recovery[k], `${k}: recovery after PostgreSQL was back`).not.toBeNull();
    expect(recovery[k]!, `${k}: recovery after PostgreSQL was back`).toBeLessThanOrEqual(RECOVERY_LIMIT_MS);
  }
  const recoveredBy = Math.max(...KINDS.map((k) => recoveredAt[k]!));
  const after = samples.filter((s) => s.start >= recoveredBy);
  expect(after.length).toBeGreaterThan(LOOPS * 4);
  expect(after.filter((s) => s.status !== SUCCESS[s.kind]).map(show), 'answers after recovery').toEqual([]);

  // No 201 lost; no account created by a request that was told 503 once PostgreSQL was really down.
  const registrations = samples.filter((s) => s.kind === 'register');
  const created = registrations.filter((s) => s.status === 201).map((s) => s.email!);
  const rows = await db.handle.db
    .select({ email: users.email })
    .from(users)
    .where(like(users.email, `${prefix}.loop.%`));
  const stored = new Set(rows.map((r) => r.email));
  expect(
    created.filter((e) => !stored.has(e)),
    '201s missing from the users table',
  ).toEqual([]);
  // A registration cut off by the shutdown itself may have committed before its connection went: only those may be extra.
  const inDoubt = new Set(registrations.filter((s) => s.status === 503 && s.start < stopped.end).map((s) => s.email!));
  const extra = [...stored].filter((e) => !created.includes(e));
  expect(
    extra.filter((e) => !inDoubt.has(e)),
    'accounts stored for a 503',
  ).toEqual([]);
  expect(stored.size - extra.length).toBe(created.length);
  console.log(`registrations: ${created.length} × 201, ${stored.size} rows (${extra.length} committed as the connection was cut)`);

  // No request is in flight now: every pooled connection must be back in the pool (a leaked one is a slot lost for good).
  expect(await poolSettled(db.handle), 'pool with no request in flight').toMatchObject({ checkedOut: 0 });
});

// The same event, made certain: a transaction holds its pooled connection between two
// statements (as registration does) when PostgreSQL terminates it. The failure must reach
// the transaction; an 'error' event of the connection with no listener is thrown out of band
// instead (an uncaught exception: in production, the process dies).
it('a connection cut while a transaction holds it: the transaction fails as unavailable, nothing is thrown out of band', async () => {
  await server.startAgain();
  const handle = await openDatabase({
    url: server.urlFor('tessera'),
    poolMax: 1,
    connectTimeoutMs: CONNECT_TIMEOUT_MS,
    statementTimeoutMs: STATEMENT_TIMEOUT_MS,
  });
  const outOfBand: unknown[] = [];
  const record = (err: unknown) => outOfBand.push(err);
  try {
    process.on('uncaughtException', record);
    try {
      const outcome = await handle.db
        .transaction(async (tx) => {
          await tx.execute(sql`select 1`);
          // pg_ctl stop -m fast terminates this idle-in-transaction backend and waits until the server is down.
          await server.stop();
          await sleep(50);
          await tx.execute(sql`select 1`);
        })
        .then(
          () => new Error('the transaction committed although its connection was gone'),
          (err: unknown) => err,
        );
      expect(isDatabaseUnavailable(outcome), String(outcome)).toBe(true);
      expect(outOfBand.map(String), 'errors thrown out of band (uncaught exceptions)').toEqual([]);
    } finally {
      process.off('uncaughtException', record);
      await server.startAgain();
    }
    // The pool (of one) dropped the dead connection: the same handle works again.
    await handle.ping();
  } finally {
    await closeWithin(handle, 3000);
  }
});

// A connection that dies while it sits idle in the pool (PostgreSQL restarted, a proxy or
// firewall cut it) is handed out before this process has read its end: a transaction's BEGIN
// is then the statement that fails. The transaction must fail as unavailable, and its
// connection must go back to the pool (be discarded): else the pool loses a slot for good.
it('a transaction whose BEGIN meets a dead pooled connection: 503-class failure, and the pool gets its slot back', async () => {
  await server.startAgain();
  const name = `tessera-begin-probe-${process.pid}`;
  const handle = await openDatabase({
    url: `${server.urlFor('tessera')}?application_name=${name}`,
    poolMax: 1,
    connectTimeoutMs: CONNECT_TIMEOUT_MS,
    statementTimeoutMs: STATEMENT_TIMEOUT_MS,
  });
  // The connection's own 'error' events (the test above) are not what this test is about.
  const outOfBand: unknown[] = [];
  const record = (err: unknown) => outOfBand.push(err);
  try {
    await handle.ping();
    expect(handle.poolStats()).toEqual({ total: 1, idle: 1, waiting: 0 });
    process.on('uncaughtException', record);
    // Synchronously: this process reads nothing from the socket before the transaction below takes the connection.
    expect(
      server.psqlSync('tessera', `select count(*) from (select pg_terminate_backend(pid) from pg_stat_activity where application_name = '${name}') t`),
    ).toBe('1');
    const outcome = await handle.db
      .transaction(async (tx) => {
        await tx.execute(sql`select 1`);
      })
      .then(
        () => new Error('the transaction committed on a terminated connection'),
        (err: unknown) => err,
      );
    expect(isDatabaseUnavailable(outcome), String(outcome)).toBe(true);
    await sleep(100);
    expect(await poolSettled(handle, 1000), 'pool after the failed BEGIN').toMatchObject({ checkedOut: 0 });
    // A pool of one serves again (with the slot leaked this would wait for a client, then time out).
    await handle.ping();
  } finally {
    process.off('uncaughtException', record);
    if (outOfBand.length) console.warn(`thrown out of band during the BEGIN test: ${outOfBand.map(String).join('; ')}`);
    await closeWithin(handle, 3000);
  }
});
