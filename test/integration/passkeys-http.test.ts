import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.js';
import { SmtpCatcher } from '../helpers/smtp.js';
import { bearer, createTestApp, signUp, uniqueEmail, type TestApp } from '../helpers/test-app.js';

// Passkeys and email sign-in through HTTP without a browser: configuration, the related-origins
// file, what is refused before any ceremony, and the password sign-in counters on emailed codes.

const ANDROID = 'android:apk-key-hash:' + 'A'.repeat(43);
let t: TestApp;

beforeAll(async () => {
  t = await createTestApp({
    env: {
      PUBLIC_URL: 'https://id.example.com',
      WEBAUTHN_RP_ID: 'example.com',
      WEBAUTHN_ORIGINS: `https://id.example.com,https://shop.example.net,${ANDROID}`,
    },
  });
});

afterAll(async () => {
  await t?.close();
});

describe('WebAuthn configuration', () => {
  const env = (extra: Record<string, string>) => ({ NODE_ENV: 'test', PUBLIC_URL: 'https://id.example.com', ...extra });

  it('defaults to the host and origin of PUBLIC_URL and APP_NAME', () => {
    const c = loadConfig(env({ APP_NAME: 'Acme' })).webauthn;
    expect(c).toMatchObject({
      rpId: 'id.example.com',
      rpName: 'Acme',
      origins: ['https://id.example.com'],
      userVerification: 'preferred',
      challengeSeconds: 300,
    });
  });

  it('accepts Android app origins, and refuses an origin that is not one or an RP ID no origin is on', () => {
    expect(loadConfig(env({ WEBAUTHN_ORIGINS: `https://id.example.com,${ANDROID}` })).webauthn.origins).toEqual(['https://id.example.com', ANDROID]);
    expect(() => loadConfig(env({ WEBAUTHN_ORIGINS: 'https://id.example.com/path' }))).toThrow(/WEBAUTHN_ORIGINS/);
    expect(() => loadConfig(env({ WEBAUTHN_ORIGINS: 'android:apk-key-hash:short' }))).toThrow(/WEBAUTHN_ORIGINS/);
    expect(() => loadConfig(env({ WEBAUTHN_RP_ID: 'other.org' }))).toThrow(/WEBAUTHN_RP_ID/);
    expect(() => loadConfig(env({ WEBAUTHN_USER_VERIFICATION: 'sometimes' }))).toThrow(/WEBAUTHN_USER_VERIFICATION/);
  });
});

describe('GET /.well-known/webauthn', () => {
  it('lists the web origins (not the Android ones) when several share the RP ID', async () => {
    const res = await t.app.inject({ method: 'GET', url: '/.well-known/webauthn' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ origins: ['https://id.example.com', 'https://shop.example.net'] });
  });

  it('is not served with a single web origin', async () => {
    const single = await createTestApp({ db: t.db });
    try {
      expect((await single.app.inject({ method: 'GET', url: '/.well-known/webauthn' })).statusCode).toBe(404);
    } finally {
      await single.close();
    }
  });
});

