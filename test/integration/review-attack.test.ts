import type { FastifyInstance } from 'fastify';
import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generate } from 'otplib';
import { FakeFacebook } from '../helpers/fake-facebook.js';
import { FakeGithub } from '../helpers/fake-github.js';
import { SmtpCatcher, tokenIn } from '../helpers/smtp.js';
import { PASSWORD, bearer, createTestApp, json, signUp, uniqueEmail, type TestApp } from '../helpers/test-app.js';

// Findings of the review of the issue-14 fixes (branch review/attack): each test
// failed on main at e6a05bb.

let t: TestApp;

const call = (app: FastifyInstance, method: 'GET' | 'POST' | 'PATCH' | 'DELETE', url: string, token: string, payload?: object) =>
  app.inject({ method, url, headers: bearer(token), ...(payload ? { payload } : {}) });

async function signIn(email: string, password = PASSWORD) {
  const res = await t.app.inject({ method: 'POST', url: '/auth/login', payload: { email, password } });
  expect(res.statusCode, res.body).toBe(200);
  return json(res) as { access_token: string; refresh_token: string };
}

beforeAll(async () => {
  t = await createTestApp();
});

async function signIn2(app: TestApp, email: string, password: string) {
  const res = await app.app.inject({ method: 'POST', url: '/auth/login', payload: { email, password } });
  expect(res.statusCode, res.body).toBe(200);
  return json(res) as { access_token: string; refresh_token: string };
}
afterAll(async () => {
  await t?.close();
});

describe('the last administrator', () => {
  it('cannot delete its own account through DELETE /users/me (409 last_admin), as through the admin API', async () => {
    const email = uniqueEmail('lastadmin');
    const created = await t.app.services.admin.createUser(null, {
      email,
      password: PASSWORD,
      emailVerified: true,
      roles: ['admin', 'user'],
      sendInvite: false,
    });
    const { access_token } = await signIn(email);
    // Is it the only enabled admin of this database? The test app's database is fresh: yes.
    const res = await call(t.app, 'DELETE', '/users/me', access_token, { password: PASSWORD });
    expect(res.statusCode, res.body).toBe(409);
    expect(json(res).error).toBe('last_admin');
    expect((await t.app.services.admin.getUser(created.id)).roles).toContain('admin');
  });
});

describe('odd input never answers 500', () => {
  // PostgreSQL text cannot hold U+0000: a NUL that reached a query failed the statement.
  it('a NUL in the sign-in address, a name, a role, a search or a path parameter is a 422 validation_failed naming the field', async () => {
    const email = uniqueEmail('nulroot');
    await t.app.services.admin.createUser(null, { email, password: PASSWORD, emailVerified: true, roles: ['admin', 'user'], sendInvite: false });
    const { access_token: admin } = await signIn(email);
    const N = '\u0000';
    const cases: Array<{ method: 'GET' | 'POST' | 'PATCH' | 'DELETE'; url: string; payload?: object; field: string; form?: boolean }> = [
      { method: 'POST', url: '/auth/login', payload: { email: N, password: PASSWORD }, field: 'email' },
      {
        method: 'POST',
        url: '/auth/token',
        payload: { grant_type: 'password', username: `a${N}@example.com`, password: PASSWORD },
        field: 'username',
        form: true,
      },
      { method: 'POST', url: '/auth/register', payload: { email: uniqueEmail('nul'), password: PASSWORD, first_name: N }, field: 'first_name' },
      { method: 'PATCH', url: '/users/me', payload: { last_name: `x${N}` }, field: 'last_name' },
      { method: 'POST', url: '/admin/roles', payload: { name: 'nul-role', description: N, permissions: [] }, field: 'description' },
      { method: 'PATCH', url: '/admin/roles/user', payload: { description: N }, field: 'description' },
      { method: 'GET', url: `/admin/users?email_prefix=${encodeURIComponent(N)}`, field: 'email_prefix' },
      { method: 'GET', url: `/admin/users?role=${encodeURIComponent(N)}`, field: 'role' },
      { method: 'DELETE', url: `/users/me/identities/${encodeURIComponent(N)}`, field: 'provider' },
    ];
    for (const c of cases) {
      const res = await t.app.inject({
        method: c.method,
        url: c.url,
        headers: { ...bearer(admin), ...(c.form ? { 'content-type': 'application/x-www-form-urlencoded' } : {}) },
        ...(c.payload ? { payload: c.form ? new URLSearchParams(c.payload as Record<string, string>).toString() : c.payload } : {}),
      });
      expect([c.method, c.url, res.statusCode], res.body).toEqual([c.method, c.url, 422]);
      expect(json(res)).toMatchObject({ error: 'validation_failed', details: [{ field: c.field }] });
    }
    // A password may hold any byte (bcrypt reads them all): still just a wrong password.
    const wrong = await t.app.inject({ method: 'POST', url: '/auth/login', payload: { email, password: `${PASSWORD}${N}` } });
    expect([wrong.statusCode, json(wrong).error]).toEqual([400, 'invalid_grant']);
  });

  it('an admin list cursor with an extreme date is a 422, not a 500', async () => {
    const email = uniqueEmail('cursorroot');
    await t.app.services.admin.createUser(null, { email, password: PASSWORD, emailVerified: true, roles: ['admin', 'user'], sendInvite: false });
    const { access_token: admin } = await signIn(email);
    for (const at of ['+275760-09-13T00:00:00.000Z', '-271821-04-20T00:00:00.000Z']) {
      const cursor = Buffer.from(JSON.stringify([at, '00000000-0000-0000-0000-000000000000'])).toString('base64url');
      const res = await call(t.app, 'GET', `/admin/users?cursor=${cursor}`, admin);
      expect([at, res.statusCode], res.body).toEqual([at, 422]);
      expect(json(res).error).toBe('validation_failed');
    }
  });
});

