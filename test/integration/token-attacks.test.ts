import { createHmac, createPrivateKey, randomUUID, type KeyObject } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SignJWT, decodeJwt, decodeProtectedHeader, exportJWK, generateKeyPair, type CryptoKey, type JWTPayload } from 'jose';
import { testKeys } from '../helpers/keys.js';
import { bearer, createTestApp, json, signUp, type TestApp } from '../helpers/test-app.js';

/**
 * Forged and misused tokens against the access-token verifier (DESIGN §3:
 * pinned algorithm; iss, aud, exp and typ required; jku/jwk/x5u ignored).
 * Every forgery differs from the positive control (a token we sign with the
 * real key and all claims, which IS accepted) in one respect only.
 */

let t: TestApp;
let realPrivateKey: KeyObject;
let publicKeyPem: string;
let realKid: string;
let refreshSecret: Uint8Array;

beforeAll(async () => {
  t = await createTestApp();
  const keys = await testKeys();
  realPrivateKey = createPrivateKey(keys.privateKey);
  publicKeyPem = keys.publicKey;
  realKid = keys.ring.current.kid;
  refreshSecret = keys.ring.current.refreshSecret;
});
afterAll(async () => {
  await t?.close();
});

const b64url = (v: string | Buffer) => Buffer.from(v).toString('base64url');
const b64json = (v: unknown) => b64url(JSON.stringify(v));

/** A signed-up user with the claims of its real access token. */
async function user() {
  const u = await signUp(t.app);
  return { ...u, claims: decodeJwt(u.access), header: decodeProtectedHeader(u.access) };
}

type Header = Record<string, unknown>;

/** Signs with jose: by default exactly what Tessera would sign (RS256, real kid, typ at+jwt, real key). */
async function sign(payload: JWTPayload, header: Header = {}, key: KeyObject | CryptoKey = realPrivateKey): Promise<string> {
  const h: Header = { alg: 'RS256', kid: realKid, typ: 'at+jwt', ...header };
  for (const [k, v] of Object.entries(h)) if (v === undefined) delete h[k];
  return new SignJWT(payload).setProtectedHeader(h as { alg: string }).sign(key);
}

/** Fresh claims for the given user, as Tessera would issue them now. */
function claimsFor(u: Awaited<ReturnType<typeof user>>, overrides: JWTPayload = {}): JWTPayload {
  const now = Math.floor(t.clock.now().getTime() / 1000);
  return { ...u.claims, iat: now, exp: now + 15 * 60, jti: randomUUID(), ...overrides };
}

/** An HS256 JWS built by hand (no library refuses the key for us). */
function hs256(header: Header, payload: JWTPayload, secret: Buffer | Uint8Array | string): string {
  const input = `${b64json(header)}.${b64json(payload)}`;
  return `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`;
}

async function me(token: string) {
  return t.app.inject({ method: 'GET', url: '/users/me', headers: bearer(token) });
}

async function expectRejected(token: string) {
  const res = await me(token);
  expect(res.statusCode).toBe(401);
  expect(json(res).error).toBe('invalid_token');
  expect(res.headers['www-authenticate']).toBe('Bearer error="invalid_token"');
}

async function expectAccepted(token: string, userId: string) {
  const res = await me(token);
  expect(res.statusCode).toBe(200);
  expect(json(res).id).toBe(userId);
}

describe('positive controls', () => {
  it('the real access token is accepted', async () => {
    const u = await user();
    expect(u.header).toEqual({ alg: 'RS256', kid: realKid, typ: 'at+jwt' });
    await expectAccepted(u.access, u.userId);
  });

  it('a token built here with SignJWT, the real key and all claims is accepted (the forgery builder is right)', async () => {
    const u = await user();
    const forged = await sign(claimsFor(u));
    expect(forged).not.toBe(u.access);
    await expectAccepted(forged, u.userId);
  });

  it('the hand-built HS256 refresh token with the real refresh secret is accepted (the refresh builder is right)', async () => {
    const u = await user();
    const rt = decodeJwt(u.refresh);
    const forged = hs256({ alg: 'HS256', kid: realKid, typ: 'rt+jwt' }, { ...rt, jti: randomUUID() }, refreshSecret);
    const res = await t.app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: forged } });
    expect(res.statusCode).toBe(200);
  });
});