describe('before any ceremony', () => {
  it('the management endpoints need a session; options carry the RP and exclude nothing yet', async () => {
    expect((await t.app.inject({ method: 'GET', url: '/users/me/passkeys' })).statusCode).toBe(401);
    expect((await t.app.inject({ method: 'POST', url: '/users/me/passkeys/options', payload: {} })).statusCode).toBe(401);
    const user = await signUp(t.app, uniqueEmail('opts'));
    const res = await t.app.inject({ method: 'POST', url: '/users/me/passkeys/options', headers: bearer(user.access), payload: {} });
    expect(res.statusCode).toBe(200);
    expect(res.headers['cache-control']).toBe('no-store');
    expect(res.json()).toMatchObject({
      rp: { id: 'example.com' },
      user: { name: user.email },
      excludeCredentials: [],
      authenticatorSelection: { residentKey: 'preferred' },
    });
  });

  it('adding a passkey long after signing in needs the password', async () => {
    const user = await signUp(t.app, uniqueEmail('stale'));
    t.clock.advance(6 * 60_000);
    const stale = await t.app.inject({ method: 'POST', url: '/users/me/passkeys/options', headers: bearer(user.access), payload: {} });
    expect(stale.json().error).toBe('reauthentication_required');
    const wrong = await t.app.inject({
      method: 'POST',
      url: '/users/me/passkeys/options',
      headers: bearer(user.access),
      payload: { password: 'not the password' },
    });
    expect(wrong.json().error).toBe('invalid_password');
    const right = await t.app.inject({ method: 'POST', url: '/users/me/passkeys/options', headers: bearer(user.access), payload: { password: user.password } });
    expect(right.statusCode).toBe(200);
  });

  it('a registration answering no challenge of this user, and a sign-in with an unknown flow, are refused', async () => {
    const user = await signUp(t.app, uniqueEmail('forged'));
    const clientDataJSON = Buffer.from(JSON.stringify({ type: 'webauthn.create', challenge: 'AAAA', origin: 'https://id.example.com' })).toString('base64url');
    const credential = { id: 'AAAA', rawId: 'AAAA', type: 'public-key', response: { clientDataJSON, attestationObject: 'AAAA' }, clientExtensionResults: {} };
    const reg = await t.app.inject({ method: 'POST', url: '/users/me/passkeys', headers: bearer(user.access), payload: { credential } });
    expect(reg.json().error).toBe('passkey_challenge_invalid');
    const assertion = { ...credential, response: { clientDataJSON, authenticatorData: 'AAAA', signature: 'AAAA' } };
    const verify = await t.app.inject({ method: 'POST', url: '/auth/passkey/verify', payload: { flow_id: 'x'.repeat(43), credential: assertion } });
    expect(verify.json().error).toBe('passkey_challenge_invalid');
    // A real flow, a garbage assertion: refused as one invalid passkey, and the flow is used up.
    const opts = (await t.app.inject({ method: 'POST', url: '/auth/passkey/options', payload: {} })).json<{ flow_id: string }>();
    const bad = await t.app.inject({ method: 'POST', url: '/auth/passkey/verify', payload: { flow_id: opts.flow_id, credential: assertion } });
    expect(bad.json().error).toBe('passkey_invalid');
    const again = await t.app.inject({ method: 'POST', url: '/auth/passkey/verify', payload: { flow_id: opts.flow_id, credential: assertion } });
    expect(again.json().error).toBe('passkey_challenge_invalid');
  });

  it('a sign-in flow expires after WEBAUTHN_CHALLENGE_TTL', async () => {
    const opts = (await t.app.inject({ method: 'POST', url: '/auth/passkey/options', payload: {} })).json<{ flow_id: string; options: { timeout: number } }>();
    expect(opts.options.timeout).toBe(300_000);
    t.clock.advance(301_000);
    const assertion = {
      id: 'AAAA',
      rawId: 'AAAA',
      type: 'public-key',
      response: { clientDataJSON: 'AAAA', authenticatorData: 'AAAA', signature: 'AAAA' },
      clientExtensionResults: {},
    };
    const late = await t.app.inject({ method: 'POST', url: '/auth/passkey/verify', payload: { flow_id: opts.flow_id, credential: assertion } });
    expect(late.json().error).toBe('passkey_challenge_invalid');
  });
});

describe('emailed codes and the password sign-in counters', () => {
  it('wrong codes for one address, even over new codes, start the same delay as wrong passwords (429 sign_in_throttled)', async () => {
    const smtp = await SmtpCatcher.start();
    const guarded = await createTestApp({
      db: t.db,
      env: {
        EMAIL_SIGN_IN_ENABLED: 'true',
        BRUTE_FORCE_ENABLED: 'true',
        BRUTE_FORCE_FREE_ATTEMPTS: '3',
        SMTP_SERVER: '127.0.0.1',
        SMTP_PORT: String(smtp.port),
        EMAIL_RESEND_INTERVAL: '0',
      },
    });
    try {
      const email = uniqueEmail('counted');
      const grant = (code: string) =>
        guarded.app.inject({ method: 'POST', url: '/auth/token', payload: { grant_type: 'urn:tessera:params:oauth:grant-type:email-code', email, code } });
      const statuses: number[] = [];
      for (let i = 0; i < 2; i++) {
        expect((await guarded.app.inject({ method: 'POST', url: '/auth/email-code', payload: { email } })).statusCode).toBe(202);
        statuses.push((await grant('000000')).statusCode, (await grant('000001')).statusCode);
      }
      expect(statuses.slice(0, 3)).toEqual([400, 400, 400]);
      expect(statuses.at(-1)).toBe(429);
    } finally {
      await guarded.close();
      await smtp.close();
    }
  });
});
