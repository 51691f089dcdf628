import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeJwt, decodeProtectedHeader } from 'jose';
import { PASSWORD, bearer, createTestApp, json, signUp, uniqueEmail, type TestApp } from '../helpers/test-app.js';

let t: TestApp;
beforeAll(async () => {
  t = await createTestApp();
});
afterAll(async () => {
  await t?.close();
});

describe('the whole flow over HTTP', () => {
  it('register → token (form) → /users/me → refresh → logout → refresh fails', async () => {
    const { app } = t;
    const email = uniqueEmail('flow');
    const reg = await app.inject({ method: 'POST', url: '/auth/register', payload: { email, password: PASSWORD, first_name: 'Ada', last_name: 'Lovelace' } });
    expect(reg.statusCode).toBe(201);
    const user = json(reg);
    expect(user).toMatchObject({ email, email_verified: false, first_name: 'Ada', last_name: 'Lovelace', has_password: true });
    expect(user).not.toHaveProperty('password_hash');

    // As Swagger UI and OAuth2 clients send it.
    const form = new URLSearchParams({ grant_type: 'password', username: email, password: PASSWORD, scope: '' });
    const tok = await app.inject({
      method: 'POST',
      url: '/auth/token',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      payload: form.toString(),
    });
    expect(tok.statusCode).toBe(200);
    expect(tok.headers['cache-control']).toBe('no-store');
    const tokens = json(tok) as { access_token: string; refresh_token: string; token_type: string; expires_in: number };
    expect(tokens.token_type).toBe('Bearer');
    expect(tokens.expires_in).toBe(15 * 60);

    const header = decodeProtectedHeader(tokens.access_token);
    expect(header).toMatchObject({ alg: 'RS256', typ: 'at+jwt' });
    expect(header.kid).toBeTruthy();
    const claims = decodeJwt(tokens.access_token);
    expect(claims).toMatchObject({
      iss: t.config.jwt.issuer,
      aud: 'tessera-test',
      sub: user.id,
      email,
      email_verified: false,
      roles: ['user'],
      permissions: [],
      amr: ['pwd'],
    });
    for (const c of ['iat', 'exp', 'jti', 'sid']) expect(claims).toHaveProperty(c);

    const me = await app.inject({ method: 'GET', url: '/users/me', headers: bearer(tokens.access_token) });
    expect(me.statusCode).toBe(200);
    expect(json(me)).toMatchObject({ id: user.id, email });

    const ref = await app.inject({ method: 'POST', url: '/auth/token', payload: { grant_type: 'refresh_token', refresh_token: tokens.refresh_token } });
    expect(ref.statusCode).toBe(200);
    const refreshed = json(ref) as { access_token: string; refresh_token: string };
    expect(refreshed.refresh_token).not.toBe(tokens.refresh_token);
    expect(decodeJwt(refreshed.access_token).sid).toBe(claims.sid);

    const out = await app.inject({ method: 'POST', url: '/auth/logout', headers: bearer(refreshed.access_token) });
    expect(out.statusCode).toBe(204);

    const after = await app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: refreshed.refresh_token } });
    expect(after.statusCode).toBe(400);
    expect(json(after).error).toBe('invalid_grant');
    // The access token of an ended session no longer opens Tessera's own endpoints.
    const meAfter = await app.inject({ method: 'GET', url: '/users/me', headers: bearer(refreshed.access_token) });
    expect(meAfter.statusCode).toBe(401);
    expect(json(meAfter).error).toBe('session_revoked');
  });

  it('logout with only the refresh token ends the session', async () => {
    const u = await signUp(t.app);
    const out = await t.app.inject({ method: 'POST', url: '/auth/logout', payload: { refresh_token: u.refresh } });
    expect(out.statusCode).toBe(204);
    const again = await t.app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: u.refresh } });
    expect(json(again).error).toBe('invalid_grant');
  });

  it('logout without any token is 401', async () => {
    const out = await t.app.inject({ method: 'POST', url: '/auth/logout' });
    expect(out.statusCode).toBe(401);
    expect(json(out).error).toBe('unauthorized');
  });

  it('logout/all ends every session of the user', async () => {
    const u = await signUp(t.app);
    const second = json(await t.app.inject({ method: 'POST', url: '/auth/login', payload: { email: u.email, password: u.password } })) as {
      refresh_token: string;
    };
    const res = await t.app.inject({ method: 'POST', url: '/auth/logout/all', headers: bearer(u.access) });
    expect(res.statusCode).toBe(204);
    for (const rt of [u.refresh, second.refresh_token]) {
      const r = await t.app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: rt } });
      expect(r.statusCode).toBe(400);
    }
  });
});