describe('email addresses that look like another', () => {
  it('an invisible letter (Hangul filler, Khmer vowel inherent) in the local part is a 422 invalid_email, not a second `admin@`', async () => {
    for (const local of ['admin\u3164', 'admin\uFFA0', 'ad\u115Fmin', 'admin\u1160', 'admin\u17B4']) {
      const res = await t.app.inject({ method: 'POST', url: '/auth/register', payload: { email: `${local}@example.com`, password: PASSWORD } });
      expect([JSON.stringify(local), res.statusCode, json(res).error]).toEqual([JSON.stringify(local), 422, 'invalid_email']);
    }
  });
});

describe('roles:write and the roles the actor holds', () => {
  it('a non-admin cannot add permissions to DEFAULT_ROLE or to a role it holds (a grant to itself that outlives its demotion)', async () => {
    const rootEmail = uniqueEmail('rbacroot');
    await t.app.services.admin.createUser(null, { email: rootEmail, password: PASSWORD, emailVerified: true, roles: ['admin', 'user'], sendInvite: false });
    const { access_token: root } = await signIn(rootEmail);
    const editorRole = `editor-${Date.now()}`;
    expect((await call(t.app, 'POST', '/admin/roles', root, { name: editorRole, permissions: ['roles:read', 'roles:write', 'reports:read'] })).statusCode).toBe(
      201,
    );
    const editorEmail = uniqueEmail('editor');
    const editorUser = await t.app.services.admin.createUser(null, {
      email: editorEmail,
      password: PASSWORD,
      emailVerified: true,
      roles: [editorRole, 'user'],
      sendInvite: false,
    });
    const editor = await signIn(editorEmail);

    // Before its demotion, the editor copies what it holds into `user`, which it (and every sign-up) also holds.
    const planted = await call(t.app, 'PATCH', '/admin/roles/user', editor.access_token, { permissions: ['roles:read', 'roles:write', 'reports:read'] });
    expect(planted.statusCode, planted.body).toBe(403);
    expect(json(planted).error).toBe('forbidden');
    // Its own role too.
    const own = await call(t.app, 'PATCH', `/admin/roles/${editorRole}`, editor.access_token, {
      permissions: ['roles:read', 'roles:write', 'reports:read'],
      description: 'same',
    });
    expect(own.statusCode).toBe(200);

    // The administrator demotes the editor: nothing is left of the role's permissions.
    expect((await call(t.app, 'DELETE', `/admin/users/${editorUser.id}/roles/${editorRole}`, root)).statusCode).toBe(204);
    const after = await t.app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: editor.refresh_token } });
    expect(decodeJwt(json(after).access_token as string).permissions).toEqual([]);
    expect((await call(t.app, 'GET', '/admin/roles', editor.access_token)).statusCode).toBe(403);

    // An administrator still may.
    const byAdmin = await call(t.app, 'PATCH', '/admin/roles/user', root, { permissions: ['reports:read'] });
    expect(byAdmin.statusCode, byAdmin.body).toBe(200);
    expect((await call(t.app, 'PATCH', '/admin/roles/user', root, { permissions: [] })).statusCode).toBe(200);
  });
});