describe('access tokens GET /users/me rejects', () => {
  it('alg: none (unsigned), in any spelling', async () => {
    const u = await user();
    const payload = b64json(claimsFor(u));
    for (const alg of ['none', 'None', 'NONE', 'nOnE']) {
      await expectRejected(`${b64json({ alg, typ: 'at+jwt' })}.${payload}.`);
      await expectRejected(`${b64json({ alg, kid: realKid, typ: 'at+jwt' })}.${payload}.`);
      // with the original signature left on
      await expectRejected(`${b64json({ alg, kid: realKid, typ: 'at+jwt' })}.${payload}.${u.access.split('.')[2]}`);
    }
    await expectAccepted(u.access, u.userId);
  });

  it('HS256 signed with the public key PEM as the HMAC secret (algorithm confusion)', async () => {
    const u = await user();
    const claims = claimsFor(u);
    for (const secret of [publicKeyPem, publicKeyPem.trim(), Buffer.from(publicKeyPem)]) {
      await expectRejected(hs256({ alg: 'HS256', kid: realKid, typ: 'at+jwt' }, claims, secret));
      await expectRejected(hs256({ alg: 'HS256', typ: 'at+jwt' }, claims, secret));
    }
    // the public JWK's members as a secret, too
    const jwk = JSON.stringify((await testKeys()).ring.current.publicJwk);
    await expectRejected(hs256({ alg: 'HS256', kid: realKid, typ: 'at+jwt' }, claims, jwk));
  });

  it('expired (15 minutes later)', async () => {
    const u = await user();
    await expectAccepted(u.access, u.userId);
    t.clock.advance(14 * 60 * 1000 + 59 * 1000);
    await expectAccepted(u.access, u.userId);
    t.clock.advance(2 * 1000);
    await expectRejected(u.access);
    // a token made to look fresh again by editing exp keeps the old signature: rejected
    const [h, , s] = u.access.split('.');
    await expectRejected(`${h}.${b64json({ ...u.claims, exp: (u.claims.exp ?? 0) + 3600 })}.${s}`);
  });

  it('an expired token signed with the real key', async () => {
    const u = await user();
    const now = Math.floor(t.clock.now().getTime() / 1000);
    await expectRejected(await sign(claimsFor(u, { iat: now - 3600, exp: now - 1 })));
    // and one without exp at all
    const noExp = claimsFor(u);
    delete noExp.exp;
    await expectRejected(await sign(noExp));
  });

  it('wrong aud', async () => {
    const u = await user();
    for (const aud of ['someone-else', t.config.jwt.issuer, ['someone-else'], 'tessera-test ', 'TESSERA-TEST']) {
      await expectRejected(await sign(claimsFor(u, { aud })));
    }
    const noAud = claimsFor(u);
    delete noAud.aud;
    await expectRejected(await sign(noAud));
  });

  it('wrong iss', async () => {
    const u = await user();
    for (const iss of ['http://evil.test', `${t.config.jwt.issuer}/`, 'https://tessera.test']) {
      await expectRejected(await sign(claimsFor(u, { iss })));
    }
    const noIss = claimsFor(u);
    delete noIss.iss;
    await expectRejected(await sign(noIss));
  });

  it('a refresh token used as the bearer', async () => {
    const u = await user();
    expect(decodeProtectedHeader(u.refresh)).toMatchObject({ alg: 'HS256', typ: 'rt+jwt' });
    await expectRejected(u.refresh);
    // even re-typed as an access token and signed with the refresh secret
    await expectRejected(hs256({ alg: 'HS256', kid: realKid, typ: 'at+jwt' }, claimsFor(u), refreshSecret));
  });

  it("a tampered payload (another user's sub, sid and email) with the original signature", async () => {
    const a = await user();
    const b = await user();
    const [h, , s] = a.access.split('.');
    const tampered = `${h}.${b64json({ ...a.claims, sub: b.userId, sid: b.claims.sid, email: b.email })}.${s}`;
    await expectRejected(tampered);
    const emailOnly = `${h}.${b64json({ ...a.claims, email: 'admin@example.com' })}.${s}`;
    await expectRejected(emailOnly);
    const rolesOnly = `${h}.${b64json({ ...a.claims, roles: ['admin'] })}.${s}`;
    await expectRejected(rolesOnly);
    // the header changed (kid dropped) with the original signature
    await expectRejected(`${b64json({ alg: 'RS256', typ: 'at+jwt' })}.${a.access.split('.')[1]}.${s}`);
    await expectAccepted(a.access, a.userId);
  });

  it('a truncated token', async () => {
    const u = await user();
    const [h, p, s] = u.access.split('.');
    await expectRejected(u.access.slice(0, -1));
    await expectRejected(u.access.slice(0, -10));
    await expectRejected(`${h}.${p}.`);
    await expectRejected(`${h}.${p}`);
    await expectRejected(`${h}.${p.slice(0, -4)}.${s}`);
    await expectRejected(h);
    // a flipped bit in the signature
    const last = s.at(-2) === 'A' ? 'B' : 'A';
    await expectRejected(`${h}.${p}.${s.slice(0, -2)}${last}${s.at(-1)}`);
  });

  it('an attacker key in the header (jwk / jku / x5u), signed with that key', async () => {
    const u = await user();
    const claims = claimsFor(u);
    const rsa = await generateKeyPair('RS256', { extractable: true });
    const ec = await generateKeyPair('ES256', { extractable: true });
    const rsaJwk = await exportJWK(rsa.publicKey);
    const ecJwk = await exportJWK(ec.publicKey);
    const url = 'https://attacker.example/jwks.json';
    const variants: Array<[Header, CryptoKey]> = [
      [{ jwk: rsaJwk }, rsa.privateKey],
      [{ jwk: rsaJwk, kid: undefined }, rsa.privateKey],
      [{ jwk: { ...rsaJwk, kid: 'attacker' }, kid: 'attacker' }, rsa.privateKey],
      [{ alg: 'ES256', jwk: ecJwk }, ec.privateKey],
      [{ alg: 'ES256', jwk: ecJwk, kid: undefined }, ec.privateKey],
      [{ jku: url }, rsa.privateKey],
      [{ jku: url, kid: 'attacker' }, rsa.privateKey],
      [{ x5u: url }, rsa.privateKey],
      [{ x5u: url, kid: 'attacker' }, rsa.privateKey],
      // no header trick at all: just the attacker's key under our kid
      [{}, rsa.privateKey],
    ];
    for (const [header, key] of variants) await expectRejected(await sign(claims, header, key));
    // the same header tricks signed with the REAL key are fine: the headers are ignored, not trusted
    await expectAccepted(await sign(claims, { jwk: rsaJwk, jku: url, x5u: url }), u.userId);
  });

  it('typ missing or typ JWT, signed with the real key (typ is required)', async () => {
    const u = await user();
    const claims = claimsFor(u);
    for (const typ of [undefined, 'JWT', 'jwt', 'rt+jwt', 'application/at+jwt+x']) {
      await expectRejected(await sign(claims, { typ }));
    }
    await expectAccepted(await sign(claims, { typ: 'at+jwt' }), u.userId);
  });

  it('a correctly signed token whose sid names no session, or a session of another user', async () => {
    const a = await user();
    const b = await user();
    await expectRejected(await sign(claimsFor(a, { sid: randomUUID() })));
    await expectRejected(await sign(claimsFor(a, { sid: b.claims.sid })));
    await expectRejected(await sign(claimsFor(a, { sub: randomUUID() })));
    await expectRejected(await sign(claimsFor(a, { sid: 'not-a-uuid' })));
    const noSid = claimsFor(a);
    delete noSid.sid;
    await expectRejected(await sign(noSid));
  });
});