describe('/users/me', () => {
  it('requires a bearer token', async () => {
    const res = await t.app.inject({ method: 'GET', url: '/users/me' });
    expect(res.statusCode).toBe(401);
    expect(res.headers['www-authenticate']).toBe('Bearer');
    expect(json(res)).toMatchObject({ error: 'unauthorized' });
  });

  it('PATCH changes names only', async () => {
    const u = await signUp(t.app);
    const res = await t.app.inject({ method: 'PATCH', url: '/users/me', headers: bearer(u.access), payload: { first_name: '  Grace ', last_name: null } });
    expect(res.statusCode).toBe(200);
    expect(json(res)).toMatchObject({ first_name: 'Grace', last_name: null, email: u.email });
  });

  it('password change needs the current password and ends the other sessions', async () => {
    const u = await signUp(t.app);
    const other = json(await t.app.inject({ method: 'POST', url: '/auth/login', payload: { email: u.email, password: u.password } })) as {
      refresh_token: string;
    };

    const wrong = await t.app.inject({
      method: 'POST',
      url: '/users/me/password',
      headers: bearer(u.access),
      payload: { current_password: 'not the password', new_password: 'a brand new passphrase' },
    });
    expect(wrong.statusCode).toBe(403);
    expect(json(wrong).error).toBe('invalid_password');

    const common = await t.app.inject({
      method: 'POST',
      url: '/users/me/password',
      headers: bearer(u.access),
      payload: { current_password: u.password, new_password: 'password123' },
    });
    expect(common.statusCode).toBe(422);
    expect(json(common).error).toBe('password_too_common');

    const ok = await t.app.inject({
      method: 'POST',
      url: '/users/me/password',
      headers: bearer(u.access),
      payload: { current_password: u.password, new_password: 'a brand new passphrase' },
    });
    expect(ok.statusCode).toBe(204);

    // this session lives on, the other one is gone
    expect((await t.app.inject({ method: 'GET', url: '/users/me', headers: bearer(u.access) })).statusCode).toBe(200);
    expect((await t.app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: u.refresh } })).statusCode).toBe(200);
    expect((await t.app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: other.refresh_token } })).statusCode).toBe(400);

    const oldLogin = await t.app.inject({ method: 'POST', url: '/auth/login', payload: { email: u.email, password: u.password } });
    expect(oldLogin.statusCode).toBe(400);
    const newLogin = await t.app.inject({ method: 'POST', url: '/auth/login', payload: { email: u.email, password: 'a brand new passphrase' } });
    expect(newLogin.statusCode).toBe(200);
  });

  it('DELETE needs the password, then the account and its sessions are gone', async () => {
    const u = await signUp(t.app);
    const wrong = await t.app.inject({ method: 'DELETE', url: '/users/me', headers: bearer(u.access), payload: { password: 'nope nope nope' } });
    expect(wrong.statusCode).toBe(403);
    const missing = await t.app.inject({ method: 'DELETE', url: '/users/me', headers: bearer(u.access), payload: {} });
    expect(missing.statusCode).toBe(422);
    const ok = await t.app.inject({ method: 'DELETE', url: '/users/me', headers: bearer(u.access), payload: { password: u.password } });
    expect(ok.statusCode).toBe(204);
    expect((await t.app.inject({ method: 'GET', url: '/users/me', headers: bearer(u.access) })).statusCode).toBe(401);
    expect((await t.app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: u.refresh } })).statusCode).toBe(400);
    const login = await t.app.inject({ method: 'POST', url: '/auth/login', payload: { email: u.email, password: u.password } });
    expect(json(login).error).toBe('invalid_grant');
    // the email is free again
    expect((await t.app.inject({ method: 'POST', url: '/auth/register', payload: { email: u.email, password: PASSWORD } })).statusCode).toBe(201);
  });
});

describe('sessions', () => {
  it('lists live sessions and revokes one', async () => {
    const u = await signUp(t.app);
    const other = json(
      await t.app.inject({ method: 'POST', url: '/auth/login', headers: { 'user-agent': 'PhoneApp/1.0' }, payload: { email: u.email, password: u.password } }),
    ) as { refresh_token: string };
    const list = await t.app.inject({ method: 'GET', url: '/users/me/sessions', headers: bearer(u.access) });
    expect(list.statusCode).toBe(200);
    const sessions = list.json() as Array<{ id: string; current: boolean; user_agent: string | null }>;
    expect(sessions).toHaveLength(2);
    expect(sessions.filter((s) => s.current)).toHaveLength(1);
    const phone = sessions.find((s) => s.user_agent === 'PhoneApp/1.0')!;
    expect(phone.current).toBe(false);

    const del = await t.app.inject({ method: 'DELETE', url: `/users/me/sessions/${phone.id}`, headers: bearer(u.access) });
    expect(del.statusCode).toBe(204);
    expect((await t.app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: other.refresh_token } })).statusCode).toBe(400);
    const again = await t.app.inject({ method: 'DELETE', url: `/users/me/sessions/${phone.id}`, headers: bearer(u.access) });
    expect(again.statusCode).toBe(404);
    expect(json(again).error).toBe('session_not_found');
  });

  it("cannot revoke someone else's session, and a bad id is 422", async () => {
    const a = await signUp(t.app);
    const b = await signUp(t.app);
    const sid = decodeJwt(b.access).sid as string;
    const res = await t.app.inject({ method: 'DELETE', url: `/users/me/sessions/${sid}`, headers: bearer(a.access) });
    expect(res.statusCode).toBe(404);
    expect((await t.app.inject({ method: 'GET', url: '/users/me', headers: bearer(b.access) })).statusCode).toBe(200);
    const bad = await t.app.inject({ method: 'DELETE', url: '/users/me/sessions/not-a-uuid', headers: bearer(a.access) });
    expect(bad.statusCode).toBe(422);
  });

  it('a session ends at its absolute lifetime', async () => {
    const u = await signUp(t.app);
    t.clock.advance(29 * 24 * 3600 * 1000);
    const ok = await t.app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: u.refresh } });
    expect(ok.statusCode).toBe(200);
    const next = (json(ok) as { refresh_token: string }).refresh_token;
    t.clock.advance(2 * 24 * 3600 * 1000);
    const expired = await t.app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: next } });
    expect(expired.statusCode).toBe(400);
    expect(json(expired).error).toBe('invalid_grant');
  });
});