describe('REQUIRE_EMAIL_VERIFICATION=false: what a squatter set up before the address was ever proven', () => {
  let smtp: SmtpCatcher;
  let lax: TestApp;
  beforeAll(async () => {
    smtp = await SmtpCatcher.start();
    lax = await createTestApp({
      env: {
        REQUIRE_EMAIL_VERIFICATION: 'false',
        SMTP_SERVER: '127.0.0.1',
        SMTP_PORT: String(smtp.port),
        SMTP_TIMEOUT_MS: '5000',
        OUTBOX_POLL_INTERVAL_MS: '50',
      },
    });
  });
  afterAll(async () => {
    await lax?.close();
    await smtp?.close();
  });

  // NOT FIXED (reported): the squatter's authenticator survives the owner's reset, so the owner is locked out
  // (mfa_required with a factor they never had). Removing the factor at the first proof of the address would let
  // anyone with the mailbox bypass the MFA of a lax-mode account that was never confirmed (mfa.test.ts "a password
  // reset through the emailed link does not bypass MFA"); refusing MFA enrolment until the address is confirmed is
  // the cleaner fix, a behaviour change for the lead to decide. `it.fails` until then.
  it.fails(
    "an authenticator enrolled on the unconfirmed account goes with the owner's reset: the owner signs in, the squatter's codes open nothing",
    async () => {
      // Someone registers the victim's address (never confirmed), signs in and turns on TOTP with their own app.
      const victim = uniqueEmail('victim');
      const squatter = await signUp(lax.app, victim);
      const start = await lax.app.inject({ method: 'POST', url: '/users/me/mfa/totp', payload: {}, headers: bearer(squatter.access) });
      expect(start.statusCode, start.body).toBe(200);
      const secret = json(start).secret as string;
      const code = () => generate({ secret, epoch: Math.floor(lax.clock.now().getTime() / 1000) });
      const on = await lax.app.inject({ method: 'POST', url: '/users/me/mfa/totp/verify', payload: { code: await code() }, headers: bearer(squatter.access) });
      expect(on.statusCode, on.body).toBe(200);

      // The address's owner resets the password (as the notices tell them to): the address is proven now.
      expect((await lax.app.inject({ method: 'POST', url: '/auth/password/forgot', payload: { email: victim } })).statusCode).toBe(202);
      const token = tokenIn(await smtp.waitFor(victim, /^Reset/));
      const NEW = 'the owner takes it back 7';
      const reset = await lax.app.inject({ method: 'POST', url: '/auth/password/reset', payload: { token, password: NEW } });
      expect(reset.statusCode, reset.body).toBe(204);

      // The owner signs in with the new password alone: the squatter's authenticator is no second factor of theirs.
      lax.clock.advance(60_000);
      const owner = await lax.app.inject({ method: 'POST', url: '/auth/login', payload: { email: victim, password: NEW } });
      expect(owner.statusCode, owner.body).toBe(200);
      expect(json(owner).access_token).toBeTypeOf('string');
      const status = await lax.app.inject({ method: 'GET', url: '/users/me/mfa', headers: bearer(json(owner).access_token as string) });
      expect(json(status)).toEqual({ totp_enabled: false, recovery_codes_remaining: 0 });
    },
  );

  it('an authenticator of an account whose address was already proven stays after a reset', async () => {
    const email = uniqueEmail('owner');
    const user = await signUp(lax.app, email);
    // The owner confirms the address first.
    const confirm = tokenIn(await smtp.waitFor(email, /Confirm your email/));
    expect((await lax.app.inject({ method: 'POST', url: '/auth/confirm-email', payload: { token: confirm } })).statusCode).toBe(200);
    const start = await lax.app.inject({ method: 'POST', url: '/users/me/mfa/totp', payload: {}, headers: bearer(user.access) });
    const secret = json(start).secret as string;
    const code = () => generate({ secret, epoch: Math.floor(lax.clock.now().getTime() / 1000) });
    expect(
      (await lax.app.inject({ method: 'POST', url: '/users/me/mfa/totp/verify', payload: { code: await code() }, headers: bearer(user.access) })).statusCode,
    ).toBe(200);
    expect((await lax.app.inject({ method: 'POST', url: '/auth/password/forgot', payload: { email } })).statusCode).toBe(202);
    const token = tokenIn(await smtp.waitFor(email, /^Reset/));
    expect((await lax.app.inject({ method: 'POST', url: '/auth/password/reset', payload: { token, password: 'the owner takes it back 7' } })).statusCode).toBe(
      204,
    );
    const again = await lax.app.inject({ method: 'POST', url: '/auth/login', payload: { email, password: 'the owner takes it back 7' } });
    expect([again.statusCode, json(again).error]).toEqual([403, 'mfa_required']);
  });
});