describe('refresh grants reject', () => {
  it('an access token given as refresh_token to /auth/token and /auth/refresh', async () => {
    const u = await user();
    const viaToken = await t.app.inject({ method: 'POST', url: '/auth/token', payload: { grant_type: 'refresh_token', refresh_token: u.access } });
    expect(viaToken.statusCode).toBe(400);
    expect(json(viaToken).error).toBe('invalid_grant');
    expect(viaToken.headers['cache-control']).toBe('no-store');
    const viaRefresh = await t.app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: u.access } });
    expect(viaRefresh.statusCode).toBe(400);
    expect(json(viaRefresh).error).toBe('invalid_grant');
    // the session is untouched: its real refresh token still works
    expect((await t.app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: u.refresh } })).statusCode).toBe(200);
  });

  it('a refresh token signed HS256 with a wrong secret', async () => {
    const u = await user();
    const rt = { ...decodeJwt(u.refresh), jti: randomUUID() };
    const header = { alg: 'HS256', kid: realKid, typ: 'rt+jwt' };
    for (const secret of [Buffer.alloc(32, 1), publicKeyPem, 'secret', Buffer.from(refreshSecret).subarray(0, 31)]) {
      const forged = hs256(header, rt, secret);
      for (const url of ['/auth/refresh', '/auth/token']) {
        const res = await t.app.inject({ method: 'POST', url, payload: { grant_type: 'refresh_token', refresh_token: forged } });
        expect(res.statusCode).toBe(400);
        expect(json(res).error).toBe('invalid_grant');
      }
    }
    // unsigned refresh token
    const none = `${b64json({ alg: 'none', kid: realKid, typ: 'rt+jwt' })}.${b64json(rt)}.`;
    const res = await t.app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: none } });
    expect(json(res).error).toBe('invalid_grant');
    // none of that revoked or advanced the session
    expect((await t.app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: u.refresh } })).statusCode).toBe(200);
  });
});
