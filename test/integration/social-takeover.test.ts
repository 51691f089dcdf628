import { createServer, type RequestListener, type Server } from 'node:http';
import { and, eq } from 'drizzle-orm';
import { decodeJwt } from 'jose';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { users } from '../../src/features/accounts/tables.js';
import { auditEvents } from '../../src/features/audit/tables.js';
import { identities } from '../../src/features/social/tables.js';
import { FakeGithub } from '../helpers/fake-github.js';
import { freePort } from '../helpers/free-port.js';
import { SmtpCatcher, tokenIn } from '../helpers/smtp.js';
import { Browser, authorize, callbackGet, exchangeCode, landing } from '../helpers/social.js';
import { TEST_ISSUER, bearer, createTestApp, json, signUp, uniqueEmail, type TestApp } from '../helpers/test-app.js';

// "An unproven claim on an address gets durable access": a provider that does not vouch for
// an address (a real OpenID provider answering email_verified=false, a GitHub address that is
// not verified) must never hold an account that the address's real owner later claims by a
// password reset or the confirmation link. With REQUIRE_EMAIL_VERIFICATION nothing is written;
// without it the identity is recorded as unproven, and proving the address removes it and ends
// the sessions of third-party sign-ins.

const APP = 'https://app.example/cb';
const NEW_PASSWORD = 'the owner takes it back 7';

let smtp: SmtpCatcher;
let gh: FakeGithub;
let server: Server;
let issuer: string;
/** REQUIRE_EMAIL_VERIFICATION=true (the default). */
let strict: TestApp;
/** REQUIRE_EMAIL_VERIFICATION=false, over the same database. */
let lax: TestApp;
/** The OpenID provider's users, by subject. */
const opAccounts = new Map<string, Record<string, unknown>>();

beforeAll(async () => {
  smtp = await SmtpCatcher.start();
  gh = await FakeGithub.start();
  const port = await freePort();
  issuer = `http://127.0.0.1:${port}`;
  // oidc-provider v9 ships no types: the little used here.
  const specifier = 'oidc-provider';
  const { default: Provider } = (await import(specifier)) as { default: new (issuer: string, config: object) => { callback(): RequestListener } };
  const op = new Provider(issuer, {
    clients: [{ client_id: 'tessera-corp', client_secret: 'corp-secret', redirect_uris: [`${TEST_ISSUER}/auth/oauth/corp/callback`] }],
    pkce: { required: () => true },
    findAccount: (_ctx: unknown, sub: string) => {
      const claims = opAccounts.get(sub);
      return claims ? { accountId: sub, claims: () => ({ sub, ...claims }) } : undefined;
    },
    claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['given_name', 'family_name', 'name'] },
    cookies: { keys: ['a test cookie key'] },
    ttl: { Interaction: 600, Session: 3600, Grant: 3600, AccessToken: 600, IdToken: 600, AuthorizationCode: 60 },
    features: { devInteractions: { enabled: true } },
  });
  server = createServer(op.callback());
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  const env = {
    ...gh.env(),
    OIDC_PROVIDERS: 'corp',
    OIDC_CORP_ISSUER: issuer,
    OIDC_CORP_CLIENT_ID: 'tessera-corp',
    OIDC_CORP_CLIENT_SECRET: 'corp-secret',
    OIDC_CORP_DISPLAY_NAME: 'Corp SSO',
    // Trusted to link by a verified address: its identities are proven by the address like Google's.
    OIDC_CORP_EMAIL_LINKING: 'true',
    OAUTH_REDIRECT_ALLOWLIST: APP,
    SMTP_SERVER: '127.0.0.1',
    SMTP_PORT: String(smtp.port),
    SMTP_TIMEOUT_MS: '5000',
    OUTBOX_POLL_INTERVAL_MS: '50',
  };
  strict = await createTestApp({ env: { ...env, REQUIRE_EMAIL_VERIFICATION: 'true' } });
  lax = await createTestApp({ env: { ...env, REQUIRE_EMAIL_VERIFICATION: 'false' }, db: strict.db });
});

afterAll(async () => {
  await lax?.close();
  await strict?.close();
  server?.closeAllConnections();
  await new Promise((resolve) => server?.close(resolve));
  await gh?.close();
  await smtp?.close();
});

// The provider signs with the real time; Tessera checks ID tokens with its (manual) clock.
beforeEach(() => {
  strict.clock.set(new Date());
  lax.clock.set(new Date());
});

let n = 0;
/** A user of the OpenID provider claiming `email`, verified or not. */
function opUser(email: string, emailVerified: boolean): string {
  const sub = `takeover-${++n}`;
  opAccounts.set(sub, { email, email_verified: emailVerified, given_name: 'Mallory' });
  return sub;
}

