import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { Queue } from 'bullmq';
import { eq } from 'drizzle-orm';
import { Redis } from 'ioredis';
import { createLocalJWKSet, decodeJwt, jwtVerify } from 'jose';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { oauthClients } from '../../src/features/clients/tables.js';
import { outbox, type OutboxStatus } from '../../src/features/mail/tables.js';
import { EMAIL_QUEUE } from '../../src/features/mail/queue.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { testKeys } from '../helpers/keys.js';
import { OwnRedis } from '../helpers/redis-server.js';
import { SmtpCatcher, linkIn, tokenIn } from '../helpers/smtp.js';
import { PASSWORD, TEST_ISSUER, bearer, createTestApp, json, uniqueEmail, type TestApp } from '../helpers/test-app.js';

// The production shape: the API server relays the outbox to BullMQ on a Redis of this
// test's own, `npm run worker` (a real child process) sends over real SMTP, on PostgreSQL.
// Redis is stopped and started, SMTP refuses, and a worker is SIGKILLed mid-send.

const repo = path.resolve(import.meta.dirname, '../..');
const tsx = ['--import', 'tsx'];

let db: TestDatabase;
let redis: OwnRedis;
let smtp: SmtpCatcher;
let t: TestApp;
let privateKey: string;
const workers = new Set<ChildProcess>();

function env(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    NODE_ENV: 'test',
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'warn',
    DATABASE_URL: db.url ?? '',
    REDIS_URL: redis.url,
    SMTP_SERVER: '127.0.0.1',
    SMTP_PORT: String(smtp.port),
    // Claims last 3 s and a dead worker's job is taken over after 5 s: a crash test stays short.
    SMTP_TIMEOUT_MS: '1000',
    PUBLIC_URL: TEST_ISSUER,
    PRIVATE_KEY: privateKey,
    EMAIL_RETRY_DELAY_MS: '200',
    EMAIL_MAX_ATTEMPTS: '4',
    OUTBOX_POLL_INTERVAL_MS: '100',
    ...extra,
  };
}

interface Spawned {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
}

