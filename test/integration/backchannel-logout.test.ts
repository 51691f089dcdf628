import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { count, eq } from 'drizzle-orm';
import { createRemoteJWKSet, decodeJwt, jwtVerify } from 'jose';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createBackchannelNoticeSender } from '../../src/features/backchannel/post-notice.js';
import { oauthClients } from '../../src/features/clients/tables.js';
import { outbox } from '../../src/features/mail/tables.js';
import { ManualClock } from '../../src/infra/clock.js';
import { freePort } from '../helpers/free-port.js';
import { InjectBrowser, authorizeUrl, pkce } from '../helpers/inject-browser.js';
import { SmtpCatcher, tokenIn } from '../helpers/smtp.js';
import { PASSWORD, bearer, createTestApp, json, uniqueEmail, type TestApp } from '../helpers/test-app.js';

// OpenID Connect Back-Channel Logout 1.0 (docs/openid-provider.md): every session of a client with a
// backchannel_logout_uri that ends — whatever the cause — writes one outbox notice in the same
// transaction; the outbox POSTs a signed logout token to the client, retrying failures.

const EVENT = 'http://schemas.openid.net/event/backchannel-logout';

interface Received {
  token: string;
  contentType: string | undefined;
  status: number;
}

let t: TestApp;
let smtp: SmtpCatcher;
let issuer: string;
let receiver: Server;
let receiverUrl: string;
const received: Received[] = [];
/** Answers for the next requests, in order (a status, a redirect elsewhere, or none at all); 200 when empty. */
const plan: Array<number | 'redirect' | 'hang'> = [];
/** Requests to the redirect's target (must stay 0: redirects are not followed). */
let redirectedHits = 0;
let web: { id: string; secret: string };
let second: { id: string; secret: string };
let silent: { id: string; secret: string };