/** The web flow with the OpenID provider as `sub`: the app's landing URL. */
async function corpWebSignIn(t: TestApp, sub: string): Promise<URL> {
  const start = await authorize(t.app, 'corp', { redirect_uri: APP, state: 'st' });
  const callbackUrl = await new Browser().untilRedirectTo(start.location.href, TEST_ISSUER, sub);
  return landing(await callbackGet(t.app, callbackUrl, start.cookie));
}

/** The web flow through to tokens (or the exchange's error). */
async function corpTokens(t: TestApp, sub: string) {
  const land = await corpWebSignIn(t, sub);
  if (land.searchParams.get('error')) return { error: land.searchParams.get('error'), tokens: null };
  const res = await exchangeCode(t.app, { code: land.searchParams.get('code') ?? '', redirect_uri: APP });
  return res.statusCode === 200
    ? { error: null, tokens: json(res) as { access_token: string; refresh_token: string } }
    : { error: json(res).error as string, tokens: null };
}

const githubNative = (t: TestApp, userId: number) =>
  t.app.inject({ method: 'POST', url: '/auth/oauth/github/token', payload: { access_token: gh.issueToken(userId) } });

const db = () => strict.db.handle.db;
const usersWith = (email: string) => db().select().from(users).where(eq(users.email, email));
const identitiesOf = (userId: string) => db().select().from(identities).where(eq(identities.userId, userId));

/** The owner asks for a reset link and sets a new password with it. */
async function ownerResets(t: TestApp, email: string) {
  const before = smtp.messagesTo(email).filter((m) => /^Reset/.test(m.subject)).length;
  expect((await t.app.inject({ method: 'POST', url: '/auth/password/forgot', payload: { email } })).statusCode).toBe(202);
  await smtp.until(() => smtp.messagesTo(email).filter((m) => /^Reset/.test(m.subject)).length > before, 10_000, 'the reset mail');
  const token = tokenIn(
    smtp
      .messagesTo(email)
      .filter((m) => /^Reset/.test(m.subject))
      .at(-1)!,
  );
  const done = await t.app.inject({ method: 'POST', url: '/auth/password/reset', payload: { token, password: NEW_PASSWORD } });
  expect(done.statusCode, done.body).toBe(204);
}

describe('REQUIRE_EMAIL_VERIFICATION=true: an unverified provider address is refused before anything is written', () => {
  it('web, a real OpenID provider answering email_verified=false: back to the app with email_not_verified; no account, no identity', async () => {
    const victim = uniqueEmail('victim');
    const sub = opUser(victim, false);
    const land = await corpWebSignIn(strict, sub);
    expect(land.searchParams.get('error')).toBe('email_not_verified');
    expect(land.searchParams.get('error_description')).toContain('Corp SSO does not confirm');
    expect(land.searchParams.get('code')).toBeNull();
    expect(await usersWith(victim)).toEqual([]);

    // The owner signs up later and resets (or confirms): the provider account has no way in.
    await signUp(lax.app, victim);
    await ownerResets(strict, victim);
    const again = await corpWebSignIn(strict, sub);
    expect(again.searchParams.get('error')).toBe('identity_not_linked');
  });

  it('native, a GitHub address that is not verified: 403 email_not_verified; no account, no identity, no mail', async () => {
    const victim = uniqueEmail('victim');
    const attacker = gh.addUser({ emails: [{ email: victim, primary: true, verified: false }] });
    const res = await githubNative(strict, attacker.id);
    expect([res.statusCode, json(res).error]).toEqual([403, 'email_not_verified']);
    expect(json(res).error_description).toContain('GitHub does not confirm');
    expect(await usersWith(victim)).toEqual([]);
    expect(await db().select().from(identities).where(eq(identities.email, victim))).toEqual([]);
  });

  it('a verified provider address still creates a confirmed account', async () => {
    const email = uniqueEmail('fine');
    const { tokens } = await corpTokens(strict, opUser(email, true));
    expect(decodeJwt(tokens!.access_token)).toMatchObject({ email, email_verified: true });
    const [row] = await usersWith(email);
    expect((await identitiesOf(row!.id)).map((i) => [i.provider, i.proven])).toEqual([['corp', true]]);
  });
});