describe('REQUIRE_EMAIL_VERIFICATION=true (the default): a password set before the address was proven', () => {
  let smtp: SmtpCatcher;
  let gh: FakeGithub;
  let fb: FakeFacebook;
  let strict: TestApp;
  beforeAll(async () => {
    smtp = await SmtpCatcher.start();
    gh = await FakeGithub.start();
    fb = await FakeFacebook.start();
    strict = await createTestApp({
      env: {
        ...gh.env(),
        ...fb.env(),
        REQUIRE_EMAIL_VERIFICATION: 'true',
        SMTP_SERVER: '127.0.0.1',
        SMTP_PORT: String(smtp.port),
        SMTP_TIMEOUT_MS: '5000',
        OUTBOX_POLL_INTERVAL_MS: '50',
      },
    });
  });
  afterAll(async () => {
    await strict?.close();
    await fb?.close();
    await gh?.close();
    await smtp?.close();
  });

  // A password thief with a fresh session connects their own GitHub: a session proves no address, so the
  // connection is unproven and goes with the owner's reset, the recovery the notices point to.
  it("a provider a password thief connected is no way in after the owner's reset", async () => {
    const email = uniqueEmail('owner');
    expect((await strict.app.inject({ method: 'POST', url: '/auth/register', payload: { email, password: PASSWORD } })).statusCode).toBe(201);
    const confirm = tokenIn(await smtp.waitFor(email, /Confirm your email/));
    expect((await strict.app.inject({ method: 'POST', url: '/auth/confirm-email', payload: { token: confirm } })).statusCode).toBe(200);
    // The thief signs in with the stolen password and connects a GitHub account of their own.
    const thief = await signIn2(strict, email, PASSWORD);
    const theirs = gh.addUser({ emails: [{ email: uniqueEmail('thief'), primary: true, verified: true }] });
    const linked = await strict.app.inject({
      method: 'POST',
      url: '/users/me/identities/github',
      payload: { access_token: gh.issueToken(theirs.id) },
      headers: bearer(thief.access_token),
    });
    expect(linked.statusCode, linked.body).toBe(201);
    // The owner resets the password.
    expect((await strict.app.inject({ method: 'POST', url: '/auth/password/forgot', payload: { email } })).statusCode).toBe(202);
    const token = tokenIn(await smtp.waitFor(email, /^Reset/));
    expect(
      (await strict.app.inject({ method: 'POST', url: '/auth/password/reset', payload: { token, password: 'the owner takes it back 7' } })).statusCode,
    ).toBe(204);
    // The thief comes back through GitHub: at most into an account of their own address, never the owner's.
    const back = await strict.app.inject({ method: 'POST', url: '/auth/oauth/github/token', payload: { access_token: gh.issueToken(theirs.id) } });
    const ownerId = decodeJwt(thief.access_token).sub;
    expect(back.statusCode === 200 ? decodeJwt((back.json() as { access_token: string }).access_token).sub : null, back.body).not.toBe(ownerId);
  });

  // Facebook is not trusted to link by email (its address may no longer be the user's, facebook.ts), so an
  // account it creates records its identity as unproven: the address's real owner's reset ends it.
  it("a Facebook identity that created the account goes with the address owner's reset (its address is not trusted to link)", async () => {
    const victim = uniqueEmail('recycled');
    const stale = fb.addUser({ first_name: 'Old', last_name: 'Holder', email: victim });
    const created = await strict.app.inject({ method: 'POST', url: '/auth/oauth/facebook/token', payload: { access_token: fb.issueToken(stale.id) } });
    expect(created.statusCode, created.body).toBe(200);
    // The address's current owner resets the password.
    expect((await strict.app.inject({ method: 'POST', url: '/auth/password/forgot', payload: { email: victim } })).statusCode).toBe(202);
    const token = tokenIn(await smtp.waitFor(victim, /^Reset/));
    expect(
      (await strict.app.inject({ method: 'POST', url: '/auth/password/reset', payload: { token, password: 'the owner takes it back 7' } })).statusCode,
    ).toBe(204);
    const back = await strict.app.inject({ method: 'POST', url: '/auth/oauth/facebook/token', payload: { access_token: fb.issueToken(stale.id) } });
    expect(back.statusCode, back.body).not.toBe(200);
  });

  // NOT FIXED (reported): the "classic-federated merge" pre-account takeover. The squatter's registration
  // password is an unproven claim like an unverified provider identity, but confirming the address keeps it,
  // and the owner's verified GitHub identity is then linked by email to the account the squatter can open.
  it.fails("the owner confirms the address and signs in with GitHub: the squatter's registration password opens the owner's account no more", async () => {
    const victim = uniqueEmail('victim');
    const squatterPassword = 'squatter knows this one 9';
    expect((await strict.app.inject({ method: 'POST', url: '/auth/register', payload: { email: victim, password: squatterPassword } })).statusCode).toBe(201);
    // The owner gets the confirmation mail and presses the button (as social-takeover.test.ts's owner does).
    const token = tokenIn(await smtp.waitFor(victim, /Confirm your email/));
    expect((await strict.app.inject({ method: 'POST', url: '/auth/confirm-email', payload: { token } })).statusCode).toBe(200);
    // The owner signs in with GitHub, whose address is verified: linked by email to the existing account.
    const owner = gh.addUser({ emails: [{ email: victim, primary: true, verified: true }] });
    const viaGithub = await strict.app.inject({ method: 'POST', url: '/auth/oauth/github/token', payload: { access_token: gh.issueToken(owner.id) } });
    expect(viaGithub.statusCode, viaGithub.body).toBe(200);
    const ownerId = decodeJwt(json(viaGithub).access_token as string).sub;
    // The squatter signs in with the password chosen at registration.
    const squatter = await strict.app.inject({ method: 'POST', url: '/auth/login', payload: { email: victim, password: squatterPassword } });
    expect(squatter.statusCode === 200 ? decodeJwt(json(squatter).access_token as string).sub : null).not.toBe(ownerId);
  });
});

