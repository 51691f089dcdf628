import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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
      'tessera_outbox_messages',
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
    expect(delta('tessera_sign_ins_total', 'result="failure",reason="wrong_password"')).toBe(1);
    expect(delta('tessera_sign_ins_total', 'result="failure",reason="unknown_email"')).toBe(1);
    expect(delta('tessera_refresh_token_reuse_total')).toBe(1);
    expect(delta('tessera_password_hash_seconds_count', 'op="hash"')).toBe(1);
    expect(delta('tessera_password_hash_seconds_count', 'op="verify"')).toBe(2);
    expect(delta('tessera_password_hash_seconds_count', 'op="dummy"')).toBe(1);
    expect(delta('http_requests_total', 'route="/auth/login",status="200"')).toBe(1);
    expect(delta('http_requests_total', 'route="/auth/refresh",status="400"')).toBe(1);
    // The registration's confirmation email went through the outbox (written to a file here).
    expect(value(after, 'tessera_outbox_messages', 'status="sent"') + value(after, 'tessera_outbox_messages', 'status="pending"')).toBeGreaterThanOrEqual(1);
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
