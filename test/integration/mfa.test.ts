import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { eq } from 'drizzle-orm';
import jsQRModule from 'jsqr';
import { generate, generateSecret } from 'otplib';
import { PNG } from 'pngjs';
import { decodeJwt } from 'jose';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auditEvents } from '../../src/features/audit/tables.js';
import { recoveryCodes, userTotp } from '../../src/features/mfa/tables.js';
import { outbox } from '../../src/features/mail/tables.js';
import { SoftAuthenticator } from '../helpers/soft-authenticator.js';
import { PASSWORD, TEST_ISSUER, bearer, createTestApp, json, signUp, type TestApp } from '../helpers/test-app.js';

// jsqr is CommonJS: its module object is the decoder itself.
const jsQR = jsQRModule as unknown as (data: Uint8ClampedArray, width: number, height: number) => { data: string } | null;

// TOTP enrolment, sign-in with a second step, replay and drift rules, recovery codes,
// the failure limit, and what is stored: codes computed by the test with otplib from the
// returned secret, at times set on the manual clock.

let t: TestApp;
beforeAll(async () => {
  t = await createTestApp({ env: { MFA_MAX_FAILURES: '3' } });
});
afterAll(async () => {
  await t?.close();
});

const at = () => Math.floor(t.clock.now().getTime() / 1000);
const codeFor = (secret: string, offsetSteps = 0) => generate({ secret, epoch: at() + offsetSteps * 30 });
const post = (app: FastifyInstance, url: string, payload: object, headers: Record<string, string> = {}) =>
  app.inject({ method: 'POST', url, payload, headers });

/** Moves the manual clock to the start of the next 30 s step (a fresh TOTP code). */
function nextStep() {
  const ms = t.clock.now().getTime();
  t.clock.advance(30_000 - (ms % 30_000) + 1000);
}

/** A user with TOTP on: returns its secret, recovery codes, and a session signed in with a code. */
async function enrolled() {
  const user = await signUp(t.app);
  const start = await post(t.app, '/users/me/mfa/totp', {}, bearer(user.access));
  expect(start.statusCode, start.body).toBe(200);
  const { secret, otpauth_uri, qr_code } = json(start) as { secret: string; otpauth_uri: string; qr_code: string };
  const verify = await post(t.app, '/users/me/mfa/totp/verify', { code: await codeFor(secret) }, bearer(user.access));
  expect(verify.statusCode, verify.body).toBe(200);
  const codes = (json(verify) as { recovery_codes: string[] }).recovery_codes;
  nextStep();
  const challenge = await post(t.app, '/auth/login', { email: user.email, password: PASSWORD });
  const mfaToken = json(challenge).mfa_token as string;
  const done = await post(t.app, '/auth/mfa/verify', { mfa_token: mfaToken, code: await codeFor(secret) });
  expect(done.statusCode, done.body).toBe(200);
  nextStep();
  return { ...user, secret, otpauthUri: otpauth_uri, qrCode: qr_code, codes, mfaAccess: json(done).access_token as string };
}