const db = () => t.app.services.infra.database.db;
const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`;

async function notices(): Promise<number> {
  const [row] = await db().select({ n: count() }).from(outbox).where(eq(outbox.kind, 'backchannel_logout'));
  return Number(row?.n ?? 0);
}

async function until(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000) {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

async function firstPartyClient(name: string, withUri: boolean) {
  const { client, secret } = await t.app.services.clients.create(null, {
    name,
    type: 'confidential',
    firstParty: true,
    grantTypes: ['password', 'refresh_token'],
  });
  // Registration takes https URIs only; the receiver of this test is plain http on loopback.
  if (withUri)
    await db()
      .update(oauthClients)
      .set({ backchannelLogoutUri: `${receiverUrl}/logout/${name}` })
      .where(eq(oauthClients.clientId, client.clientId));
  return { id: client.clientId, secret: secret as string };
}

async function register(email = uniqueEmail('bc')) {
  const res = await t.app.inject({ method: 'POST', url: '/auth/register', payload: { email, password: PASSWORD } });
  expect(res.statusCode, res.body).toBe(201);
  return { email, userId: json(res).id as string };
}

/** A sign-in through a client's password grant: one session bound to the client. */
async function signIn(c: { id: string; secret: string }, email: string, password = PASSWORD) {
  const res = await t.app.inject({
    method: 'POST',
    url: '/auth/token',
    headers: { authorization: basic(c.id, c.secret), 'content-type': 'application/x-www-form-urlencoded' },
    payload: new URLSearchParams({ grant_type: 'password', username: email, password }).toString(),
  });
  expect(res.statusCode, res.body).toBe(200);
  const body = json(res) as { access_token: string; refresh_token: string };
  return { access: body.access_token, refresh: body.refresh_token, sid: decodeJwt(body.access_token).sid as string };
}

/**
 * Runs `cause` and checks it wrote exactly one notice per ended client session (the outbox rows,
 * counted before and after), and that each arrives as a logout token that verifies against the live JWKS.
 */
async function expectLogouts(cause: () => Promise<unknown>, expected: Array<{ sid: string; sub: string; aud: string }>) {
  const before = await notices();
  const seen = received.length;
  await cause();
  expect(await notices()).toBe(before + expected.length);
  await until(() => received.length >= seen + expected.length, `${expected.length} logout tokens`);
  // Nothing more comes.
  await new Promise((r) => setTimeout(r, 200));
  const fresh = received.slice(seen);
  expect(fresh).toHaveLength(expected.length);
  const jwks = createRemoteJWKSet(new URL(`${issuer}/.well-known/jwks.json`));
  const claims = [];
  for (const r of fresh) {
    expect(r.contentType).toBe('application/x-www-form-urlencoded');
    const { payload, protectedHeader } = await jwtVerify(r.token, jwks, {
      issuer,
      typ: 'logout+jwt',
      algorithms: ['RS256'],
      requiredClaims: ['iat', 'exp', 'jti', 'sub', 'sid', 'events'],
      currentDate: t.clock.now(),
    });
    expect(protectedHeader.typ).toBe('logout+jwt');
    expect(payload.events).toStrictEqual({ [EVENT]: {} });
    expect(payload).not.toHaveProperty('nonce');
    expect((payload.exp as number) - (payload.iat as number)).toBe(120);
    claims.push({ sid: payload.sid, sub: payload.sub, aud: payload.aud });
  }
  const key = (c: { sid: unknown }) => String(c.sid);
  expect(claims.sort((a, b) => key(a).localeCompare(key(b)))).toEqual([...expected].sort((a, b) => key(a).localeCompare(key(b))));
}

beforeAll(async () => {
  smtp = await SmtpCatcher.start();
  receiver = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      if (req.url === '/elsewhere') {
        redirectedHits++;
        res.writeHead(200).end();
        return;
      }
      const answer = plan.shift() ?? 200;
      const status = answer === 'redirect' ? 307 : answer === 'hang' ? 0 : answer;
      received.push({ token: new URLSearchParams(body).get('logout_token') ?? '', contentType: req.headers['content-type'], status });
      if (answer === 'hang') return;
      if (answer === 'redirect') res.writeHead(307, { location: `${receiverUrl}/elsewhere` }).end();
      else res.writeHead(status, { 'content-type': 'text/plain' }).end('x'.repeat(100_000));
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;
  const port = await freePort();
  issuer = `http://127.0.0.1:${port}`;
  t = await createTestApp({
    env: {
      PUBLIC_URL: issuer,
      SMTP_SERVER: '127.0.0.1',
      SMTP_PORT: String(smtp.port),
      SMTP_TIMEOUT_MS: '5000',
      OUTBOX_POLL_INTERVAL_MS: '50',
      EMAIL_RETRY_DELAY_MS: '1000',
    },
    clock: new ManualClock(new Date()),
  });
  await t.app.listen({ port, host: '127.0.0.1' });
  web = await firstPartyClient('web', true);
  second = await firstPartyClient('second', true);
  silent = await firstPartyClient('silent', false);
});
afterAll(async () => {
  await t?.close();
  await smtp?.close();
  receiver?.closeAllConnections();
  await new Promise((r) => receiver?.close(r));
});
beforeEach(() => {
  plan.length = 0;
});