describe('REQUIRE_EMAIL_VERIFICATION=false: proving the address ends every sign-in that did not prove it', () => {
  it("the owner's password reset removes an identity created from an unverified address (real OpenID provider); it signs in no more", async () => {
    const victim = uniqueEmail('victim');
    const sub = opUser(victim, false);
    const first = await corpTokens(lax, sub);
    expect(first.error).toBeNull();
    const [account] = await usersWith(victim);
    expect(account?.emailVerifiedAt).toBeNull();
    expect((await identitiesOf(account!.id)).map((i) => [i.provider, i.emailVerified, i.proven])).toEqual([['corp', false, false]]);

    await ownerResets(lax, victim);

    expect(await identitiesOf(account!.id)).toEqual([]);
    const refreshed = await lax.app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: first.tokens!.refresh_token } });
    expect(refreshed.statusCode).toBe(400);
    // The attacker comes back through the provider: not into the owner's account (no link from an unverified address).
    const again = await corpTokens(lax, sub);
    expect(again.error).toBe('identity_not_linked');
    expect(again.tokens).toBeNull();
    // The owner's notice lists what is left: the password only.
    const notice = await smtp.waitFor(victim, /password was changed/);
    expect(notice.text).toContain('Ways to sign in to your account now: password.');
    const removed = await db()
      .select()
      .from(auditEvents)
      .where(and(eq(auditEvents.userId, account!.id), eq(auditEvents.type, 'identity_unlinked')));
    expect(removed.map((e) => e.details)).toEqual([{ method: 'corp', via: 'address_proven' }]);
  });

  it("the owner's confirmation (the emailed link's button) removes an unverified GitHub identity and ends its sessions", async () => {
    const victim = uniqueEmail('victim');
    const attacker = gh.addUser({ emails: [{ email: victim, primary: true, verified: false }] });
    const signedIn = await githubNative(lax, attacker.id);
    expect(signedIn.statusCode, signedIn.body).toBe(200);
    const stolen = json(signedIn) as { access_token: string; refresh_token: string };
    expect((await lax.app.inject({ method: 'GET', url: '/users/me', headers: bearer(stolen.access_token) })).statusCode).toBe(200);

    // The account's confirmation link went to the real owner, who opens it and presses the button.
    const link = tokenIn(await smtp.waitFor(victim, /Confirm your email/));
    const confirmed = await lax.app.inject({
      method: 'POST',
      url: '/auth/confirm-email',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      payload: new URLSearchParams({ token: link }).toString(),
    });
    expect(confirmed.statusCode, confirmed.body).toBe(200);

    const me = await lax.app.inject({ method: 'GET', url: '/users/me', headers: bearer(stolen.access_token) });
    expect([me.statusCode, json(me).error]).toEqual([401, 'session_revoked']);
    expect((await lax.app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: stolen.refresh_token } })).statusCode).toBe(400);
    const again = await githubNative(lax, attacker.id);
    expect([again.statusCode, json(again).error]).toEqual([409, 'identity_not_linked']);
    const [account] = await usersWith(victim);
    expect(await identitiesOf(account!.id)).toEqual([]);
    expect(account?.emailVerifiedAt).not.toBeNull();
    const notice = await smtp.waitFor(victim, /email address is confirmed/);
    expect(notice.text).toContain('Ways to sign in to your account now: none yet');
  });

  it('a provider connected explicitly while the address was unconfirmed goes at the reset too', async () => {
    // Someone registers the victim's address with a password (never confirmed) and connects their own GitHub.
    const victim = uniqueEmail('victim');
    const squatter = await signUp(lax.app, victim);
    const theirs = gh.addUser({ emails: [{ email: uniqueEmail('squatter'), primary: true, verified: true }] });
    const linked = await lax.app.inject({
      method: 'POST',
      url: '/users/me/identities/github',
      payload: { access_token: gh.issueToken(theirs.id) },
      headers: bearer(squatter.access),
    });
    expect(linked.statusCode, linked.body).toBe(201);
    expect((await identitiesOf(squatter.userId)).map((i) => [i.provider, i.emailVerified, i.proven])).toEqual([['github', true, false]]);

    await ownerResets(lax, victim);

    expect(await identitiesOf(squatter.userId)).toEqual([]);
    const again = await githubNative(lax, theirs.id);
    expect(again.statusCode, again.body).toBe(200);
    expect(decodeJwt(json(again).access_token as string).sub).not.toBe(squatter.userId);
  });

  it('proven sign-ins stay: a verified provider identity and its sessions survive the reset, and the notice lists them', async () => {
    const email = uniqueEmail('owner');
    const sub = opUser(email, true);
    const { tokens } = await corpTokens(lax, sub);
    const userId = decodeJwt(tokens!.access_token).sub as string;
    // GitHub vouches for the account's own address: proven by the address, like the identity that created it.
    const linked = await lax.app.inject({
      method: 'POST',
      url: '/users/me/identities/github',
      payload: { access_token: gh.issueToken(gh.addUser({ emails: [{ email, primary: true, verified: true }] }).id) },
      headers: bearer(tokens!.access_token),
    });
    expect(linked.statusCode, linked.body).toBe(201);

    await ownerResets(lax, email);

    expect((await identitiesOf(userId)).map((i) => [i.provider, i.proven]).sort()).toEqual([
      ['corp', true],
      ['github', true],
    ]);
    const again = await corpTokens(lax, sub);
    expect(decodeJwt(again.tokens!.access_token).sub).toBe(userId);
    const notice = await smtp.waitFor(email, /password was changed/);
    expect(notice.text).toMatch(/Ways to sign in to your account now: password, (Corp SSO, GitHub|GitHub, Corp SSO)\./);
    expect((await lax.app.inject({ method: 'POST', url: '/auth/login', payload: { email, password: NEW_PASSWORD } })).statusCode).toBe(200);
  });
});
