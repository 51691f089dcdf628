import { Writable } from 'node:stream';
import { and, eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { outbox } from '../../src/features/mail/tables.js';
import { SmtpCatcher } from '../helpers/smtp.js';
import { PASSWORD, bearer, createTestApp, json, signUp, uniqueEmail, type TestApp } from '../helpers/test-app.js';

// What an operator sees: Prometheus series that move with the events, one redacted
// log line per request with its request id, and readiness per dependency.

const lines: Array<Record<string, unknown>> = [];
const logStream = new Writable({
  write(chunk: Buffer, _enc, done) {
    for (const line of chunk.toString('utf8').split('\n').filter(Boolean)) lines.push(JSON.parse(line) as Record<string, unknown>);
    done();
  },
});

let t: TestApp;
beforeAll(async () => {
  t = await createTestApp({ env: { LOG_LEVEL: 'info', METRICS_TOKEN: 'scrape-secret-123' }, logStream });
});
afterAll(async () => {
  await t?.close();
});

async function scrape(): Promise<string> {
  const res = await t.app.inject({ method: 'GET', url: '/metrics', headers: bearer('scrape-secret-123') });
  expect(res.statusCode).toBe(200);
  return res.body;
}

/** The value of one series (labels in any order given as a `{a="x",b="y"}` substring), 0 when absent. */
function value(body: string, name: string, labels = ''): number {
  const line = body.split('\n').find((l) => l.startsWith(name) && (labels ? l.includes(labels) : l.startsWith(`${name} `)));
  return line ? Number(line.split(' ').pop()) : 0;
}

describe('GET /metrics', () => {
  it('needs the METRICS_TOKEN when one is set', async () => {
    expect((await t.app.inject({ method: 'GET', url: '/metrics' })).statusCode).toBe(401);
    expect((await t.app.inject({ method: 'GET', url: '/metrics', headers: bearer('wrong-token-123') })).statusCode).toBe(401);
    expect((await t.app.inject({ method: 'GET', url: '/metrics', headers: bearer('scrape-secret-123') })).statusCode).toBe(200);
  });

  it('exposes the process, request, sign-in, reuse, hashing, outbox and pool series', async () => {
    const body = await scrape();
    for (const name of [
      'process_resident_memory_bytes',
      'nodejs_eventloop_lag_p99_seconds',
      'http_requests_total',
      'http_request_duration_seconds_bucket',
      'password_hash_queue_depth',
      'tessera_password_hash_seconds',
      'tessera_sign_ins_total',
      'tessera_refresh_token_reuse_total',
      'tessera_outbox_backlog_messages',
      'tessera_outbox_failed_messages',
      'tessera_outbox_oldest_unsent_age_seconds',
    ]) {
      expect(body, name).toContain(`# TYPE ${name.replace(/_bucket$/, '')} `);
    }
    if (t.db.handle.kind === 'postgres') expect(body).toContain('tessera_db_pool_connections{state="total"}');
  });

  it('the series move when the events happen', async () => {
    const before = await scrape();
    const user = await signUp(t.app);
    await t.app.inject({ method: 'POST', url: '/auth/login', payload: { email: user.email, password: 'a wrong password!' } });
    await t.app.inject({ method: 'POST', url: '/auth/login', payload: { email: uniqueEmail('ghost'), password: PASSWORD } });
    // Refresh, then replay the spent token outside the grace window: a reuse.
    const first = await t.app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: user.refresh } });
    expect(first.statusCode).toBe(200);
    t.clock.advance(60_000);
    expect((await t.app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: user.refresh } })).statusCode).toBe(400);
    const after = await scrape();

    const delta = (name: string, labels = '') => value(after, name, labels) - value(before, name, labels);
    expect(delta('tessera_sign_ins_total', 'result="success",reason="ok"')).toBe(1);
    // A wrong password and an unknown address are one reason: the metrics do not name registered addresses.
    expect(delta('tessera_sign_ins_total', 'result="failure",reason="invalid_credentials"')).toBe(2);
    expect(after).not.toMatch(/unknown_email|wrong_password/);
    expect(delta('tessera_refresh_token_reuse_total')).toBe(1);
    expect(delta('tessera_password_hash_seconds_count', 'op="hash"')).toBe(1);
    // The unknown address's dummy verify counts as a verify.
    expect(delta('tessera_password_hash_seconds_count', 'op="verify"')).toBe(3);
    expect(after).not.toContain('op="dummy"');
    expect(delta('http_requests_total', 'route="/auth/login",status="200"')).toBe(1);
    expect(delta('http_requests_total', 'route="/auth/refresh",status="400"')).toBe(1);
    // The registration's confirmation email is on its way or sent (written to a file here): not a backlog.
    expect(value(after, 'tessera_outbox_backlog_messages', 'status="pending"')).toBe(0);
    // It leaves in the background: once written (at most a few seconds on a loaded machine), nothing is unsent.
    let settled = after;
    for (let i = 0; i < 100 && value(settled, 'tessera_outbox_oldest_unsent_age_seconds') !== 0; i++) {
      await new Promise((r) => setTimeout(r, 100));
      settled = await scrape();
    }
    expect(value(settled, 'tessera_outbox_oldest_unsent_age_seconds')).toBe(0);
  });
});