describe('a notice per ended client session, whatever the cause', () => {
  it('logout (its own session only)', async () => {
    const u = await register();
    const a = await signIn(web, u.email);
    const b = await signIn(web, u.email);
    await expectLogouts(() => t.app.inject({ method: 'POST', url: '/auth/logout', headers: bearer(a.access) }), [{ sid: a.sid, sub: u.userId, aud: web.id }]);
    // The other session lives on.
    expect((await t.app.inject({ method: 'GET', url: '/auth/userinfo', headers: bearer(b.access) })).statusCode).toBe(200);
  });

  it('logout-all: one per client session; none for the implicit client or a client without a URI', async () => {
    const u = await register();
    const a = await signIn(web, u.email);
    const b = await signIn(second, u.email);
    await signIn(silent, u.email);
    const own = json(await t.app.inject({ method: 'POST', url: '/auth/login', payload: { email: u.email, password: PASSWORD } }));
    await expectLogouts(
      () => t.app.inject({ method: 'POST', url: '/auth/logout/all', headers: bearer(own.access_token as string) }),
      [
        { sid: a.sid, sub: u.userId, aud: web.id },
        { sid: b.sid, sub: u.userId, aud: second.id },
      ],
    );
  });

  it('a user revoking one of their sessions', async () => {
    const u = await register();
    const a = await signIn(web, u.email);
    const b = await signIn(web, u.email);
    await expectLogouts(
      () => t.app.inject({ method: 'DELETE', url: `/users/me/sessions/${a.sid}`, headers: bearer(b.access) }),
      [{ sid: a.sid, sub: u.userId, aud: web.id }],
    );
  });

  it('token revocation (RFC 7009)', async () => {
    const u = await register();
    const a = await signIn(web, u.email);
    await expectLogouts(
      () =>
        t.app.inject({
          method: 'POST',
          url: '/auth/revoke',
          headers: { authorization: basic(web.id, web.secret), 'content-type': 'application/x-www-form-urlencoded' },
          payload: `token=${a.refresh}`,
        }),
      [{ sid: a.sid, sub: u.userId, aud: web.id }],
    );
  });

  it('refresh-token reuse', async () => {
    const u = await register();
    const a = await signIn(web, u.email);
    const refresh = (token: string) =>
      t.app.inject({
        method: 'POST',
        url: '/auth/token',
        headers: { authorization: basic(web.id, web.secret), 'content-type': 'application/x-www-form-urlencoded' },
        payload: `grant_type=refresh_token&refresh_token=${token}`,
      });
    expect((await refresh(a.refresh)).statusCode).toBe(200);
    t.clock.advance(11_000);
    await expectLogouts(async () => expect(json(await refresh(a.refresh)).error).toBe('invalid_grant'), [{ sid: a.sid, sub: u.userId, aud: web.id }]);
  });

  it('an administrator revoking the sessions, and disabling the user', async () => {
    const adminEmail = uniqueEmail('bc-admin');
    await t.app.services.admin.createUser(null, { email: adminEmail, password: PASSWORD, emailVerified: true, roles: ['admin', 'user'], sendInvite: false });
    const admin = json(await t.app.inject({ method: 'POST', url: '/auth/login', payload: { email: adminEmail, password: PASSWORD } })).access_token as string;
    const u = await register();
    const a = await signIn(web, u.email);
    await expectLogouts(
      () => t.app.inject({ method: 'POST', url: `/admin/users/${u.userId}/sessions/revoke`, headers: bearer(admin) }),
      [{ sid: a.sid, sub: u.userId, aud: web.id }],
    );
    const b = await signIn(second, u.email);
    await expectLogouts(
      () => t.app.inject({ method: 'POST', url: `/admin/users/${u.userId}/disable`, headers: bearer(admin) }),
      [{ sid: b.sid, sub: u.userId, aud: second.id }],
    );
  });

  it('a password reset', async () => {
    const u = await register();
    const a = await signIn(web, u.email);
    expect((await t.app.inject({ method: 'POST', url: '/auth/password/forgot', payload: { email: u.email } })).statusCode).toBe(202);
    const token = tokenIn(await smtp.waitFor(u.email, /reset/i));
    await expectLogouts(
      async () =>
        expect(
          (await t.app.inject({ method: 'POST', url: '/auth/password/reset', payload: { token, password: 'another long passphrase 7' } })).statusCode,
        ).toBe(204),
      [{ sid: a.sid, sub: u.userId, aud: web.id }],
    );
  });

  it('a password change (the other sessions)', async () => {
    const u = await register();
    const a = await signIn(web, u.email);
    const b = await signIn(web, u.email);
    await expectLogouts(
      () =>
        t.app.inject({
          method: 'POST',
          url: '/users/me/password',
          headers: bearer(b.access),
          payload: { current_password: PASSWORD, new_password: 'yet another passphrase 9' },
        }),
      [{ sid: a.sid, sub: u.userId, aud: web.id }],
    );
  });

  it('the client deleted: every session it held', async () => {
    const doomed = await firstPartyClient('doomed', true);
    const u1 = await register();
    const u2 = await register();
    const a = await signIn(doomed, u1.email);
    const b = await signIn(doomed, u2.email);
    await expectLogouts(
      () => t.app.services.clients.delete(null, doomed.id),
      [
        { sid: a.sid, sub: u1.userId, aud: doomed.id },
        { sid: b.sid, sub: u2.userId, aud: doomed.id },
      ],
    );
  });

  it('the account deleted (by the user, or by an administrator): every client session', async () => {
    const u = await register();
    const a = await signIn(web, u.email);
    const b = await signIn(second, u.email);
    await expectLogouts(
      async () =>
        expect((await t.app.inject({ method: 'DELETE', url: '/users/me', headers: bearer(a.access), payload: { password: PASSWORD } })).statusCode).toBe(204),
      [
        { sid: a.sid, sub: u.userId, aud: web.id },
        { sid: b.sid, sub: u.userId, aud: second.id },
      ],
    );
    const v = await register();
    const c = await signIn(web, v.email);
    const adminEmail = uniqueEmail('bc-admin');
    await t.app.services.admin.createUser(null, { email: adminEmail, password: PASSWORD, emailVerified: true, roles: ['admin', 'user'], sendInvite: false });
    const admin = json(await t.app.inject({ method: 'POST', url: '/auth/login', payload: { email: adminEmail, password: PASSWORD } })).access_token as string;
    await expectLogouts(
      async () => expect((await t.app.inject({ method: 'DELETE', url: `/admin/users/${v.userId}`, headers: bearer(admin) })).statusCode).toBe(204),
      [{ sid: c.sid, sub: v.userId, aud: web.id }],
    );
  });

  it('a session that was already over writes nothing (logout twice, in parallel)', async () => {
    const u = await register();
    const a = await signIn(web, u.email);
    await expectLogouts(
      () => Promise.all([1, 2, 3].map(() => t.app.inject({ method: 'POST', url: '/auth/logout', payload: { refresh_token: a.refresh } }))),
      [{ sid: a.sid, sub: u.userId, aud: web.id }],
    );
  });
});