describe('enrolment', () => {
  it('returns a secret, its otpauth URI and a QR code of that URI; nothing is on until a first code', async () => {
    const user = await signUp(t.app);
    const start = await post(t.app, '/users/me/mfa/totp', {}, bearer(user.access));
    expect(start.statusCode, start.body).toBe(200);
    expect(start.headers['cache-control']).toBe('no-store');
    const { secret, otpauth_uri, qr_code } = json(start) as { secret: string; otpauth_uri: string; qr_code: string };
    expect(secret).toMatch(/^[A-Z2-7]{32}$/);
    const uri = new URL(otpauth_uri);
    expect(uri.protocol).toBe('otpauth:');
    expect(uri.searchParams.get('secret')).toBe(secret);
    expect(uri.searchParams.get('issuer')).toBe('Tessera');
    expect(decodeURIComponent(uri.pathname)).toContain(user.email);

    expect(qr_code.startsWith('data:image/png;base64,')).toBe(true);
    const png = PNG.sync.read(Buffer.from(qr_code.slice('data:image/png;base64,'.length), 'base64'));
    expect(jsQR(new Uint8ClampedArray(png.data), png.width, png.height)?.data).toBe(otpauth_uri);

    // Not active yet: a password sign-in still gives tokens.
    expect((await post(t.app, '/auth/login', { email: user.email, password: PASSWORD })).statusCode).toBe(200);
    expect(json(await t.app.inject({ method: 'GET', url: '/users/me/mfa', headers: bearer(user.access) }))).toEqual({
      totp_enabled: false,
      recovery_codes_remaining: 0,
    });

    // The secret at rest is encrypted, never the plain base32.
    const [row] = await t.db.handle.db.select().from(userTotp).where(eq(userTotp.userId, user.userId));
    expect(row?.sealedSecret).toMatch(/^v1\.mfa\./);
    expect(row?.sealedSecret).not.toContain(secret);

    const wrong = await post(t.app, '/users/me/mfa/totp/verify', { code: '000000' }, bearer(user.access));
    expect(json(wrong).error).toBe('invalid_mfa_code');
    const ok = await post(t.app, '/users/me/mfa/totp/verify', { code: await codeFor(secret) }, bearer(user.access));
    expect(ok.statusCode, ok.body).toBe(200);
    const codes = (json(ok) as { recovery_codes: string[] }).recovery_codes;
    expect(codes).toHaveLength(10);
    expect(new Set(codes).size).toBe(10);
    for (const c of codes) expect(c).toMatch(/^[a-z2-7]{4}(-[a-z2-7]{4}){5}$/);
    // Stored as hashes only.
    const stored = JSON.stringify(await t.db.handle.db.select().from(recoveryCodes).where(eq(recoveryCodes.userId, user.userId)));
    for (const c of codes) expect(stored).not.toContain(c.replace(/-/g, ''));
    expect(json(await t.app.inject({ method: 'GET', url: '/users/me/mfa', headers: bearer(user.access) }))).toEqual({
      totp_enabled: true,
      recovery_codes_remaining: 10,
    });
    expect(json(await post(t.app, '/users/me/mfa/totp', {}, bearer(user.access))).error).toBe('mfa_already_enabled');
  });

  it('needs the password once the sign-in is older than MFA_REAUTH_WINDOW', async () => {
    const user = await signUp(t.app);
    t.clock.advance(6 * 60_000);
    const fresh = await post(t.app, '/auth/refresh', { refresh_token: user.refresh });
    const access = json(fresh).access_token as string;
    expect(json(await post(t.app, '/users/me/mfa/totp', {}, bearer(access))).error).toBe('reauthentication_required');
    expect(json(await post(t.app, '/users/me/mfa/totp', { password: 'not my password' }, bearer(access))).error).toBe('invalid_password');
    expect((await post(t.app, '/users/me/mfa/totp', { password: PASSWORD }, bearer(access))).statusCode).toBe(200);
    expect(json(await post(t.app, '/users/me/mfa/totp/verify', { code: '123456' }, bearer(user.access)))).toMatchObject({ error: 'invalid_mfa_code' });
  });
});