describe('metrics do not tell a registered address from an unknown one', () => {
  let smtp: SmtpCatcher;
  let m: TestApp;
  beforeAll(async () => {
    smtp = await SmtpCatcher.start();
    m = await createTestApp({
      env: {
        METRICS_TOKEN: 'scrape-secret-123',
        SMTP_SERVER: '127.0.0.1',
        SMTP_PORT: String(smtp.port),
        SMTP_TIMEOUT_MS: '5000',
        OUTBOX_POLL_INTERVAL_MS: '20',
        EMAIL_RETRY_DELAY_MS: '1000',
      },
    });
  });
  afterAll(async () => {
    await m?.close();
    await smtp?.close();
  });

  const scrapeM = async () => {
    const res = await m.app.inject({ method: 'GET', url: '/metrics', headers: bearer('scrape-secret-123') });
    expect(res.statusCode).toBe(200);
    return res.body;
  };
  /** Every sample of a scrape but those measuring the process rather than events (CPU, memory, GC, latency, pool use). */
  const samples = async () =>
    new Map(
      (await scrapeM())
        .split('\n')
        .filter((l) => l && !l.startsWith('#') && !/^(process_|nodejs_|http_request_duration_seconds|tessera_db_pool_connections)/.test(l))
        .map((l) => [l.slice(0, l.lastIndexOf(' ')), Number(l.slice(l.lastIndexOf(' ') + 1))] as const),
    );
  /** The samples that changed from `a` to `b`, with their change. */
  const moved = (a: Map<string, number>, b: Map<string, number>) =>
    Object.fromEntries([...new Set([...a.keys(), ...b.keys()])].map((k) => [k, (b.get(k) ?? 0) - (a.get(k) ?? 0)] as const).filter(([, d]) => d !== 0));
  const forgot = async (email: string) =>
    expect((await m.app.inject({ method: 'POST', url: '/auth/password/forgot', payload: { email } })).statusCode).toBe(202);
  const rowTo = async (to: string, kind: string) =>
    (
      await m.db.handle.db
        .select()
        .from(outbox)
        .where(and(eq(outbox.recipient, to), eq(outbox.kind, kind)))
    )[0];
  async function until(check: () => Promise<boolean>, what: string) {
    const deadline = Date.now() + 10_000;
    while (!(await check())) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }
  const pause = () => new Promise((r) => setTimeout(r, 200));
  /**
   * Waits until the row is sent. A retry scheduled beyond the injected clock (an attempt
   * that failed for a reason of the loaded machine, such as an SMTP timeout) is brought due
   * by moving the clock to it: with a frozen clock it would never come.
   */
  async function untilSent(to: string, kind: string) {
    await until(async () => {
      const row = await rowTo(to, kind);
      if (row?.status === 'sent') return true;
      if (row?.status === 'pending' && row.availableAt > m.clock.now()) m.clock.advance(row.availableAt.getTime() - m.clock.now().getTime());
      return false;
    }, `the ${kind} mail to be sent`);
  }

  it('forgot-password to a known and to an unknown address moves the same series, before the send and after it', async () => {
    const known = uniqueEmail('known');
    expect((await m.app.inject({ method: 'POST', url: '/auth/register', payload: { email: known, password: PASSWORD } })).statusCode).toBe(201);
    await until(async () => (await rowTo(known, 'confirm_email'))?.status === 'sent', 'the confirmation to be sent');

    const k0 = await samples();
    // The SMTP server refuses the first attempt: the reset mail waits in the outbox, unsent.
    smtp.plan.push({ code: 451, message: 'try again later', to: known });
    await forgot(known);
    await until(
      async () => (await rowTo(known, 'password_reset'))?.status === 'pending' && (await rowTo(known, 'password_reset'))?.attempts === 1,
      'a refused first attempt',
    );
    const k1 = await samples();
    m.clock.advance(1000); // the retry is due
    await untilSent(known, 'password_reset');
    await smtp.waitFor(known, /Reset/);
    const k2 = await samples();

    const unknown = uniqueEmail('unknown');
    const u0 = await samples();
    await forgot(unknown);
    await pause();
    const u1 = await samples();
    m.clock.advance(1000);
    await pause();
    const u2 = await samples();

    expect(moved(k0, k1)).toEqual(moved(u0, u1));
    expect(moved(k1, k2)).toEqual(moved(u1, u2));
    // The comparison is not empty: the request itself is counted.
    expect(moved(u0, u1)).toMatchObject({ 'http_requests_total{method="POST",route="/auth/password/forgot",status="202"}': 1 });
  });

  it('mail still unsent a minute after it was written is backlog (by status, with its age), and names no address', async () => {
    const email = uniqueEmail('stuck');
    smtp.plan.push({ code: 451, message: 'try again later', to: email }, { code: 451, message: 'still not', to: email });
    expect((await m.app.inject({ method: 'POST', url: '/auth/register', payload: { email, password: PASSWORD } })).statusCode).toBe(201);
    await until(
      async () => (await rowTo(email, 'confirm_email'))?.attempts === 1 && (await rowTo(email, 'confirm_email'))?.status === 'pending',
      'a refused first attempt',
    );
    const young = await scrapeM();
    expect(value(young, 'tessera_outbox_backlog_messages', 'status="pending"')).toBe(0);

    m.clock.advance(61_000);
    // Claimed (attempts 2) is not finished: move the clock only once the refusal is recorded, or the retry is scheduled after the move.
    await until(
      async () => (await rowTo(email, 'confirm_email'))?.attempts === 2 && (await rowTo(email, 'confirm_email'))?.status === 'pending',
      'a refused second attempt',
    );
    const stuck = await scrapeM();
    const backlog = ['pending', 'queued', 'sending'].reduce((n, status) => n + value(stuck, 'tessera_outbox_backlog_messages', `status="${status}"`), 0);
    expect(backlog).toBe(1);
    expect(value(stuck, 'tessera_outbox_oldest_unsent_age_seconds')).toBeGreaterThanOrEqual(61);
    expect(value(stuck, 'tessera_outbox_failed_messages')).toBe(0);
    expect(stuck).not.toContain(email);

    m.clock.advance(10_000);
    await untilSent(email, 'confirm_email');
    await smtp.waitFor(email, /Confirm/);
    expect(value(await scrapeM(), 'tessera_outbox_oldest_unsent_age_seconds')).toBe(0);
  });
});

