import { generateKeyPairSync } from 'node:crypto';
import { and, eq } from 'drizzle-orm';
import { SignJWT, decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { users } from '../../src/features/accounts/tables.js';
import { auditEvents } from '../../src/features/audit/tables.js';
import { SmtpCatcher, tokenIn } from '../helpers/smtp.js';
import { ProviderKey, sha256Hex, startJwksServer } from '../helpers/social.js';
import { SoftAuthenticator } from '../helpers/soft-authenticator.js';
import { PASSWORD, TEST_ISSUER, bearer, createTestApp, json, signUp, uniqueEmail, type TestApp } from '../helpers/test-app.js';

// Native sign-in (React Native): the app posts the provider SDK's ID token to
// POST /auth/oauth/:provider/token. The tokens here are signed with a key this
// test serves as the provider's JWKS (a tiny node:http server), for Google,
// Apple and a generic provider ("corp", not trusted for email linking). Also:
// the linking rules, the identities API, and a social-only account choosing a
// password through the reset email (a real SMTP catcher).

const GOOGLE = { iss: 'https://accounts.google.com', web: 'google-web.apps', ios: 'google-ios.apps', android: 'google-android.apps' };
const APPLE = { iss: 'https://appleid.apple.com', web: 'com.example.web', ios: 'com.example.ios' };
const CORP = { iss: 'https://login.corp.example', client: 'corp-app' };

let t: TestApp;
let smtp: SmtpCatcher;
let jwks: Awaited<ReturnType<typeof startJwksServer>>;
const key = new ProviderKey();
const stranger = new ProviderKey();

beforeAll(async () => {
  jwks = await startJwksServer([key]);
  smtp = await SmtpCatcher.start();
  const apple = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  t = await createTestApp({
    env: {
      GOOGLE_CLIENT_ID: GOOGLE.web,
      GOOGLE_EXTRA_CLIENT_IDS: `${GOOGLE.ios},${GOOGLE.android}`,
      GOOGLE_CLIENT_SECRET: 'google-secret',
      GOOGLE_JWKS_URL: jwks.jwksUrl,
      APPLE_CLIENT_ID: APPLE.web,
      APPLE_EXTRA_CLIENT_IDS: APPLE.ios,
      APPLE_TEAM_ID: 'TEAM123456',
      APPLE_KEY_ID: 'KEY1234567',
      APPLE_PRIVATE_KEY: apple.replace(/\n/g, '\\n'),
      APPLE_JWKS_URL: jwks.jwksUrl,
      OIDC_PROVIDERS: 'corp',
      OIDC_CORP_ISSUER: CORP.iss,
      OIDC_CORP_CLIENT_ID: CORP.client,
      OIDC_CORP_JWKS_URL: jwks.jwksUrl,
      SMTP_SERVER: '127.0.0.1',
      SMTP_PORT: String(smtp.port),
      OUTBOX_POLL_INTERVAL_MS: '50',
    },
  });
});

afterAll(async () => {
  await t?.close();
  await smtp?.close();
  await jwks?.close();
});

let n = 0;
const subject = () => `sub-${process.pid}-${++n}`;

function googleToken(claims: Record<string, unknown> = {}, signer = key, header: { kid?: string } = {}) {
  return signer.idToken(
    { iss: GOOGLE.iss, aud: GOOGLE.web, sub: subject(), email: uniqueEmail('g'), email_verified: true, given_name: 'Ada', family_name: 'Lovelace', ...claims },
    t.clock.now(),
    header,
  );
}

function nativeSignIn(provider: string, body: Record<string, unknown>) {
  return t.app.inject({ method: 'POST', url: `/auth/oauth/${provider}/token`, payload: body });
}

async function signedIn(res: { statusCode: number; body: string }) {
  expect(res.statusCode, res.body).toBe(200);
  const body = JSON.parse(res.body) as { access_token: string; refresh_token: string };
  const me = json(await t.app.inject({ method: 'GET', url: '/users/me', headers: bearer(body.access_token) }));
  return { ...body, me, claims: decodeJwt(body.access_token) };
}

function expectGrantError(res: { statusCode: number; body: string; headers: Record<string, unknown> }, fragment?: string) {
  expect(res.statusCode, res.body).toBe(400);
  const body = JSON.parse(res.body) as { error: string; error_description: string };
  expect(body.error).toBe('invalid_grant');
  expect(res.headers['cache-control']).toBe('no-store');
  if (fragment) expect(body.error_description).toContain(fragment);
}

/** A password account whose address is confirmed (set directly: the email flows have their own suite). */
async function verifiedPasswordUser() {
  const u = await signUp(t.app);
  await t.db.handle.db.update(users).set({ emailVerifiedAt: t.clock.now() }).where(eq(users.id, u.userId));
  return u;
}

describe('Google native id_token', () => {
  it('accepts every configured client id as aud (web, iOS, Android): one identity, one user', async () => {
    const sub = subject();
    const email = uniqueEmail('g');
    const ids = new Set<string>();
    for (const aud of [GOOGLE.web, GOOGLE.ios, GOOGLE.android]) {
      const res = await nativeSignIn('google', { id_token: await googleToken({ sub, email, aud }) });
      expect(res.headers['cache-control']).toBe('no-store');
      const s = await signedIn(res);
      expect(s.claims.amr).toEqual(['fed']);
      ids.add(s.me.id as string);
      expect(s.me).toMatchObject({ email, email_verified: true, first_name: 'Ada', last_name: 'Lovelace', has_password: false });
    }
    expect(ids.size).toBe(1);
    // Google's other spelling of its issuer.
    await signedIn(await nativeSignIn('google', { id_token: await googleToken({ sub, email, iss: 'accounts.google.com' }) }));
    // Several audiences: only with an authorized party (azp) of ours.
    await signedIn(await nativeSignIn('google', { id_token: await googleToken({ sub, email, aud: [GOOGLE.web, 'someone-else'], azp: GOOGLE.android }) }));
    expectGrantError(await nativeSignIn('google', { id_token: await googleToken({ sub, email, aud: [GOOGLE.web, 'someone-else'] }) }), 'azp');
  });

  it('a nonce sent by the app must be in the token, and a token with a nonce needs it', async () => {
    await signedIn(await nativeSignIn('google', { id_token: await googleToken({ nonce: 'n-123' }), nonce: 'n-123' }));
    expectGrantError(await nativeSignIn('google', { id_token: await googleToken({ nonce: 'n-123' }), nonce: 'n-456' }), 'nonce');
    expectGrantError(await nativeSignIn('google', { id_token: await googleToken({ nonce: 'n-123' }) }), 'nonce');
    expectGrantError(await nativeSignIn('google', { id_token: await googleToken(), nonce: 'n-123' }), 'nonce');
    // Google does not hash nonces: SHA-256 of the raw nonce is only Apple's convention.
    expectGrantError(await nativeSignIn('google', { id_token: await googleToken({ nonce: sha256Hex('raw') }), nonce: 'raw' }), 'nonce');
  });

  it('refuses a wrong aud', async () => {
    expectGrantError(await nativeSignIn('google', { id_token: await googleToken({ aud: 'another-app.apps' }) }), '"aud"');
    expectGrantError(await nativeSignIn('google', { id_token: await googleToken({ aud: APPLE.web }) }), '"aud"');
  });

  it('refuses a wrong iss', async () => {
    expectGrantError(await nativeSignIn('google', { id_token: await googleToken({ iss: 'https://accounts.google.com.evil.example' }) }), '"iss"');
    expectGrantError(await nativeSignIn('google', { id_token: await googleToken({ iss: APPLE.iss }) }), '"iss"');
  });

  it('refuses a bad signature (another key under a published kid, or an unknown kid)', async () => {
    expectGrantError(await nativeSignIn('google', { id_token: await googleToken({}, stranger, { kid: key.kid }) }), 'invalid signature');
    expectGrantError(await nativeSignIn('google', { id_token: await googleToken({}, stranger) }), 'key the provider does not publish');
    const [header, , signature] = (await googleToken()).split('.');
    const forged = Buffer.from(
      JSON.stringify({ iss: GOOGLE.iss, aud: GOOGLE.web, sub: subject(), email: 'admin@example.com', email_verified: true, iat: 1, exp: 4102444800 }),
    ).toString('base64url');
    expectGrantError(await nativeSignIn('google', { id_token: `${header}.${forged}.${signature}` }), 'invalid signature');
  });

  it('refuses unsigned and HMAC tokens', async () => {
    const claims = {
      iss: GOOGLE.iss,
      aud: GOOGLE.web,
      sub: subject(),
      email: uniqueEmail(),
      email_verified: true,
      iat: Math.floor(t.clock.now().getTime() / 1000),
      exp: Math.floor(t.clock.now().getTime() / 1000) + 600,
    };
    const none = `${Buffer.from(JSON.stringify({ alg: 'none', kid: key.kid })).toString('base64url')}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.`;
    expectGrantError(await nativeSignIn('google', { id_token: none }));
    const hs = await new SignJWT(claims)
      .setProtectedHeader({ alg: 'HS256', kid: key.kid })
      .sign(new TextEncoder().encode('google-secret-google-secret-google'));
    expectGrantError(await nativeSignIn('google', { id_token: hs }), 'algorithm');
    expectGrantError(await nativeSignIn('google', { id_token: 'not.a.jwt' }), 'malformed');
  });

  it('refuses an expired token (and one issued in the future), with 60 s of skew', async () => {
    const now = Math.floor(t.clock.now().getTime() / 1000);
    expectGrantError(await nativeSignIn('google', { id_token: await googleToken({ iat: now - 3600, exp: now - 61 }) }), 'expired');
    await signedIn(await nativeSignIn('google', { id_token: await googleToken({ iat: now - 3600, exp: now - 30 }) }));
    expectGrantError(await nativeSignIn('google', { id_token: await googleToken({ iat: now + 600, exp: now + 1200 }) }), 'future');
  });

  it('needs the id_token: a missing one is invalid_request, an oversized body field a clear 4xx', async () => {
    const missing = await nativeSignIn('google', {});
    expect([missing.statusCode, json(missing).error]).toEqual([400, 'invalid_request']);
    const wrongType = await nativeSignIn('google', { id_token: 42 });
    expect([wrongType.statusCode, json(wrongType).error]).toEqual([400, 'invalid_request']);
    const huge = await nativeSignIn('google', { id_token: 'x'.repeat(9000) });
    expect([huge.statusCode, json(huge).error]).toEqual([400, 'invalid_request']);
  });

  it('counts Google emails as verified only when email_verified is the boolean true', async () => {
    const s = await signedIn(await nativeSignIn('google', { id_token: await googleToken({ email_verified: 'true' }) }));
    expect(s.me.email_verified).toBe(false);
  });
});

describe('Apple native id_token', () => {
  const appleToken = (claims: Record<string, unknown> = {}) =>
    key.idToken(
      { iss: APPLE.iss, aud: APPLE.ios, sub: subject(), email: uniqueEmail('a'), email_verified: 'true', is_private_email: 'false', ...claims },
      t.clock.now(),
    );

  it('accepts the SHA-256 of the app\'s raw nonce (Apple\'s convention) or the raw nonce, keeps the name the app passes, and reads email_verified "true"', async () => {
    const hashed = await signedIn(
      await nativeSignIn('apple', {
        id_token: await appleToken({ nonce: sha256Hex('raw-nonce-1') }),
        nonce: 'raw-nonce-1',
        first_name: 'Tim',
        last_name: 'Apple',
      }),
    );
    expect(hashed.me).toMatchObject({ first_name: 'Tim', last_name: 'Apple', email_verified: true });
    await signedIn(await nativeSignIn('apple', { id_token: await appleToken({ nonce: 'raw-nonce-2' }), nonce: 'raw-nonce-2' }));
    expectGrantError(await nativeSignIn('apple', { id_token: await appleToken({ nonce: sha256Hex('raw-nonce-3') }), nonce: 'other' }), 'nonce');
    // The web Services ID is an accepted audience too; another app's is not.
    await signedIn(await nativeSignIn('apple', { id_token: await appleToken({ aud: APPLE.web }) }));
    expectGrantError(await nativeSignIn('apple', { id_token: await appleToken({ aud: 'com.other.app' }) }), '"aud"');
  });
});

describe('linking rules', () => {
  it('a verified provider email links to the existing verified account with that email', async () => {
    const u = await verifiedPasswordUser();
    const sub = subject();
    const s = await signedIn(await nativeSignIn('google', { id_token: await googleToken({ sub, email: u.email.toUpperCase() }) }));
    expect(s.me.id).toBe(u.userId);
    expect(s.me.has_password).toBe(true);
    const ids = json(await t.app.inject({ method: 'GET', url: '/users/me/identities', headers: bearer(u.access) }));
    expect(ids.identities).toEqual([expect.objectContaining({ provider: 'google', email_verified: true })]);
    const linked = await t.db.handle.db
      .select()
      .from(auditEvents)
      .where(and(eq(auditEvents.userId, u.userId), eq(auditEvents.type, 'identity_linked')));
    expect(linked.map((e) => e.details)).toEqual([{ method: 'google', via: 'email' }]);
    // The admin view lists it too.
    const detail = await (
      t.app as unknown as { services: { admin: { getUser(id: string): Promise<{ identities: Array<{ provider: string }> }> } } }
    ).services.admin.getUser(u.userId);
    expect(detail.identities.map((i) => i.provider)).toEqual(['google']);
  });

  it('an unverified provider email creates a new, unverified account when the address is free', async () => {
    const email = uniqueEmail('unverified');
    const s = await signedIn(await nativeSignIn('google', { id_token: await googleToken({ email, email_verified: false }) }));
    expect(s.me).toMatchObject({ email, email_verified: false, has_password: false });
    expect(s.claims.email_verified).toBe(false);
  });

  it('an unverified provider email never links: 409 identity_not_linked when the address is taken', async () => {
    const u = await verifiedPasswordUser();
    const res = await nativeSignIn('google', { id_token: await googleToken({ email: u.email, email_verified: false }) });
    expect([res.statusCode, json(res).error]).toEqual([409, 'identity_not_linked']);
    expect(json(res).message).toContain('Sign in with your password');
    const ids = json(await t.app.inject({ method: 'GET', url: '/users/me/identities', headers: bearer(u.access) }));
    expect(ids.identities).toEqual([]);
  });

  it('a verified provider email never links onto an UNVERIFIED password account (pre-account takeover)', async () => {
    const victim = await signUp(t.app); // registered, never confirmed
    const res = await nativeSignIn('google', { id_token: await googleToken({ email: victim.email, email_verified: true }) });
    expect([res.statusCode, json(res).error]).toEqual([409, 'identity_not_linked']);
    expect(json(res).message).toContain('has not confirmed its address');
    const ids = json(await t.app.inject({ method: 'GET', url: '/users/me/identities', headers: bearer(victim.access) }));
    expect(ids.identities).toEqual([]);
  });

  it('a provider not trusted for linking (generic, *_EMAIL_LINKING=false) never links by email', async () => {
    const u = await verifiedPasswordUser();
    const token = await key.idToken({ iss: CORP.iss, aud: CORP.client, sub: subject(), email: u.email, email_verified: true }, t.clock.now());
    const res = await nativeSignIn('corp', { id_token: token });
    expect([res.statusCode, json(res).error]).toEqual([409, 'identity_not_linked']);
  });

  it('no email from the provider: 422 provider_email_missing', async () => {
    const res = await nativeSignIn('google', { id_token: await googleToken({ email: undefined, email_verified: undefined }) });
    expect([res.statusCode, json(res).error]).toEqual([422, 'provider_email_missing']);
  });

  it('a disabled account is refused like the password grant does', async () => {
    const sub = subject();
    const s = await signedIn(await nativeSignIn('google', { id_token: await googleToken({ sub }) }));
    await t.db.handle.db
      .update(users)
      .set({ disabledAt: t.clock.now() })
      .where(eq(users.id, s.me.id as string));
    expectGrantError(await nativeSignIn('google', { id_token: await googleToken({ sub }) }), 'disabled');
  });
});

describe('identities: list, connect, disconnect', () => {
  it('refuses to remove the last way to sign in; connecting another provider (or having a password) allows it', async () => {
    const gSub = subject();
    const s = await signedIn(await nativeSignIn('google', { id_token: await googleToken({ sub: gSub }) }));
    const del = (provider: string) => t.app.inject({ method: 'DELETE', url: `/users/me/identities/${provider}`, headers: bearer(s.access_token) });
    const last = await del('google');
    expect([last.statusCode, json(last).error]).toEqual([409, 'last_sign_in_method']);

    const aSub = subject();
    const appleToken = await key.idToken({ iss: APPLE.iss, aud: APPLE.ios, sub: aSub, email: uniqueEmail('relay'), email_verified: true }, t.clock.now());
    const link = await t.app.inject({ method: 'POST', url: '/users/me/identities/apple', payload: { id_token: appleToken }, headers: bearer(s.access_token) });
    expect(link.statusCode, link.body).toBe(201);
    expect(json(link)).toMatchObject({ provider: 'apple', email_verified: true });
    const again = await t.app.inject({ method: 'POST', url: '/users/me/identities/apple', payload: { id_token: appleToken }, headers: bearer(s.access_token) });
    expect(again.statusCode).toBe(200);

    expect((await del('google')).statusCode).toBe(204);
    const list = json(await t.app.inject({ method: 'GET', url: '/users/me/identities', headers: bearer(s.access_token) }));
    expect((list.identities as Array<{ provider: string }>).map((i) => i.provider)).toEqual(['apple']);
    const gone = await del('google');
    expect([gone.statusCode, json(gone).error]).toEqual([404, 'identity_not_found']);
    expect((await del('apple')).statusCode).toBe(409);
    // The Apple account now signs in to this user.
    const viaApple = await signedIn(
      await nativeSignIn('apple', {
        id_token: await key.idToken({ iss: APPLE.iss, aud: APPLE.ios, sub: aSub, email: 'x@privaterelay.appleid.com', email_verified: true }, t.clock.now()),
      }),
    );
    expect(viaApple.me.id).toBe(s.me.id);

    const types = (
      await t.db.handle.db
        .select()
        .from(auditEvents)
        .where(eq(auditEvents.userId, s.me.id as string))
    ).map((e) => [e.type, e.details.method, e.details.via]);
    expect(types).toEqual(
      expect.arrayContaining([
        ['identity_linked', 'apple', 'explicit'],
        ['identity_unlinked', 'google', undefined],
      ]),
    );
  });

  it('a passkey is a way to sign in: the last provider may go while one remains, but never both (not even in parallel)', async () => {
    const s = await signedIn(await nativeSignIn('google', { id_token: await googleToken({ sub: subject() }) }));
    const del = () => t.app.inject({ method: 'DELETE', url: '/users/me/identities/google', headers: bearer(s.access_token) });
    const addPasskey = async () => {
      const authenticator = new SoftAuthenticator(TEST_ISSUER);
      const options = await t.app.inject({ method: 'POST', url: '/users/me/passkeys/options', payload: {}, headers: bearer(s.access_token) });
      expect(options.statusCode, options.body).toBe(200);
      const added = await t.app.inject({
        method: 'POST',
        url: '/users/me/passkeys',
        payload: { credential: authenticator.create(json(options) as never) },
        headers: bearer(s.access_token),
      });
      expect(added.statusCode, added.body).toBe(201);
      return json(added).id as string;
    };
    const delPasskey = (id: string) => t.app.inject({ method: 'DELETE', url: `/users/me/passkeys/${id}`, headers: bearer(s.access_token) });

    // One provider and one passkey, removed in parallel: exactly one of them goes.
    const first = await addPasskey();
    const both = await Promise.all([del(), delPasskey(first)]);
    expect(both.map((r) => r.statusCode).sort()).toEqual([204, 409]);
    expect(json(both.find((r) => r.statusCode === 409)!).error).toBe('last_sign_in_method');
    const providers = (json(await t.app.inject({ method: 'GET', url: '/users/me/identities', headers: bearer(s.access_token) })).identities as unknown[])
      .length;
    const passkeys = (json(await t.app.inject({ method: 'GET', url: '/users/me/passkeys', headers: bearer(s.access_token) })).passkeys as unknown[]).length;
    expect(providers + passkeys).toBe(1);

    if (providers === 1) {
      // The passkey went: with a new one, the provider may go, and then the passkey is the last way.
      const second = await addPasskey();
      expect((await del()).statusCode).toBe(204);
      const last = await delPasskey(second);
      expect([last.statusCode, json(last).error]).toEqual([409, 'last_sign_in_method']);
    } else {
      // The provider went: the passkey is the last way.
      const left = json(await t.app.inject({ method: 'GET', url: '/users/me/passkeys', headers: bearer(s.access_token) })).passkeys as Array<{ id: string }>;
      const last = await delPasskey(left[0]!.id);
      expect([last.statusCode, json(last).error]).toEqual([409, 'last_sign_in_method']);
    }
  });

  it('without a passkey or a password the only provider stays', async () => {
    const s = await signedIn(await nativeSignIn('google', { id_token: await googleToken({ sub: subject() }) }));
    const last = await t.app.inject({ method: 'DELETE', url: '/users/me/identities/google', headers: bearer(s.access_token) });
    expect([last.statusCode, json(last).error]).toEqual([409, 'last_sign_in_method']);
  });

  it('a password account may disconnect its only provider', async () => {
    const u = await verifiedPasswordUser();
    await signedIn(await nativeSignIn('google', { id_token: await googleToken({ email: u.email }) }));
    const res = await t.app.inject({ method: 'DELETE', url: '/users/me/identities/google', headers: bearer(u.access) });
    expect(res.statusCode).toBe(204);
  });

  it('connecting: 409 when the provider account belongs to someone else or another one is connected; 403 on an old sign-in', async () => {
    const sub = subject();
    await signedIn(await nativeSignIn('google', { id_token: await googleToken({ sub }) }));
    const me = await verifiedPasswordUser();
    const post = (token: string, access = me.access) =>
      t.app.inject({ method: 'POST', url: '/users/me/identities/google', payload: { id_token: token }, headers: bearer(access) });
    const taken = await post(await googleToken({ sub }));
    expect([taken.statusCode, json(taken).error]).toEqual([409, 'identity_already_linked']);
    expect((await post(await googleToken())).statusCode).toBe(201);
    const second = await post(await googleToken());
    expect([second.statusCode, json(second).error]).toEqual([409, 'provider_already_linked']);
    const bad = await post(await googleToken({ aud: 'nope' }));
    expect([bad.statusCode, json(bad).error]).toEqual([400, 'provider_token_invalid']);
    const missing = await t.app.inject({ method: 'POST', url: '/users/me/identities/google', payload: {}, headers: bearer(me.access) });
    expect([missing.statusCode, json(missing).error]).toEqual([400, 'provider_token_invalid']);
    const unknown = await t.app.inject({ method: 'POST', url: '/users/me/identities/myspace', payload: { id_token: 'x' }, headers: bearer(me.access) });
    expect([unknown.statusCode, json(unknown).error]).toEqual([404, 'provider_not_found']);
    const anonymous = await t.app.inject({ method: 'GET', url: '/users/me/identities' });
    expect(anonymous.statusCode).toBe(401);

    const fresh = await verifiedPasswordUser();
    t.clock.advance(301_000);
    const stale = await post(await googleToken(), fresh.access);
    expect([stale.statusCode, json(stale).error]).toEqual([403, 'reauthentication_required']);
  });
});

describe('a social-only account', () => {
  it('sets a password through the forgot/reset emails, then signs in with it', async () => {
    const email = uniqueEmail('social-only');
    const s = await signedIn(await nativeSignIn('google', { id_token: await googleToken({ email }) }));
    expect(s.me.has_password).toBe(false);
    const noPassword = await t.app.inject({ method: 'POST', url: '/auth/login', payload: { email, password: PASSWORD } });
    expect(json(noPassword).error).toBe('invalid_grant');

    const forgot = await t.app.inject({ method: 'POST', url: '/auth/password/forgot', payload: { email } });
    expect(forgot.statusCode).toBe(202);
    const mail = await smtp.waitFor(email, /reset/i);
    const reset = await t.app.inject({ method: 'POST', url: '/auth/password/reset', payload: { token: tokenIn(mail), password: 'a new social passphrase' } });
    expect(reset.statusCode, reset.body).toBe(204);

    const login = await t.app.inject({ method: 'POST', url: '/auth/login', payload: { email, password: 'a new social passphrase' } });
    expect(login.statusCode, login.body).toBe(200);
    const me = json(await t.app.inject({ method: 'GET', url: '/users/me', headers: bearer(json(login).access_token as string) }));
    expect(me).toMatchObject({ id: s.me.id, has_password: true });
    // With a password, the provider may now be disconnected.
    const del = await t.app.inject({ method: 'DELETE', url: '/users/me/identities/google', headers: bearer(json(login).access_token as string) });
    expect(del.statusCode).toBe(204);
  });
});