describe('single sign-on: the hosted pages end client sessions too', () => {
  /** A first-party public client of the authorization code flow, with a back-channel logout URI. */
  async function codeClient(name: string) {
    const redirectUri = `http://127.0.0.1/${name}/cb`;
    const { client } = await t.app.services.clients.create(null, {
      name,
      type: 'public',
      firstParty: true,
      redirectUris: [redirectUri],
      postLogoutRedirectUris: [`http://127.0.0.1/${name}/bye`],
      grantTypes: ['authorization_code', 'refresh_token'],
      scopes: ['openid', 'email'],
    });
    await db()
      .update(oauthClients)
      .set({ backchannelLogoutUri: `${receiverUrl}/logout/${name}` })
      .where(eq(oauthClients.clientId, client.clientId));
    return { id: client.clientId, redirectUri };
  }

  /** The browser signs in to `c` (through the sign-in page, or silently with its SSO session): the client session's sid. */
  async function codeSignIn(b: InjectBrowser, c: { id: string; redirectUri: string }, email: string): Promise<{ sid: string; idToken: string }> {
    const p = pkce();
    const opened = await b.open(
      authorizeUrl({ client_id: c.id, redirect_uri: c.redirectUri, scope: 'openid email', code_challenge: p.challenge, code_challenge_method: 'S256' }),
    );
    const external = opened.external ?? (await b.submit(opened.res, { email, password: PASSWORD })).external;
    const code = external?.searchParams.get('code');
    expect(code, external?.href).toBeTruthy();
    const ex = await t.app.inject({
      method: 'POST',
      url: '/auth/token',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      payload: new URLSearchParams({
        grant_type: 'authorization_code',
        code: code ?? '',
        redirect_uri: c.redirectUri,
        client_id: c.id,
        code_verifier: p.verifier,
      }).toString(),
    });
    expect(ex.statusCode, ex.body).toBe(200);
    const body = json(ex) as { access_token: string; id_token: string };
    return { sid: String(decodeJwt(body.access_token).sid), idToken: body.id_token };
  }

  it('RP-initiated logout ends the browser session: one logout token to each client signed in through it', async () => {
    const u = await register();
    const one = await codeClient('sso-one');
    const two = await codeClient('sso-two');
    const b = new InjectBrowser(t.app);
    const a = await codeSignIn(b, one, u.email);
    // Single sign-on: no password this time.
    const c = await codeSignIn(b, two, u.email);
    const confirm = await b.get(`/auth/end-session?id_token_hint=${a.idToken}&post_logout_redirect_uri=${encodeURIComponent('http://127.0.0.1/sso-one/bye')}`);
    expect(confirm.statusCode, confirm.body).toBe(200);
    await expectLogouts(
      () => b.submit(confirm, { confirm: 'yes' }),
      [
        { sid: a.sid, sub: u.userId, aud: one.id },
        { sid: c.sid, sub: u.userId, aud: two.id },
      ],
    );
  });

  it('signing in as another account in the same browser ends the first account’s client sessions, with their notices', async () => {
    const first = await register();
    const other = await register();
    const one = await codeClient('sso-switch');
    const b = new InjectBrowser(t.app);
    const a = await codeSignIn(b, one, first.email);
    await expectLogouts(async () => {
      const p = pkce();
      const { res } = await b.open(
        authorizeUrl({
          client_id: one.id,
          redirect_uri: one.redirectUri,
          scope: 'openid email',
          code_challenge: p.challenge,
          code_challenge_method: 'S256',
          prompt: 'login',
        }),
      );
      const { external } = await b.submit(res, { email: other.email, password: PASSWORD });
      expect(external?.searchParams.get('code')).toBeTruthy();
    }, [{ sid: a.sid, sub: first.userId, aud: one.id }]);
  });
});

