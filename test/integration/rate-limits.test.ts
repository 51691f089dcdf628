import { and, eq } from 'drizzle-orm';
import type { LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { users } from '../../src/features/accounts/tables.js';
import { auditEvents } from '../../src/features/audit/tables.js';
import { PASSWORD, bearer, createTestApp, json, uniqueEmail, type TestApp } from '../helpers/test-app.js';

// Request limits per endpoint (per IP, per email) and brute-force protection of
// password sign-ins (growing delays per address, failures per IP). Counters are
// this process's own here (no REDIS_URL); test/services/rate-limits-redis.test.ts
// covers Redis. Every test uses its own IPs and addresses: counters live as long as the app.

let t: TestApp;
/** TRUST_PROXY=127.0.0.1 over the same database: the forwarded client address counts. */
let proxied: TestApp;

beforeAll(async () => {
  t = await createTestApp({
    env: {
      RATE_LIMIT_ENABLED: 'true',
      BRUTE_FORCE_ENABLED: 'true',
      RATE_LIMIT_SIGN_IN_IP: '15/5m',
      RATE_LIMIT_SIGN_IN_ACCOUNT: '12/5m',
      RATE_LIMIT_CODE_EXCHANGE_IP: '3/5m',
      RATE_LIMIT_REFRESH_IP: '3/5m',
      RATE_LIMIT_REGISTER_IP: '3/1h',
      RATE_LIMIT_REGISTER_ACCOUNT: '2/1h',
      RATE_LIMIT_FORGOT_PASSWORD_IP: '3/1h',
      RATE_LIMIT_FORGOT_PASSWORD_ACCOUNT: '2/1h',
      RATE_LIMIT_RESEND_CONFIRMATION_IP: '3/1h',
      RATE_LIMIT_RESEND_CONFIRMATION_ACCOUNT: '2/1h',
      RATE_LIMIT_MFA_VERIFY_IP: '3/5m',
      RATE_LIMIT_SOCIAL_AUTHORIZE_IP: '3/5m',
      RATE_LIMIT_REVOKE_IP: '3/5m',
      RATE_LIMIT_USERINFO_IP: '3/5m',
      BRUTE_FORCE_IP_FAILURES: '10/15m',
    },
  });
  proxied = await createTestApp({
    db: t.db,
    env: {
      TRUST_PROXY: '127.0.0.1',
      RATE_LIMIT_ENABLED: 'true',
      RATE_LIMIT_SIGN_IN_IP: '3/5m',
      RATE_LIMIT_TOKEN_IP: '4/5m',
      RATE_LIMIT_FORGOT_PASSWORD_IP: '3/1h',
    },
  });
});
afterAll(async () => {
  await proxied?.close();
  await t?.close();
});

let nextIp = 0;
/** A client address no other test uses. */
const freshIp = () => `10.${Math.floor(++nextIp / 250) + 1}.${nextIp % 250}.7`;

const login = (email: string, password: string, ip: string, app = t) =>
  app.app.inject({ method: 'POST', url: '/auth/login', payload: { email, password }, remoteAddress: ip });
const tokenGrant = (form: Record<string, string>, ip: string, app = t) =>
  app.app.inject({
    method: 'POST',
    url: '/auth/token',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    payload: new URLSearchParams(form).toString(),
    remoteAddress: ip,
  });

/** A confirmed account (REQUIRE_EMAIL_VERIFICATION is off here), registered from an address of its own. */
async function account(): Promise<string> {
  const email = uniqueEmail('rl');
  const res = await t.app.inject({ method: 'POST', url: '/auth/register', payload: { email, password: PASSWORD }, remoteAddress: freshIp() });
  expect(res.statusCode).toBe(201);
  return email;
}

function expect429(res: LightMyRequestResponse, code: 'rate_limited' | 'sign_in_throttled'): number {
  expect(res.statusCode, res.body).toBe(429);
  expect(json(res).error).toBe(code);
  const retryAfter = res.headers['retry-after'];
  expect(String(retryAfter)).toMatch(/^[1-9]\d*$/);
  return Number(retryAfter);
}

describe('brute force on one account', () => {
  it('the 6th rapid failure on one account is refused with 429, while another account from another IP is unaffected', async () => {
    const [victim, bystander] = [await account(), await account()];
    const ip = freshIp();
    for (let i = 1; i <= 5; i++) expect((await login(victim, `wrong password ${i}`, ip)).statusCode).toBe(400);
    expect429(await login(victim, 'wrong password 6', ip), 'sign_in_throttled');

    const other = freshIp();
    expect((await login(bystander, 'a wrong one', other)).statusCode).toBe(400);
    expect((await login(bystander, PASSWORD, other)).statusCode).toBe(200);
  });

  it('the right password during the delay still gets 429; after it, it works and clears the count', async () => {
    const email = await account();
    const ip = freshIp();
    for (let i = 1; i <= 5; i++) expect((await login(email, `wrong password ${i}`, ip)).statusCode).toBe(400);
    const right = await login(email, PASSWORD, ip);
    const wait = expect429(right, 'sign_in_throttled');
    expect(wait).toBe(1);
    // Not a hint: exactly the answer a wrong password gets during the delay.
    const wrong = await login(email, 'still wrong', ip);
    expect([wrong.statusCode, wrong.headers['retry-after'], wrong.body]).toEqual([right.statusCode, right.headers['retry-after'], right.body]);

    t.clock.advance(wait * 1000);
    const ok = await login(email, PASSWORD, ip);
    expect(ok.statusCode, ok.body + JSON.stringify(ok.headers)).toBe(200);

    // Cleared: a wrong password now is failure 1 of 5 again, not a 6th that starts a longer delay.
    expect((await login(email, 'wrong again', ip)).statusCode).toBe(400);
    expect((await login(email, 'and again', ip)).statusCode).toBe(400);

    // The owner sees when a delay started, without a secret in it.
    const audit = json(await t.app.inject({ method: 'GET', url: '/users/me/audit', headers: bearer(json(ok).access_token as string) })).events as Array<{
      type: string;
      details: Record<string, unknown>;
    }>;
    const throttled = audit.filter((e) => e.type === 'sign_in_throttled');
    expect(throttled).toEqual([expect.objectContaining({ details: { scope: 'account', failures: 5, delay_seconds: 1 } })]);
    expect(JSON.stringify(audit)).not.toContain('wrong password');
  });

  it('delays grow with further failures (1 s, 2 s, 4 s …), and no failure during a delay counts', async () => {
    const email = await account();
    const ip = freshIp();
    for (let i = 1; i <= 5; i++) await login(email, `wrong ${i}`, ip);
    const waits: number[] = [];
    for (let round = 0; round < 3; round++) {
      waits.push(expect429(await login(email, 'during the delay', ip), 'sign_in_throttled'));
      t.clock.advance(waits[round]! * 1000);
      expect((await login(email, `wrong after the delay ${round}`, ip)).statusCode).toBe(400);
    }
    expect(waits).toEqual([1, 2, 4]);
    t.clock.advance(8000);
  });

  it('an unknown address is delayed exactly like a known one (the answer reveals nothing)', async () => {
    const known = await account();
    const unknown = uniqueEmail('nobody');
    const answers: string[][] = [[], []];
    for (const [n, email] of [known, unknown].entries()) {
      const ip = freshIp();
      for (let i = 1; i <= 6; i++) {
        const res = await login(email, `guess ${i}`, ip);
        answers[n]!.push(`${res.statusCode} ${res.headers['retry-after'] ?? '-'} ${res.body}`);
      }
    }
    expect(answers[0]).toEqual(answers[1]);
    expect(answers[0]![5]).toMatch(/^429 1 /);
  });

  it('credential stuffing: failures for one account from many IPs add up', async () => {
    const email = await account();
    for (let i = 1; i <= 5; i++) expect((await login(email, `leaked password ${i}`, freshIp())).statusCode).toBe(400);
    expect429(await login(email, 'leaked password 6', freshIp()), 'sign_in_throttled');
    expect429(await login(email, PASSWORD, freshIp()), 'sign_in_throttled');
  });

  it('password spraying: failed sign-ins from one IP over many accounts throttle that IP, and only it', async () => {
    const ip = freshIp();
    // BRUTE_FORCE_IP_FAILURES=10/15m; one failure per account, so no account is ever delayed.
    for (let i = 1; i <= 10; i++) expect((await login(uniqueEmail('spray'), 'Summer2026!', ip)).statusCode).toBe(400);
    const real = await account();
    const wait = expect429(await login(real, PASSWORD, ip), 'sign_in_throttled');
    expect(wait).toBeGreaterThan(800);
    expect(wait).toBeLessThanOrEqual(900);
    // The same account from elsewhere is fine.
    expect((await login(real, PASSWORD, freshIp())).statusCode).toBe(200);
    t.clock.advance(wait * 1000);
    expect((await login(real, PASSWORD, ip)).statusCode).toBe(200);
  });

  it('a password reset clears the delay of the address', async () => {
    const email = await account();
    const ip = freshIp();
    for (let i = 1; i <= 5; i++) await login(email, `wrong ${i}`, ip);
    expect429(await login(email, PASSWORD, ip), 'sign_in_throttled');
    // The reset link from the mail file the app wrote (no SMTP in tests).
    expect((await t.app.inject({ method: 'POST', url: '/auth/password/forgot', payload: { email }, remoteAddress: freshIp() })).statusCode).toBe(202);
    const token = await resetTokenFor(email);
    expect((await t.app.inject({ method: 'POST', url: '/auth/password/reset', payload: { token, password: 'a fresh passphrase 77' } })).statusCode).toBe(204);
    expect((await login(email, 'a fresh passphrase 77', ip)).statusCode).toBe(200);
  });
});

describe('known clients: strangers cannot keep the owner out', () => {
  // Each test first lets the request limit per address (RATE_LIMIT_SIGN_IN_ACCOUNT=12/5m) start afresh.
  const freshWindow = () => t.clock.advance(5 * 60_000 + 1000);
  type AuditEvent = { type: string; details: Record<string, unknown> };
  const auditOf = async (token: string) => json(await t.app.inject({ method: 'GET', url: '/users/me/audit', headers: bearer(token) })).events as AuditEvent[];

  it('during a delay strangers built, every unknown client gets 429, even with the right password, but the owner signs in from a known client (same IPv6 /64)', async () => {
    const owner = await account();
    const home = '2001:db8:5a:1::10';
    expect((await login(owner, PASSWORD, home)).statusCode).toBe(200);
    freshWindow();

    const stranger = freshIp();
    for (let i = 1; i <= 5; i++) expect((await login(owner, `stranger guess ${i}`, stranger)).statusCode).toBe(400);
    expect429(await login(owner, 'stranger guess 6', stranger), 'sign_in_throttled');
    expect429(await login(owner, PASSWORD, stranger), 'sign_in_throttled');
    expect429(await login(owner, PASSWORD, freshIp()), 'sign_in_throttled');
    expect429(await login(owner, PASSWORD, '2001:db8:5a:2::10'), 'sign_in_throttled');

    // The owner's device got another address in the same /64: still the known client.
    const ok = await login(owner, PASSWORD, '2001:db8:5a:1::99');
    expect(ok.statusCode, ok.body).toBe(200);
    // A typo at home is an ordinary failure, not a 429.
    expect((await login(owner, 'a typo', home)).statusCode).toBe(400);
    // The owner's success cleared nothing the strangers built: the address is still delayed for them.
    expect429(await login(owner, PASSWORD, stranger), 'sign_in_throttled');

    const throttled = (await auditOf(json(ok).access_token as string)).filter((e) => e.type === 'sign_in_throttled');
    expect(throttled).toEqual([expect.objectContaining({ details: { scope: 'account', failures: 5, delay_seconds: 1 } })]);
  });

  it("the owner's own failures from a known client are delayed by their own counter, which strangers neither feed nor reset", async () => {
    const owner = await account();
    const home = freshIp();
    expect((await login(owner, PASSWORD, home)).statusCode).toBe(200);
    freshWindow();

    for (let i = 1; i <= 5; i++) expect((await login(owner, `forgot which one ${i}`, home)).statusCode).toBe(400);
    expect(expect429(await login(owner, PASSWORD, home), 'sign_in_throttled')).toBe(1);
    // Not counted toward the address: a stranger is at failure 1, and the owner elsewhere (a new client) signs in.
    const stranger = freshIp();
    expect((await login(owner, 'stranger guess', stranger)).statusCode).toBe(400);
    t.clock.advance(1000);
    // The stranger's state changed nothing at home: the next failure is the 6th there, and the delay doubles.
    expect((await login(owner, 'forgot which one 6', home)).statusCode).toBe(400);
    expect(expect429(await login(owner, PASSWORD, home), 'sign_in_throttled')).toBe(2);
    expect((await login(owner, PASSWORD, freshIp())).statusCode).toBe(200);
    t.clock.advance(2000);
    expect((await login(owner, PASSWORD, home)).statusCode).toBe(200);
    // Past the per-IP failure window too (BRUTE_FORCE_IP_FAILURES=10/15m still counts a known client's failures).
    t.clock.advance(15 * 60_000 + 1000);

    // Cleared by the success: five free attempts again.
    for (let i = 1; i <= 5; i++) expect((await login(owner, `again ${i}`, home)).statusCode).toBe(400);
    expect429(await login(owner, 'again 6', home), 'sign_in_throttled');

    // The owner sees each delay with its scope: here only their own client's.
    const later = await login(owner, PASSWORD, freshIp());
    expect(later.statusCode, later.body).toBe(200);
    const throttled = (await auditOf(json(later).access_token as string)).filter((e) => e.type === 'sign_in_throttled');
    // Newest first.
    expect(throttled.map((e) => e.details)).toEqual([
      { scope: 'client', failures: 5, delay_seconds: 1 },
      { scope: 'client', failures: 6, delay_seconds: 2 },
      { scope: 'client', failures: 5, delay_seconds: 1 },
    ]);
  });

  it('a stranger flooding the address past RATE_LIMIT_SIGN_IN_ACCOUNT does not refuse the owner at a known client; guessing there is still slowed', async () => {
    const owner = await account();
    const home = freshIp();
    expect((await login(owner, PASSWORD, home)).statusCode).toBe(200);
    freshWindow();

    // 12/5m per address: the stranger's 13th request (and every other unknown client's) is refused by the request limit.
    const stranger = freshIp();
    for (let i = 1; i <= 12; i++) expect([400, 429]).toContain((await login(owner, `flood ${i}`, stranger)).statusCode);
    expect429(await login(owner, `flood 13`, stranger), 'rate_limited');
    expect429(await login(owner, PASSWORD, freshIp()), 'rate_limited');

    // The owner at home with the right password: in.
    const ok = await login(owner, PASSWORD, home);
    expect(ok.statusCode, ok.body).toBe(200);
    // Guessing from home is judged by home's own counter: 5 free, then delays, whatever the request limit says.
    for (let i = 1; i <= 5; i++) expect((await login(owner, `home guess ${i}`, home)).statusCode).toBe(400);
    expect429(await login(owner, 'home guess 6', home), 'sign_in_throttled');
    expect429(await login(owner, PASSWORD, home), 'sign_in_throttled');
    // A form grant from home is the same client of the same address.
    expect429(await tokenGrant({ grant_type: 'password', username: owner, password: PASSWORD }, home), 'sign_in_throttled');
    t.clock.advance(1000);
    expect((await tokenGrant({ grant_type: 'password', username: owner, password: PASSWORD }, home)).statusCode).toBe(200);
    // Strangers stay limited.
    expect429(await login(owner, PASSWORD, stranger), 'rate_limited');
  });

  it('a client stays known BRUTE_FORCE_KNOWN_CLIENT_TTL (30 days) after its last success, then is a stranger again', async () => {
    const owner = await account();
    const home = freshIp();
    const strangersDelay = async () => {
      const stranger = freshIp();
      for (let i = 1; i <= 5; i++) expect((await login(owner, `guess ${i}`, stranger)).statusCode).toBe(400);
      expect429(await login(owner, PASSWORD, stranger), 'sign_in_throttled');
    };
    expect((await login(owner, PASSWORD, home)).statusCode).toBe(200);

    // 29 days later the client is still known, and this success keeps it known 30 days more.
    t.clock.advance(29 * 86400_000);
    await strangersDelay();
    expect((await login(owner, PASSWORD, home)).statusCode).toBe(200);

    t.clock.advance(29 * 86400_000);
    await strangersDelay();
    expect((await login(owner, 'a typo', home)).statusCode).toBe(400);

    // 30 days after the last success: home is one more unknown client, under the address's delay.
    t.clock.advance(86400_000 + 1000);
    await strangersDelay();
    expect429(await login(owner, PASSWORD, home), 'sign_in_throttled');
  });
});

describe('parallel attempts: each is counted before its password is checked', () => {
  // Request limits off: only brute-force protection stands between the attempts and the hash. A real listening server.
  let guardOnly: TestApp;
  let base: string;
  beforeAll(async () => {
    guardOnly = await createTestApp({ db: t.db, env: { RATE_LIMIT_ENABLED: 'false', BRUTE_FORCE_ENABLED: 'true' } });
    base = await guardOnly.app.listen({ port: 0, host: '127.0.0.1' });
  });
  afterAll(async () => {
    await guardOnly?.close();
  });
  const login = (email: string, password: string) =>
    fetch(`${base}/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email, password }) });

  it('25 parallel passwords, the right one last: only the 5 free attempts are hashed, the rest get 429 before any hashing', async () => {
    const email = await account();
    const [user] = await t.db.handle.db.select().from(users).where(eq(users.email, email));
    const passwords = [...Array.from({ length: 24 }, (_, i) => `parallel guess ${i}`), PASSWORD];
    const answers = await Promise.all(passwords.map((password) => login(email, password)));
    const results = await Promise.all(answers.map(async (r) => `${r.status} ${((await r.json()) as { error?: string }).error ?? ''}`));
    // The hashes actually spent: one sign_in_failed event per wrong password that was checked.
    const checked = await t.db.handle.db
      .select()
      .from(auditEvents)
      .where(and(eq(auditEvents.userId, user!.id), eq(auditEvents.type, 'sign_in_failed')));
    expect(checked).toHaveLength(5);
    expect(results.filter((r) => r === '400 invalid_grant')).toHaveLength(5);
    expect(results.filter((r) => r === '429 sign_in_throttled')).toHaveLength(20);
    // The right password was among the refused: only the first five are free, however fast they come.
    expect(results.at(-1)).toBe('429 sign_in_throttled');
    expect((await login(email, PASSWORD)).status).toBe(429);
  });
});

describe('429 answers', () => {
  it('carry Retry-After in whole seconds and a stable code: OAuth2 shape on the token endpoints, catalogue shape elsewhere', async () => {
    const email = await account();
    const ip = freshIp();
    for (let i = 1; i <= 5; i++) await tokenGrant({ grant_type: 'password', username: email, password: `nope ${i}` }, ip);
    const oauth = await tokenGrant({ grant_type: 'password', username: email, password: PASSWORD }, ip);
    expect429(oauth, 'sign_in_throttled');
    expect(json(oauth)).toEqual({ error: 'sign_in_throttled', error_description: expect.any(String) });
    expect(oauth.headers['cache-control']).toBe('no-store');

    const target = uniqueEmail('limited');
    const reg = () => t.app.inject({ method: 'POST', url: '/auth/register', payload: { email: target, password: PASSWORD }, remoteAddress: freshIp() });
    expect((await reg()).statusCode).toBe(201);
    const second = await reg();
    expect(second.statusCode).toBe(409);
    expect(second.headers['ratelimit-limit']).toBe('2');
    expect(second.headers['ratelimit-remaining']).toBe('0');
    const limited = await reg();
    const wait = expect429(limited, 'rate_limited');
    expect(json(limited)).toEqual({ error: 'rate_limited', message: expect.any(String) });
    expect(wait).toBe(3600);
    expect(limited.headers['ratelimit-reset']).toBe('3600');

    const metrics = await t.app.inject({ method: 'GET', url: '/metrics' });
    expect(metrics.body).toMatch(/tessera_rate_limited_total\{limit="sign_in_delay"\} [1-9]/);
    expect(metrics.body).toMatch(/tessera_rate_limited_total\{limit="register_account"\} [1-9]/);
  });

  it('a malformed body is still a 4xx with its own code, never a 500', async () => {
    const ip = freshIp();
    const bad = await t.app.inject({ method: 'POST', url: '/auth/login', payload: { email: 42 }, remoteAddress: ip });
    expect(bad.statusCode).toBe(400);
    expect(json(bad).error).toBe('invalid_request');
    const noGrant = await tokenGrant({ username: 'x@example.com' }, ip);
    expect(noGrant.statusCode).toBe(400);
  });
});

describe('the client IP', () => {
  const forgot = (app: TestApp, headers: Record<string, string> = {}) =>
    app.app.inject({ method: 'POST', url: '/auth/password/forgot', payload: { email: uniqueEmail('xff') }, headers, remoteAddress: '127.0.0.1' });

  it('a spoofed X-Forwarded-For from an untrusted peer does not reset the per-IP limit (TRUST_PROXY unset)', async () => {
    const answers = [];
    for (let i = 1; i <= 4; i++) answers.push((await forgot(t, { 'x-forwarded-for': `203.0.113.${i}` })).statusCode);
    expect(answers).toEqual([202, 202, 202, 429]);
  });

  it('with TRUST_PROXY=127.0.0.1 the forwarded client address is the one counted', async () => {
    const spread = [];
    for (let i = 1; i <= 4; i++) spread.push((await forgot(proxied, { 'x-forwarded-for': `198.51.100.${i}` })).statusCode);
    expect(spread).toEqual([202, 202, 202, 202]);
    const same = [];
    for (let i = 1; i <= 4; i++) same.push((await forgot(proxied, { 'x-forwarded-for': '198.51.100.200' })).statusCode);
    expect(same).toEqual([202, 202, 202, 429]);
  });

  it('IPv6 clients are counted per /64', async () => {
    const answers = [];
    for (let i = 1; i <= 4; i++) {
      const res = await t.app.inject({
        method: 'POST',
        url: '/auth/password/forgot',
        payload: { email: uniqueEmail('v6') },
        remoteAddress: `2001:db8:77:1::${i}`,
      });
      answers.push(res.statusCode);
    }
    expect(answers).toEqual([202, 202, 202, 429]);
  });
});

describe('the OpenAPI document', () => {
  it('lists the 429 of every limited route, in the body shape of its other errors', async () => {
    const doc = json(await t.app.inject({ method: 'GET', url: '/docs/json' })) as {
      paths: Record<string, Record<string, { responses: Record<string, { content?: Record<string, { schema: { properties: Record<string, unknown> } }> }> }>>;
    };
    const props = (path: string, method: string) =>
      Object.keys(doc.paths[path]?.[method]?.responses['429']?.content?.['application/json']?.schema.properties ?? {});
    expect(props('/auth/token', 'post')).toEqual(expect.arrayContaining(['error', 'error_description']));
    expect(props('/auth/login', 'post')).toEqual(expect.arrayContaining(['error', 'error_description']));
    expect(props('/auth/register', 'post')).toEqual(expect.arrayContaining(['error', 'message']));
    expect(props('/auth/mfa/verify', 'post')).toEqual(expect.arrayContaining(['error', 'message']));
    expect(doc.paths['/users/me']?.get?.responses['429']).toBeUndefined();
  });
});

describe('every credential endpoint has a limit', () => {
  const rows: Array<{ name: string; url: string; payload: (email: string) => Record<string, string>; ok: number; perIp: number; perAccount: number | null }> = [
    { name: 'register', url: '/auth/register', payload: (email) => ({ email, password: PASSWORD }), ok: 201, perIp: 3, perAccount: 2 },
    { name: 'forgot password', url: '/auth/password/forgot', payload: (email) => ({ email }), ok: 202, perIp: 3, perAccount: 2 },
    { name: 'confirmation resend', url: '/auth/confirm-email/resend', payload: (email) => ({ email }), ok: 202, perIp: 3, perAccount: 2 },
    {
      name: 'MFA verification',
      url: '/auth/mfa/verify',
      payload: () => ({ mfa_token: 'not-a-live-token', code: '123456' }),
      ok: 400,
      perIp: 3,
      perAccount: null,
    },
  ];
  for (const row of rows) {
    it(`${row.name}: ${row.perIp} per IP${row.perAccount ? `, ${row.perAccount} per address` : ''}`, async () => {
      const ip = freshIp();
      const byIp: number[] = [];
      for (let i = 0; i <= row.perIp; i++)
        byIp.push((await t.app.inject({ method: 'POST', url: row.url, payload: row.payload(uniqueEmail('row')), remoteAddress: ip })).statusCode);
      expect(byIp).toEqual([...Array(row.perIp).fill(row.ok), 429]);
      if (!row.perAccount) return;
      const email = uniqueEmail('row');
      const byAccount: number[] = [];
      for (let i = 0; i <= row.perAccount; i++)
        byAccount.push((await t.app.inject({ method: 'POST', url: row.url, payload: row.payload(email), remoteAddress: freshIp() })).statusCode);
      expect(byAccount.at(-1)).toBe(429);
      expect(byAccount.slice(0, -1).every((s) => s !== 429 && s < 500)).toBe(true);
    });
  }

  it('sign-in (password grant): 12 per address, from any IPs', async () => {
    const email = await account();
    for (let i = 0; i < 12; i++) expect((await tokenGrant({ grant_type: 'password', username: email, password: PASSWORD }, freshIp())).statusCode).toBe(200);
    const limited = await tokenGrant({ grant_type: 'password', username: email, password: PASSWORD }, freshIp());
    expect429(limited, 'rate_limited');
    expect(json(limited)).toEqual({ error: 'rate_limited', error_description: expect.any(String) });
    // The address's limit is the address's: the email is normalised before counting.
    expect429(await login(`  ${email.toUpperCase()} `, PASSWORD, freshIp()), 'rate_limited');
  });

  it('sign-in (password grant): the per-address limit counts the username, never a decoy email field the client adds', async () => {
    const email = await account();
    const grant = (i: number) => tokenGrant({ grant_type: 'password', username: email, password: PASSWORD, email: uniqueEmail(`decoy${i}`) }, freshIp());
    for (let i = 0; i < 12; i++) expect((await grant(i)).statusCode).toBe(200);
    expect429(await grant(12), 'rate_limited');
    // And the JSON sign-in counts the same address: it is one limit.
    expect429(await login(email, PASSWORD, freshIp()), 'rate_limited');
  });

  it('sign-in: per IP, whatever the addresses (TRUST_PROXY app: 3 per IP)', async () => {
    const ip = freshIp();
    const answers = [];
    for (let i = 0; i < 4; i++) answers.push((await login(uniqueEmail('ip'), 'whatever pass', ip, proxied)).statusCode);
    expect(answers).toEqual([400, 400, 400, 429]);
  });

  it('one-time code exchange (grant_type=authorization_code): 3 per IP', async () => {
    const ip = freshIp();
    const answers = [];
    for (let i = 0; i < 4; i++)
      answers.push((await tokenGrant({ grant_type: 'authorization_code', code: `guess-${i}`, redirect_uri: 'http://app.test/cb' }, ip)).statusCode);
    expect(answers.slice(0, 3).every((s) => s === 400)).toBe(true);
    expect(answers[3]).toBe(429);
  });

  it('web sign-in start (GET /auth/oauth/:provider/authorize, which stores a state row): 3 per IP', async () => {
    const ip = freshIp();
    const answers = [];
    for (let i = 0; i < 4; i++) {
      answers.push(
        (await t.app.inject({ method: 'GET', url: '/auth/oauth/google/authorize?redirect_uri=http%3A%2F%2Fapp.test%2Fcb', remoteAddress: ip })).statusCode,
      );
    }
    // No provider is configured in this app (404 provider_not_found): the attempts count all the same.
    expect(answers).toEqual([404, 404, 404, 429]);
    const head = await t.app.inject({ method: 'HEAD', url: '/auth/oauth/google/authorize?redirect_uri=http%3A%2F%2Fapp.test%2Fcb', remoteAddress: freshIp() });
    // HEAD is not served here (it would store a state row): 405 with Allow: GET.
    expect([head.statusCode, head.headers.allow]).toEqual([405, 'GET']);
  });

  it('refresh: per IP, on /auth/refresh and the refresh_token grant together', async () => {
    const ip = freshIp();
    const answers = [
      (await t.app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: 'x.y.z' }, remoteAddress: ip })).statusCode,
      (await tokenGrant({ grant_type: 'refresh_token', refresh_token: 'x.y.z' }, ip)).statusCode,
      (await t.app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: 'x.y.z' }, remoteAddress: ip })).statusCode,
      (await tokenGrant({ grant_type: 'refresh_token', refresh_token: 'x.y.z' }, ip)).statusCode,
    ];
    expect(answers).toEqual([400, 400, 400, 429]);
  });

  it('the token endpoint as a whole: every grant counts toward RATE_LIMIT_TOKEN_IP (TRUST_PROXY app: 4 per IP)', async () => {
    const ip = freshIp();
    const answers = [
      (await tokenGrant({ grant_type: 'refresh_token', refresh_token: 'x.y.z' }, ip, proxied)).statusCode,
      (await tokenGrant({ grant_type: 'authorization_code', code: 'c' }, ip, proxied)).statusCode,
      (await tokenGrant({ grant_type: 'client_credentials' }, ip, proxied)).statusCode,
      (await tokenGrant({ grant_type: 'refresh_token', refresh_token: 'x.y.z' }, ip, proxied)).statusCode,
      (await tokenGrant({ grant_type: 'refresh_token', refresh_token: 'x.y.z' }, ip, proxied)).statusCode,
    ];
    expect(answers).toEqual([400, 400, 400, 400, 429]);
  });
});

/** The reset token from the newest .eml the app wrote for `email` (no SMTP configured). */
async function resetTokenFor(email: string): Promise<string> {
  const { readdirSync, readFileSync } = await import('node:fs');
  const path = await import('node:path');
  const dir = path.join(t.config.dataDir, 'mail');
  for (let i = 0; i < 100; i++) {
    const files = (() => {
      try {
        return readdirSync(dir).sort().reverse();
      } catch {
        return [];
      }
    })();
    for (const f of files) {
      const text = readFileSync(path.join(dir, f), 'utf8')
        .replace(/=\r?\n/g, '')
        .replace(/=3D/g, '=');
      if (!text.includes(email)) continue;
      const token = /reset\?token=([A-Za-z0-9_-]+)/.exec(text)?.[1];
      if (token) return token;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`no reset mail for ${email}`);
}

describe('the OpenID Provider', () => {
  it('POST /auth/revoke: 3 per IP (RATE_LIMIT_REVOKE_IP), answered in the OAuth2 shape; another IP is unaffected', async () => {
    const ip = freshIp();
    const revoke = (from: string) =>
      t.app.inject({
        method: 'POST',
        url: '/auth/revoke',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        payload: 'token=not-a-token',
        remoteAddress: from,
      });
    const answers: number[] = [];
    for (let i = 0; i < 3; i++) answers.push((await revoke(ip)).statusCode);
    expect(answers).toEqual([200, 200, 200]);
    const limited = await revoke(ip);
    expect(limited.statusCode).toBe(429);
    expect(json(limited)).toMatchObject({ error: 'rate_limited', error_description: expect.any(String) });
    expect(String(limited.headers['retry-after'])).toMatch(/^[1-9]\d*$/);
    expect((await revoke(freshIp())).statusCode).toBe(200);
  });

  it('GET and POST /auth/userinfo share one limit: 3 per IP (RATE_LIMIT_USERINFO_IP)', async () => {
    const ip = freshIp();
    const access = json(await login(await account(), PASSWORD, freshIp())).access_token as string;
    const get = () => t.app.inject({ method: 'GET', url: '/auth/userinfo', headers: bearer(access), remoteAddress: ip });
    const post = () => t.app.inject({ method: 'POST', url: '/auth/userinfo', headers: bearer(access), remoteAddress: ip });
    expect([(await get()).statusCode, (await post()).statusCode, (await get()).statusCode]).toEqual([200, 200, 200]);
    const limited = await post();
    expect429(limited, 'rate_limited');
    expect((await t.app.inject({ method: 'GET', url: '/auth/userinfo', headers: bearer(access), remoteAddress: freshIp() })).statusCode).toBe(200);
  });

  it('a limit on a hosted page answers with a page: 429, Retry-After, the same layout and CSP, the way back to the sign-in', async () => {
    const ip = freshIp();
    const mfa = () =>
      t.app.inject({
        method: 'POST',
        url: '/auth/ui/mfa',
        headers: { 'content-type': 'application/x-www-form-urlencoded', 'sec-fetch-site': 'same-origin' },
        payload: new URLSearchParams({ request: 'a-handle"><b>', csrf: 'x', code: '123456' }).toString(),
        remoteAddress: ip,
      });
    for (let i = 0; i < 3; i++) expect((await mfa()).statusCode).not.toBe(429);
    const limited = await mfa();
    expect(limited.statusCode).toBe(429);
    expect(limited.headers['content-type']).toMatch(/^text\/html/);
    expect(String(limited.headers['retry-after'])).toMatch(/^[1-9]\d*$/);
    expect(limited.headers['content-security-policy']).toContain("default-src 'none'");
    expect(limited.headers['cache-control']).toContain('no-store');
    expect(limited.body).toContain('<h1>Too many attempts</h1>');
    expect(limited.body).toContain('<link rel="stylesheet" href="/auth/ui/style.css">');
    expect(limited.body).toContain('<code>rate_limited</code>');
    expect(limited.body).toContain('href="/auth/ui/sign-in?request=a-handle%22%3E%3Cb%3E"');
    expect(limited.body).not.toContain('<b>');
    // The authorization endpoint (a browser navigation) too.
    const authorizeIp = freshIp();
    const authorize = () => t.app.inject({ method: 'GET', url: '/auth/authorize?client_id=nobody', remoteAddress: authorizeIp });
    for (let i = 0; i < 3; i++) expect((await authorize()).statusCode).toBe(400);
    const page = await authorize();
    expect(page.statusCode).toBe(429);
    expect(page.headers['content-type']).toMatch(/^text\/html/);
    expect(page.body).toContain('<h1>Too many attempts</h1>');
    // The JSON API keeps its JSON 429.
    const apiIp = freshIp();
    for (let i = 0; i < 3; i++)
      await t.app.inject({ method: 'POST', url: '/auth/mfa/verify', payload: { mfa_token: 'x', code: '123456' }, remoteAddress: apiIp });
    expect429(
      await t.app.inject({ method: 'POST', url: '/auth/mfa/verify', payload: { mfa_token: 'x', code: '123456' }, remoteAddress: apiIp }),
      'rate_limited',
    );
  });
});