describe('sign-in with a second step', () => {
  it('password → 403 mfa_required with an mfa_token → code → tokens with amr pwd+otp', async () => {
    const u = await enrolled();
    for (const res of [
      await post(t.app, '/auth/login', { email: u.email, password: PASSWORD }),
      await t.app.inject({ method: 'POST', url: '/auth/token', payload: { grant_type: 'password', username: u.email, password: PASSWORD } }),
    ]) {
      expect(res.statusCode, res.body).toBe(403);
      expect(res.headers['cache-control']).toBe('no-store');
      const body = json(res);
      expect(body).toMatchObject({ error: 'mfa_required', expires_in: 300 });
      expect(body).not.toHaveProperty('access_token');
      expect(body.mfa_token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    }
    // A wrong password is still the generic error: MFA is not revealed.
    expect(json(await post(t.app, '/auth/login', { email: u.email, password: 'wrong password here' })).error).toBe('invalid_grant');

    const challenge = json(await post(t.app, '/auth/login', { email: u.email, password: PASSWORD }));
    const mfaToken = challenge.mfa_token as string;
    // The mfa_token is not an access token anywhere.
    expect((await t.app.inject({ method: 'GET', url: '/users/me', headers: bearer(mfaToken) })).statusCode).toBe(401);
    const done = await post(t.app, '/auth/mfa/verify', { mfa_token: mfaToken, code: await codeFor(u.secret) });
    expect(done.statusCode, done.body).toBe(200);
    expect(decodeJwt(json(done).access_token as string).amr).toEqual(['pwd', 'otp']);
    // Single-use.
    nextStep();
    expect(json(await post(t.app, '/auth/mfa/verify', { mfa_token: mfaToken, code: await codeFor(u.secret) })).error).toBe('mfa_token_invalid');
    // Refreshes keep the amr.
    const refreshed = await post(t.app, '/auth/refresh', { refresh_token: json(done).refresh_token as string });
    expect(decodeJwt(json(refreshed).access_token as string).amr).toEqual(['pwd', 'otp']);
  });

  it('a code works once; a code two steps old is refused; one step of drift is accepted', async () => {
    const u = await enrolled();
    const token = async () => json(await post(t.app, '/auth/login', { email: u.email, password: PASSWORD })).mfa_token as string;
    const code = await codeFor(u.secret);
    expect((await post(t.app, '/auth/mfa/verify', { mfa_token: await token(), code })).statusCode).toBe(200);
    // The same code again, in the same step: a replay.
    expect(json(await post(t.app, '/auth/mfa/verify', { mfa_token: await token(), code })).error).toBe('invalid_mfa_code');
    // Three steps later: the code of two steps ago (never used) is out of the ±1 window; last step's is in.
    nextStep();
    nextStep();
    nextStep();
    expect(json(await post(t.app, '/auth/mfa/verify', { mfa_token: await token(), code: await codeFor(u.secret, -2) })).error).toBe('invalid_mfa_code');
    expect((await post(t.app, '/auth/mfa/verify', { mfa_token: await token(), code: await codeFor(u.secret, -1) })).statusCode).toBe(200);
    // A code one step ahead (a phone whose clock is fast) is good too.
    expect((await post(t.app, '/auth/mfa/verify', { mfa_token: await token(), code: await codeFor(u.secret, 1) })).statusCode).toBe(200);
  });

  it('each recovery code works once', async () => {
    const u = await enrolled();
    const token = async () => json(await post(t.app, '/auth/login', { email: u.email, password: PASSWORD })).mfa_token as string;
    const code = u.codes[3] as string;
    const ok = await post(t.app, '/auth/mfa/verify', { mfa_token: await token(), code: code.toUpperCase().replace(/-/g, ' ') });
    expect(ok.statusCode, ok.body).toBe(200);
    expect(json(await post(t.app, '/auth/mfa/verify', { mfa_token: await token(), code })).error).toBe('invalid_mfa_code');
    expect(json(await t.app.inject({ method: 'GET', url: '/users/me/mfa', headers: bearer(u.mfaAccess) })).recovery_codes_remaining).toBe(9);
  });

  it('an expired mfa_token is refused', async () => {
    const u = await enrolled();
    const mfaToken = json(await post(t.app, '/auth/login', { email: u.email, password: PASSWORD })).mfa_token as string;
    t.clock.advance(301_000);
    expect(json(await post(t.app, '/auth/mfa/verify', { mfa_token: mfaToken, code: await codeFor(u.secret) })).error).toBe('mfa_token_invalid');
    expect(json(await post(t.app, '/auth/mfa/verify', { mfa_token: 'x'.repeat(43), code: '123456' })).error).toBe('mfa_token_invalid');
  });

  it('wrong codes are limited per user (MFA_MAX_FAILURES=3): then even the right code gets 429 until the window ends', async () => {
    const u = await enrolled();
    const mfaToken = json(await post(t.app, '/auth/login', { email: u.email, password: PASSWORD })).mfa_token as string;
    const statuses: number[] = [];
    for (let i = 0; i < 3; i++) statuses.push((await post(t.app, '/auth/mfa/verify', { mfa_token: mfaToken, code: '000000' })).statusCode);
    expect(statuses).toEqual([400, 400, 429]);
    const locked = await post(t.app, '/auth/mfa/verify', { mfa_token: mfaToken, code: await codeFor(u.secret) });
    expect(locked.statusCode).toBe(429);
    expect(json(locked).error).toBe('too_many_attempts');
    expect(Number(locked.headers['retry-after'])).toBeGreaterThan(0);
    t.clock.advance(15 * 60_000 + 1000);
    const fresh = json(await post(t.app, '/auth/login', { email: u.email, password: PASSWORD })).mfa_token as string;
    expect((await post(t.app, '/auth/mfa/verify', { mfa_token: fresh, code: await codeFor(u.secret) })).statusCode).toBe(200);
    // Failures are audited and the user is told by email (capped).
    const events = await t.db.handle.db.select().from(auditEvents).where(eq(auditEvents.userId, u.userId));
    expect(events.filter((e) => e.type === 'mfa_failed').length).toBe(3);
    expect(JSON.stringify(events)).not.toContain(u.secret);
    const mails = await t.db.handle.db.select().from(outbox).where(eq(outbox.recipient, u.email));
    expect(mails.map((m) => m.kind)).toContain('mfa_failed');
    expect(mails.map((m) => m.kind)).toContain('mfa_enabled');
  });

  it('24 wrong codes in parallel on one mfa_token: only MFA_MAX_FAILURES (3) are checked, the others get 429 before any check', async () => {
    const u = await enrolled();
    const mfaToken = json(await post(t.app, '/auth/login', { email: u.email, password: PASSWORD })).mfa_token as string;
    // A real listening server: the requests really run side by side.
    const base = await t.app.listen({ port: 0, host: '127.0.0.1' });
    const answers = await Promise.all(
      Array.from({ length: 24 }, (_, i) =>
        fetch(`${base}/auth/mfa/verify`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ mfa_token: mfaToken, code: String(100000 + i) }),
        }),
      ),
    );
    const results = await Promise.all(answers.map(async (r) => `${r.status} ${((await r.json()) as { error: string }).error}`));
    // Each check that happened is an mfa_failed event: exactly the limit.
    const checked = (await t.db.handle.db.select().from(auditEvents).where(eq(auditEvents.userId, u.userId))).filter((e) => e.type === 'mfa_failed');
    expect(checked).toHaveLength(3);
    expect(results.filter((r) => r === '400 invalid_mfa_code')).toHaveLength(2);
    expect(results.filter((r) => r === '429 too_many_attempts')).toHaveLength(22);
    // And the right code now is refused too, until the window ends.
    expect((await post(t.app, '/auth/mfa/verify', { mfa_token: mfaToken, code: await codeFor(u.secret) })).statusCode).toBe(429);
    t.clock.advance(15 * 60_000 + 1000);
  });

  it('a password reset through the emailed link does not bypass MFA', async () => {
    const u = await enrolled();
    expect((await post(t.app, '/auth/password/forgot', { email: u.email })).statusCode).toBe(202);
    // Without SMTP the message is written to DATA_DIR/mail/<outbox id>.eml: take the link from there.
    let eml = '';
    for (let i = 0; i < 200 && !eml; i++) {
      const [row] = (await t.db.handle.db.select().from(outbox).where(eq(outbox.recipient, u.email))).filter(
        (m) => m.kind === 'password_reset' && m.status === 'sent',
      );
      const file = row ? path.join(t.config.dataDir, 'mail', `${row.id}.eml`) : '';
      if (file && existsSync(file)) eml = readFileSync(file, 'utf8').replace(/=\n/g, '');
      else await new Promise((r) => setTimeout(r, 25));
    }
    const token = /token=3D([A-Za-z0-9_-]{43})/.exec(eml)?.[1] ?? '';
    expect(token).toHaveLength(43);
    expect((await post(t.app, '/auth/password/reset', { token, password: 'a brand new passphrase 42' })).statusCode).toBe(204);
    const res = await post(t.app, '/auth/login', { email: u.email, password: 'a brand new passphrase 42' });
    expect(res.statusCode).toBe(403);
    expect(json(res).error).toBe('mfa_required');
  });
});