describe('delivery', () => {
  it('a 500 is retried after the back-off (on the injected clock) and the retry is accepted', async () => {
    const u = await register();
    const a = await signIn(web, u.email);
    const seen = received.length;
    plan.push(500);
    await t.app.inject({ method: 'POST', url: '/auth/logout', headers: bearer(a.access) });
    await until(() => received.length === seen + 1, 'the first attempt');
    await until(
      async () =>
        (
          await db()
            .select()
            .from(outbox)
            .where(eq(outbox.recipient, `${receiverUrl}/logout/web`))
        ).some((r) => r.status === 'pending' && r.attempts === 1),
      'the retry to be planned',
    );
    // Not before its time.
    await new Promise((r) => setTimeout(r, 300));
    expect(received.length).toBe(seen + 1);
    t.clock.advance(1100);
    await until(() => received.length === seen + 2, 'the retry');
    expect(received[seen]!.status).toBe(500);
    expect(received[seen + 1]!.status).toBe(200);
    // A fresh token each attempt (its own jti), for the same session.
    expect(decodeJwt(received[seen]!.token).jti).not.toBe(decodeJwt(received[seen + 1]!.token).jti);
    expect(decodeJwt(received[seen + 1]!.token).sid).toBe(a.sid);
    await until(async () => (await db().select().from(outbox).where(eq(outbox.status, 'sent'))).some((r) => r.payload.sid === a.sid), 'sent');
  });

  it('a final 4xx (400) is not retried: the row is failed; a 429 is retried', async () => {
    const u = await register();
    const a = await signIn(web, u.email);
    const seen = received.length;
    plan.push(400);
    await t.app.inject({ method: 'POST', url: '/auth/logout', headers: bearer(a.access) });
    await until(async () => (await db().select().from(outbox).where(eq(outbox.status, 'failed'))).some((r) => r.payload.sid === a.sid), 'failed');
    const [row] = (await db().select().from(outbox).where(eq(outbox.status, 'failed'))).filter((r) => r.payload.sid === a.sid);
    expect(row?.lastError).toMatch(/HTTP 400/);
    expect(row?.lastError).not.toContain('xxxx');
    t.clock.advance(10_000);
    await new Promise((r) => setTimeout(r, 300));
    expect(received.length).toBe(seen + 1);

    const b = await signIn(web, u.email);
    plan.push(429);
    await t.app.inject({ method: 'POST', url: '/auth/logout', headers: bearer(b.access) });
    await until(() => received.length === seen + 2, 'the 429');
    await until(async () => (await db().select().from(outbox).where(eq(outbox.status, 'pending'))).some((r) => r.payload.sid === b.sid), 'planned retry');
    t.clock.advance(1100);
    await until(() => received.length === seen + 3, 'the retry after 429');
  });

  it('bounded: a redirect is not followed (retried later), and an endpoint that never answers times out (retried too)', async () => {
    const send = createBackchannelNoticeSender({ keys: t.app.services.infra.keys, clock: t.clock, issuer, timeoutMs: 300 });
    const row = (path: string) =>
      ({
        id: 'r',
        kind: 'backchannel_logout',
        recipient: `${receiverUrl}${path}`,
        payload: { client_id: web.id, sub: 's', sid: 'x' },
      }) as unknown as Parameters<typeof send>[0];
    plan.push('redirect');
    await expect(send(row('/logout/web'))).rejects.toMatchObject({ name: 'NoticeRefused', permanent: false, message: expect.stringContaining('307') });
    expect(redirectedHits).toBe(0);
    plan.push('hang');
    const started = Date.now();
    const err = await send(row('/logout/web')).then(
      () => null,
      (e: unknown) => e as { name: string; permanent?: boolean },
    );
    expect(err?.name).toBe('TimeoutError');
    expect(err?.permanent).toBeUndefined();
    expect(Date.now() - started).toBeLessThan(3000);
    await expect(send(row('/logout/web'))).resolves.toBe('HTTP 200');
  });
});