describe("an administrator's sign-out-everywhere and disable void the account's emailed links", () => {
  let smtp: SmtpCatcher;
  let app: TestApp;
  let root: string;
  beforeAll(async () => {
    smtp = await SmtpCatcher.start();
    app = await createTestApp({ env: { SMTP_SERVER: '127.0.0.1', SMTP_PORT: String(smtp.port), SMTP_TIMEOUT_MS: '5000', OUTBOX_POLL_INTERVAL_MS: '50' } });
    const email = uniqueEmail('incident-root');
    await app.app.services.admin.createUser(null, { email, password: PASSWORD, emailVerified: true, roles: ['admin', 'user'], sendInvite: false });
    root = json(await app.app.inject({ method: 'POST', url: '/auth/login', payload: { email, password: PASSWORD } })).access_token as string;
  });
  afterAll(async () => {
    await app?.close();
    await smtp?.close();
  });

  /** With a stolen password, an attacker asks to move the victim's account to their own address: the link is theirs. */
  async function pendingTakeover() {
    const victim = await signUp(app.app);
    const attackerAddress = uniqueEmail('attacker');
    const asked = await app.app.inject({
      method: 'POST',
      url: '/users/me/email',
      payload: { new_email: attackerAddress, password: PASSWORD },
      headers: bearer(victim.access),
    });
    expect(asked.statusCode, asked.body).toBe(202);
    const link = tokenIn(await smtp.waitFor(attackerAddress, /./));
    return { victim, attackerAddress, link };
  }

  for (const [what, respond] of [
    [
      'POST /admin/users/:id/sessions/revoke',
      (id: string) => app.app.inject({ method: 'POST', url: `/admin/users/${id}/sessions/revoke`, headers: bearer(root) }),
    ],
    [
      'POST /admin/users/:id/disable (then enable)',
      async (id: string) => {
        const off = await app.app.inject({ method: 'POST', url: `/admin/users/${id}/disable`, headers: bearer(root) });
        expect(off.statusCode, off.body).toBe(204);
        return app.app.inject({ method: 'POST', url: `/admin/users/${id}/enable`, headers: bearer(root) });
      },
    ],
  ] as const) {
    it(`${what}: the attacker's pending email-change link no longer moves the account`, async () => {
      const { victim, attackerAddress, link } = await pendingTakeover();
      // The incident is noticed: an administrator ends every session of the account.
      const res = await respond(victim.userId);
      expect(res.statusCode, res.body).toBeLessThan(300);
      const used = await app.app.inject({ method: 'POST', url: '/auth/confirm-email', payload: { token: link } });
      expect([used.statusCode, json(used).error]).toEqual([400, 'email_token_used']);
      const user = await app.app.services.admin.getUser(victim.userId);
      expect(user.user.email).toBe(victim.email);
      expect(user.user.email).not.toBe(attackerAddress);
    });
  }
});