describe('logs', () => {
  it('one line per request, with the request id (an incoming X-Request-Id is kept and echoed)', async () => {
    const from = lines.length;
    const res = await t.app.inject({ method: 'GET', url: '/health/live', headers: { 'x-request-id': 'edge-1234.abc' } });
    expect(res.headers['x-request-id']).toBe('edge-1234.abc');
    const mine = lines.slice(from).filter((l) => l.reqId === 'edge-1234.abc');
    expect(mine).toHaveLength(1);
    expect(mine[0]).toMatchObject({ msg: 'request', method: 'GET', path: '/health/live', status: 200 });

    // An id that is not id-shaped (too long, spaces, control characters) is replaced.
    const odd = await t.app.inject({ method: 'GET', url: '/health/live', headers: { 'x-request-id': `x ${'y'.repeat(300)}` } });
    expect(odd.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('a failed sign-in, a reset and a confirmation link leave no password, token or query string in the log', async () => {
    const from = lines.length;
    const secret = 'Very-Secret-Passphrase-9';
    const user = await signUp(t.app);
    await t.app.inject({ method: 'POST', url: '/auth/token', payload: { grant_type: 'password', username: user.email, password: secret } });
    await t.app.inject({ method: 'POST', url: '/auth/login', payload: { email: user.email, password: secret } });
    await t.app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: `${user.refresh}x` } });
    await t.app.inject({ method: 'GET', url: '/auth/confirm-email?token=SomeLinkToken1234567890' });
    await t.app.inject({ method: 'GET', url: '/users/me', headers: { ...bearer(user.access), cookie: 'sid=cookie-secret' } });
    await t.app.inject({ method: 'POST', url: '/auth/password/reset', payload: { token: 'SomeLinkToken1234567890', password: secret } });
    const text = JSON.stringify(lines.slice(from));
    expect(lines.length).toBeGreaterThan(from);
    for (const leak of [secret, user.refresh, user.access, 'SomeLinkToken1234567890', 'cookie-secret', PASSWORD]) expect(text).not.toContain(leak);
    const confirm = lines.slice(from).find((l) => l.path === '/auth/confirm-email');
    expect(confirm).toMatchObject({ status: 400, route: '/auth/confirm-email' });
  });
});

describe('readiness', () => {
  it('reports the database separately, and no Redis when none is configured', async () => {
    const res = await t.app.inject({ method: 'GET', url: '/health/ready' });
    expect(res.statusCode).toBe(200);
    expect(json(res)).toEqual({ status: 'ready', checks: { database: 'up' } });
  });
});