describe('turning it off and new recovery codes', () => {
  it('need a session signed in with a code, the password and a current code', async () => {
    const u = await enrolled();
    // The session from before enrolment (amr pwd only) may not turn MFA off.
    const old = await t.app.inject({
      method: 'DELETE',
      url: '/users/me/mfa/totp',
      payload: { password: PASSWORD, code: await codeFor(u.secret) },
      headers: bearer(u.access),
    });
    expect(old.statusCode).toBe(403);
    expect(json(old).error).toBe('insufficient_user_authentication');

    const regen = await post(t.app, '/users/me/mfa/recovery-codes', { password: PASSWORD }, bearer(u.mfaAccess));
    expect(regen.statusCode, regen.body).toBe(200);
    const fresh = (json(regen) as { recovery_codes: string[] }).recovery_codes;
    expect(fresh.some((c) => u.codes.includes(c))).toBe(false);
    const token = async () => json(await post(t.app, '/auth/login', { email: u.email, password: PASSWORD })).mfa_token as string;
    expect(json(await post(t.app, '/auth/mfa/verify', { mfa_token: await token(), code: u.codes[0] as string })).error).toBe('invalid_mfa_code');

    const del = (body: object) => t.app.inject({ method: 'DELETE', url: '/users/me/mfa/totp', payload: body, headers: bearer(u.mfaAccess) });
    expect(json(await del({ password: 'wrong password', code: await codeFor(u.secret) })).error).toBe('invalid_password');
    const off = await del({ password: PASSWORD, code: fresh[0] as string });
    expect(off.statusCode, off.body).toBe(204);
    expect((await post(t.app, '/auth/login', { email: u.email, password: PASSWORD })).statusCode).toBe(200);
    const types = (await t.db.handle.db.select().from(auditEvents).where(eq(auditEvents.userId, u.userId))).map((e) => e.type);
    expect(types).toEqual(expect.arrayContaining(['mfa_enabled', 'mfa_sign_in', 'mfa_recovery_codes_regenerated', 'mfa_disabled']));
    const kinds = (await t.db.handle.db.select().from(outbox).where(eq(outbox.recipient, u.email))).map((m) => m.kind);
    expect(kinds).toEqual(expect.arrayContaining(['mfa_enabled', 'mfa_recovery_codes_regenerated', 'mfa_disabled']));
  });

  it('a session signed in with a passkey with user verification may too (amr hwk + user); one without user verification may not', async () => {
    const u = await enrolled();
    const authenticator = new SoftAuthenticator(TEST_ISSUER);
    const options = await post(t.app, '/users/me/passkeys/options', { password: PASSWORD }, bearer(u.access));
    expect(options.statusCode, options.body).toBe(200);
    const added = await post(t.app, '/users/me/passkeys', { credential: authenticator.create(json(options) as never) }, bearer(u.access));
    expect(added.statusCode, added.body).toBe(201);
    const signIn = json(await post(t.app, '/auth/passkey/options', {})) as { flow_id: string; options: { challenge: string } };
    const verified = await post(t.app, '/auth/passkey/verify', { flow_id: signIn.flow_id, credential: authenticator.get(signIn.options) });
    expect(verified.statusCode, verified.body).toBe(200);
    const access = json(verified).access_token as string;
    expect(decodeJwt(access).amr).toEqual(['hwk', 'user']);
    const regen = await post(t.app, '/users/me/mfa/recovery-codes', { password: PASSWORD }, bearer(access));
    expect(regen.statusCode, regen.body).toBe(200);
    const off = await t.app.inject({
      method: 'DELETE',
      url: '/users/me/mfa/totp',
      payload: { password: PASSWORD, code: await codeFor(u.secret) },
      headers: bearer(access),
    });
    expect(off.statusCode, off.body).toBe(204);

    // Without user verification a passkey is one factor: the guard refuses its session.
    const plain = await signUp(t.app);
    const noUv = new SoftAuthenticator(TEST_ISSUER, false);
    const plainOptions = await post(t.app, '/users/me/passkeys/options', { password: PASSWORD }, bearer(plain.access));
    expect((await post(t.app, '/users/me/passkeys', { credential: noUv.create(json(plainOptions) as never) }, bearer(plain.access))).statusCode).toBe(201);
    const again = json(await post(t.app, '/auth/passkey/options', {})) as { flow_id: string; options: { challenge: string } };
    const one = await post(t.app, '/auth/passkey/verify', { flow_id: again.flow_id, credential: noUv.get(again.options) });
    expect(decodeJwt(json(one).access_token as string).amr).toEqual(['hwk']);
    const refused = await post(t.app, '/users/me/mfa/recovery-codes', { password: PASSWORD }, bearer(json(one).access_token as string));
    expect([refused.statusCode, json(refused).error]).toEqual([403, 'insufficient_user_authentication']);
  });

  it('a secret generated elsewhere never verifies', async () => {
    const u = await enrolled();
    const mfaToken = json(await post(t.app, '/auth/login', { email: u.email, password: PASSWORD })).mfa_token as string;
    expect(json(await post(t.app, '/auth/mfa/verify', { mfa_token: mfaToken, code: await generate({ secret: generateSecret(), epoch: at() }) })).error).toBe(
      'invalid_mfa_code',
    );
  });
});