function spawnTs(script: string, args: string[], vars: NodeJS.ProcessEnv): Spawned {
  const child = spawn(process.execPath, [...tsx, path.join(repo, script), ...args], { cwd: repo, env: vars, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout?.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr?.setEncoding('utf8').on('data', (d: string) => (out += d));
  workers.add(child);
  const exited = new Promise<number | null>((resolve) =>
    child.on('exit', (code) => {
      workers.delete(child);
      resolve(code);
    }),
  );
  return { child, output: () => out, exited };
}

const startWorker = (extra: Record<string, string> = {}) => spawnTs('src/worker.ts', [], env(extra));

async function cli(...args: string[]): Promise<{ code: number | null; output: string }> {
  const p = spawnTs('src/cli.ts', args, env());
  const code = await p.exited;
  return { code, output: p.output() };
}

const rowsTo = async (to: string) => db.handle.db.select().from(outbox).where(eq(outbox.recipient, to));

async function until(check: () => Promise<boolean>, what: string, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Waits until the outbox row of the one message to `to` has `status`. */
const untilStatus = (to: string, status: OutboxStatus, what: string = status) => until(async () => (await rowsTo(to))[0]?.status === status, what);

async function register(email = uniqueEmail('worker')) {
  const res = await t.app.inject({ method: 'POST', url: '/auth/register', payload: { email, password: PASSWORD } });
  expect(res.statusCode, res.body).toBe(201);
  return email;
}

beforeAll(async () => {
  [db, redis, smtp] = await Promise.all([createTestDatabase(), OwnRedis.start(), SmtpCatcher.start()]);
  privateKey = (await testKeys('RS256')).privateKey;
  t = await createTestApp({
    db,
    env: { REDIS_URL: redis.url, SMTP_SERVER: '127.0.0.1', SMTP_PORT: String(smtp.port), REQUIRE_EMAIL_VERIFICATION: 'true', OUTBOX_POLL_INTERVAL_MS: '100' },
  });
});

afterAll(async () => {
  for (const w of workers) w.kill('SIGKILL');
  await t?.close();
  await Promise.all([db?.drop(), redis?.stop(), smtp?.close()]);
});

describe('with the worker running', () => {
  let worker: Spawned;
  beforeEach(async () => {
    worker = startWorker();
    // Tests plan the SMTP answers of their own messages: nothing else may be in flight.
    await until(async () => (await db.handle.db.select().from(outbox)).every((r) => r.status === 'sent' || r.status === 'failed'), 'the outbox to settle');
  });
  afterEach(async () => {
    worker.child.kill('SIGTERM');
    const code = await worker.exited;
    expect(code, worker.output()).toBe(0);
  });

  it('register → relay → BullMQ → worker → SMTP → confirm → sign in; then reset and email change', async () => {
    const started = Date.now();
    const email = await register();
    const mail = await smtp.waitFor(email, /Confirm your email/, 20_000).catch(async (err: unknown) => {
      throw new Error(`${String(err)}\nrows: ${JSON.stringify(await rowsTo(email))}\nworker: ${worker.output()}`);
    });
    console.log(`registration → SMTP delivery through Redis and the worker: ${Date.now() - started} ms (includes the worker's start-up)`);
    expect(linkIn(mail).startsWith(`${TEST_ISSUER}/auth/confirm-email?token=`)).toBe(true);
    expect((await t.app.inject({ method: 'POST', url: '/auth/confirm-email', payload: { token: tokenIn(mail) } })).statusCode).toBe(200);
    const signIn = await t.app.inject({ method: 'POST', url: '/auth/login', payload: { email, password: PASSWORD } });
    expect(signIn.statusCode, signIn.body).toBe(200);
    expect(await rowsTo(email)).toMatchObject([{ status: 'sent', attempts: 1, sealedSecret: null }]);

    // A second registration, with the worker warm: the latency of one message.
    const warm = Date.now();
    const second = await register();
    await smtp.waitFor(second, /Confirm/);
    console.log(`registration → SMTP delivery, warm worker: ${Date.now() - warm} ms`);

    expect((await t.app.inject({ method: 'POST', url: '/auth/password/forgot', payload: { email } })).statusCode).toBe(202);
    const reset = await smtp.waitFor(email, /Reset your/);
    expect(
      (await t.app.inject({ method: 'POST', url: '/auth/password/reset', payload: { token: tokenIn(reset), password: 'a brand new passphrase 42' } }))
        .statusCode,
    ).toBe(204);
    await smtp.waitFor(email, /password was changed/);
    const fresh = await t.app.inject({ method: 'POST', url: '/auth/login', payload: { email, password: 'a brand new passphrase 42' } });
    expect(fresh.statusCode).toBe(200);

    const moved = uniqueEmail('moved');
    const change = await t.app.inject({
      method: 'POST',
      url: '/users/me/email',
      headers: bearer(json(fresh).access_token as string),
      payload: { new_email: moved, password: 'a brand new passphrase 42' },
    });
    expect(change.statusCode, change.body).toBe(202);
    await smtp.waitFor(email, /about to change/);
    const confirmNew = await smtp.waitFor(moved, /Confirm your new/);
    expect((await t.app.inject({ method: 'POST', url: '/auth/confirm-email', payload: { token: tokenIn(confirmNew) } })).statusCode).toBe(200);
    expect((await t.app.inject({ method: 'POST', url: '/auth/login', payload: { email: moved, password: 'a brand new passphrase 42' } })).statusCode).toBe(200);
  });

  it('Redis down at registration: 201 at once, the mail waits in the outbox and goes out once Redis is back', async () => {
    await redis.down();
    const started = Date.now();
    const email = await register();
    expect(Date.now() - started).toBeLessThan(2000);
    await new Promise((r) => setTimeout(r, 700));
    expect(await rowsTo(email)).toMatchObject([{ status: 'pending' }]);
    expect(smtp.messagesTo(email)).toHaveLength(0);
    await redis.up();
    await smtp.waitFor(email, /Confirm/, 30_000);
    await untilStatus(email, 'sent');
    expect(smtp.messagesTo(email)).toHaveLength(1);
  });

  it("Redis back after a long outage: the mail leaves within a second (REDIS_RECONNECT_MAX_DELAY_MS), not after ioredis's 5 s backoff", async () => {
    const figures: string[] = [];
    // Twice: where Redis comes back within a reconnection backoff is chance; 5 s apart it would be missed most times.
    for (let round = 0; round < 2; round++) {
      await redis.down();
      const email = await register();
      // Long enough for an unbounded backoff to reach its 5 s ceiling (50 ms doubling: 6.3 s in).
      await new Promise((r) => setTimeout(r, 8000));
      expect(await rowsTo(email)).toMatchObject([{ status: 'pending' }]);
      await redis.up();
      const back = Date.now();
      let relayedAfter = -1;
      await until(
        async () => {
          const status = (await rowsTo(email))[0]?.status;
          if (relayedAfter < 0 && status !== 'pending') relayedAfter = Date.now() - back;
          return smtp.messagesTo(email).length > 0;
        },
        'the mail after Redis came back',
        15_000,
      ).catch(async (err: unknown) => {
        throw new Error(
          `round ${round + 1}: ${String(err)} (relayed after ${relayedAfter} ms)\nrows: ${JSON.stringify(await rowsTo(email))}\nworker: ${worker.output()}`,
        );
      });
      const deliveredAfter = Date.now() - back;
      figures.push(`relayed ${relayedAfter} ms, delivered ${deliveredAfter} ms`);
      expect(deliveredAfter, `round ${round + 1}: delivery after Redis was back`).toBeLessThan(1500);
    }
    console.log(`mail after Redis came back (down 8 s, REDIS_RECONNECT_MAX_DELAY_MS=500): ${figures.join('; ')}`);
  });

  it('Redis killed during sign-ups: every one gets 201, readiness says degraded, every confirmation arrives once', async () => {
    const emails = Array.from({ length: 40 }, () => uniqueEmail('burst'));
    const statuses: number[] = [];
    let next = 0;
    const killAfter = 12;
    const killed: Array<Promise<void>> = [];
    await Promise.all(
      Array.from({ length: 4 }, async () => {
        while (next < emails.length) {
          const i = next++;
          if (i === killAfter) killed.push(redis.down());
          const res = await t.app.inject({ method: 'POST', url: '/auth/register', payload: { email: emails[i], password: PASSWORD } });
          statuses.push(res.statusCode);
        }
      }),
    );
    await Promise.all(killed);
    expect(statuses.filter((s) => s !== 201)).toEqual([]);
    const ready = await t.app.inject({ method: 'GET', url: '/health/ready' });
    expect(ready.statusCode).toBe(200);
    expect(json(ready)).toEqual({ status: 'degraded', checks: { database: 'up', redis: 'down' } });

    await redis.up();
    for (const email of emails) await smtp.waitFor(email, /Confirm/, 30_000);
    await new Promise((r) => setTimeout(r, 500));
    for (const email of emails) expect(smtp.messagesTo(email), email).toHaveLength(1);
    expect(json(await t.app.inject({ method: 'GET', url: '/health/ready' }))).toEqual({ status: 'ready', checks: { database: 'up', redis: 'up' } });
    const metrics = (await t.app.inject({ method: 'GET', url: '/metrics' })).body;
    expect(metrics).toContain('tessera_db_pool_connections{state="total"}');
    // Everything was delivered: no backlog. (Sent counts and queue jobs are not series: they would move with each address that has an account.)
    expect(metrics).toContain('tessera_outbox_backlog_messages{status="queued"} 0');
    expect(metrics).toContain('tessera_outbox_oldest_unsent_age_seconds 0');
    expect(metrics).not.toMatch(/tessera_email_queue_jobs|status="sent"/);
  });

  it('SMTP refusing the first attempts: retried with backoff, delivered exactly once', async () => {
    smtp.plan.push({ code: 451, message: 'greylisted' }, { code: 421, message: 'busy' });
    const email = await register();
    await smtp.waitFor(email, /Confirm/).catch(async (err: unknown) => {
      throw new Error(`${String(err)}\nrows: ${JSON.stringify(await rowsTo(email))}\nworker: ${worker.output()}`);
    });
    await untilStatus(email, 'sent');
    expect((await rowsTo(email))[0]?.attempts).toBe(3);
    await new Promise((r) => setTimeout(r, 500));
    expect(smtp.messagesTo(email)).toHaveLength(1);
  });

  it('a permanently failing message ends failed; `tessera outbox retry` delivers it once SMTP recovers', async () => {
    smtp.plan.push({ code: 554, message: 'relay access denied' });
    const email = await register();
    await untilStatus(email, 'failed');
    const [row] = await rowsTo(email);
    expect(row?.lastError).toContain('554');
    const status = await cli('outbox', 'status');
    expect(status.code, status.output).toBe(0);
    expect(status.output).toContain(`failed ${row?.id} confirm_email to ${email}`);

    const retry = await cli('outbox', 'retry', '--id', row?.id ?? '');
    expect(retry.code, retry.output).toBe(0);
    expect(retry.output).toContain('1 failed message re-queued');
    await smtp.waitFor(email, /Confirm/);
    await untilStatus(email, 'sent', 'sent after the retry');
    expect(smtp.messagesTo(email)).toHaveLength(1);
  });

  it('a back-channel logout notice goes the same way: relay → BullMQ → worker → a signed logout token POSTed to the client', async () => {
    const tokens: string[] = [];
    const receiver = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        tokens.push(new URLSearchParams(body).get('logout_token') ?? '');
        res.writeHead(200).end();
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    try {
      const uri = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/backchannel`;
      const { client, secret } = await t.app.services.clients.create(null, { name: 'bc', type: 'confidential', firstParty: true, grantTypes: ['password'] });
      // Registration takes https URIs only; the receiver here is plain http on loopback.
      await db.handle.db.update(oauthClients).set({ backchannelLogoutUri: uri }).where(eq(oauthClients.clientId, client.clientId));
      const email = uniqueEmail('bc-worker');
      await t.app.services.admin.createUser(null, { email, password: PASSWORD, emailVerified: true, roles: ['user'], sendInvite: false });
      const signIn = await t.app.inject({
        method: 'POST',
        url: '/auth/token',
        headers: {
          authorization: `Basic ${Buffer.from(`${client.clientId}:${secret}`).toString('base64')}`,
          'content-type': 'application/x-www-form-urlencoded',
        },
        payload: new URLSearchParams({ grant_type: 'password', username: email, password: PASSWORD }).toString(),
      });
      const access = json(signIn).access_token as string;
      expect((await t.app.inject({ method: 'POST', url: '/auth/logout', headers: bearer(access) })).statusCode).toBe(204);
      await until(async () => tokens.length === 1, 'the logout token');
      const { payload, protectedHeader } = await jwtVerify(tokens[0]!, createLocalJWKSet(t.app.services.infra.keys.jwks()), {
        issuer: TEST_ISSUER,
        audience: client.clientId,
        typ: 'logout+jwt',
      });
      expect(protectedHeader.typ).toBe('logout+jwt');
      expect(payload.sid).toBe(decodeJwt(access).sid);
      await untilStatus(uri, 'sent');
    } finally {
      await new Promise((r) => receiver.close(r));
    }
  });

  it('a job delivered twice sends one email', async () => {
    const email = await register();
    await smtp.waitFor(email, /Confirm/);
    const [row] = await rowsTo(email);
    const connection = new Redis(redis.url, { maxRetriesPerRequest: null });
    const queue = new Queue(EMAIL_QUEUE, { connection });
    try {
      // The same outbox row under other job ids, twice at once.
      await queue.addBulk([1, 2].map((n) => ({ name: 'send', data: { outboxId: row?.id }, opts: { jobId: `dup-${n}-${row?.id}` } })));
      await until(async () => {
        const { waiting, active } = await queue.getJobCounts('waiting', 'active');
        return (waiting ?? 0) + (active ?? 0) === 0;
      }, 'the duplicate jobs to run');
    } finally {
      await queue.close();
      connection.disconnect();
    }
    await new Promise((r) => setTimeout(r, 300));
    expect(smtp.messagesTo(email)).toHaveLength(1);
  });
});

it('a worker SIGKILLed during a send: the message is still delivered, once', async () => {
  const first = startWorker();
  smtp.plan.push({ hold: true });
  const email = await register();
  await smtp.until(() => smtp.heldCount === 1, 20_000, 'the send to start');
  first.child.kill('SIGKILL');
  await first.exited;
  smtp.dropHeld();
  expect(smtp.messagesTo(email)).toHaveLength(0);
  expect(await rowsTo(email)).toMatchObject([{ status: 'sending', attempts: 1 }]);

  const second = startWorker();
  try {
    // BullMQ hands the stalled job to the new worker; the row's claim of the dead one runs out first.
    await smtp.waitFor(email, /Confirm/, 30_000);
    await untilStatus(email, 'sent');
    expect((await rowsTo(email))[0]?.attempts).toBe(2);
    await new Promise((r) => setTimeout(r, 500));
    expect(smtp.messagesTo(email)).toHaveLength(1);
  } finally {
    second.child.kill('SIGTERM');
    expect(await second.exited).toBe(0);
  }
});

it('`tessera outbox retry --id` with an id that is no outbox message exits 1 naming it, and re-queues nothing', async () => {
  const email = await register();
  const [row] = await rowsTo(email);
  await db.handle.db.update(outbox).set({ status: 'failed', lastError: '554 test' }).where(eq(outbox.id, row!.id));
  const unknown = '00000000-0000-4000-8000-000000000000';
  const refused = await cli('outbox', 'retry', '--id', row!.id, '--id', unknown);
  expect(refused.code, refused.output).toBe(1);
  expect(refused.output).toContain(`no outbox message with the id ${unknown}; nothing was re-queued`);
  expect(await rowsTo(email)).toMatchObject([{ status: 'failed' }]);

  const retried = await cli('outbox', 'retry', '--id', row!.id);
  expect(retried.code, retried.output).toBe(0);
  expect(retried.output).toContain('1 failed message re-queued');
  // Again: the row exists but is not failed any more; said so, not an error.
  const again = await cli('outbox', 'retry', '--id', row!.id);
  expect(again.code, again.output).toBe(0);
  expect(again.output).toMatch(new RegExp(`${row!.id} is (pending|queued), not failed; left as it is`));
  expect(again.output).toContain('0 failed messages re-queued');
});

it('the worker refuses to run without Redis or on the embedded database, saying why', async () => {
  const noRedis = startWorker({ REDIS_URL: '' });
  expect(await noRedis.exited).toBe(1);
  expect(noRedis.output()).toContain('REDIS_URL');
  const embedded = startWorker({ DATABASE_URL: '', DATA_DIR: path.join(repo, 'data-never-created') });
  expect(await embedded.exited).toBe(1);
  expect(embedded.output()).toContain('PGlite');
});
