import { createHmac, createPrivateKey, randomUUID, type KeyObject } from 'node:crypto';
import { createServer, request as httpRequest, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SignJWT, decodeJwt, decodeProtectedHeader, exportJWK, generateKeyPair, type CryptoKey, type JWTPayload } from 'jose';
import { generate } from 'otplib';
import { oauthCodes } from '../../src/features/social/tables.js';
import { MAX_IAT_SKEW_SECONDS } from '../../src/features/sessions/token-verifier.js';
import { newOpaqueToken, sha256Hex } from '../../src/infra/opaque-token.js';
import { testKeys } from '../helpers/keys.js';
import { SmtpCatcher, tokenIn } from '../helpers/smtp.js';
import { APP_VERIFIER, s256 } from '../helpers/social.js';
import { PASSWORD, bearer, createTestApp, json, signUp, type TestApp } from '../helpers/test-app.js';

/**
 * The JWT attack suite (RFC 8725; OWASP ASVS 5.0 V9): forged and misused tokens
 * against GET /users/me, one attack per test. Each must get 401 invalid_token
 * (never a 500, never a 200). Every forgery differs from the positive controls
 * (a real token, and a token built here with the real key and all claims, both
 * accepted) in one respect only, so the suite fails if the verifier goes lax.
 */

let t: TestApp;
let smtp: SmtpCatcher;
let realPrivateKey: KeyObject;
let publicKeyPem: string;
let realKid: string;
let refreshSecret: Uint8Array;

/** A local server that records every request: the target of `jku` / `x5u` headers. */
let recorder: Server;
let recorderUrl: string;
const recorded: string[] = [];

beforeAll(async () => {
  smtp = await SmtpCatcher.start();
  t = await createTestApp({ env: { SMTP_SERVER: '127.0.0.1', SMTP_PORT: String(smtp.port), SMTP_TIMEOUT_MS: '5000', OUTBOX_POLL_INTERVAL_MS: '50' } });
  const keys = await testKeys();
  realPrivateKey = createPrivateKey(keys.privateKey);
  publicKeyPem = keys.publicKey;
  realKid = keys.ring.current.kid;
  refreshSecret = keys.ring.current.refreshSecret;
  recorder = createServer((req: IncomingMessage, res) => {
    recorded.push(`${req.method} ${req.url}`);
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [] }));
  });
  await new Promise<void>((resolve) => recorder.listen(0, '127.0.0.1', resolve));
  recorderUrl = `http://127.0.0.1:${(recorder.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await t?.close();
  await smtp?.close();
  await new Promise((resolve) => (recorder ? recorder.close(resolve) : resolve(undefined)));
});

const b64url = (v: string | Buffer) => Buffer.from(v).toString('base64url');
const b64json = (v: unknown) => b64url(JSON.stringify(v));

/** A signed-up user with the claims of its real access token. */
async function user() {
  const u = await signUp(t.app);
  return { ...u, claims: decodeJwt(u.access), header: decodeProtectedHeader(u.access) };
}
type User = Awaited<ReturnType<typeof user>>;
type Header = Record<string, unknown>;

/** Signs with jose: by default exactly what Tessera would sign (RS256, real kid, typ at+jwt, real key). */
async function sign(payload: JWTPayload, header: Header = {}, key: KeyObject | CryptoKey = realPrivateKey): Promise<string> {
  const h: Header = { alg: 'RS256', kid: realKid, typ: 'at+jwt', ...header };
  for (const [k, v] of Object.entries(h)) if (v === undefined) delete h[k];
  return new SignJWT(payload).setProtectedHeader(h as { alg: string }).sign(key);
}

const nowSeconds = () => Math.floor(t.clock.now().getTime() / 1000);

/** Fresh claims for the given user, as Tessera would issue them now. */
function claimsFor(u: User, overrides: JWTPayload = {}): JWTPayload {
  const now = nowSeconds();
  const claims: JWTPayload = { ...u.claims, iat: now, exp: now + 15 * 60, jti: randomUUID(), ...overrides };
  for (const [k, v] of Object.entries(claims)) if (v === undefined) delete claims[k];
  return claims;
}

/** An HMAC-signed JWS built by hand (no library refuses the key for us). */
function hs256(header: Header, payload: JWTPayload, secret: Buffer | Uint8Array | string): string {
  const input = `${b64json(header)}.${b64json(payload)}`;
  return `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`;
}

const meWith = (authorization: string) => t.app.inject({ method: 'GET', url: '/users/me', headers: { authorization } });

async function expectRejected(token: string) {
  const res = await meWith(`Bearer ${token}`);
  expect(res.statusCode, res.body).toBe(401);
  expect(json(res).error).toBe('invalid_token');
  expect(res.headers['www-authenticate']).toBe('Bearer error="invalid_token"');
}

/** No bearer token at all: 401 unauthorized, and a challenge without an error code (RFC 6750 §3.1). */
async function expectUnauthorized(authorization: string) {
  const res = await meWith(authorization);
  expect(res.statusCode).toBe(401);
  expect(json(res).error).toBe('unauthorized');
  expect(res.headers['www-authenticate']).toBe('Bearer');
}

async function expectAccepted(token: string, userId: string, scheme = 'Bearer') {
  const res = await meWith(`${scheme} ${token}`);
  expect(res.statusCode, res.body).toBe(200);
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

  it(`iat up to ${MAX_IAT_SKEW_SECONDS} s in the future (clock skew between instances) is accepted`, async () => {
    const u = await user();
    await expectAccepted(await sign(claimsFor(u, { iat: nowSeconds() + MAX_IAT_SKEW_SECONDS })), u.userId);
  });

  it('the recording server records a request made to it (so "it received none" can fail)', async () => {
    const res = await fetch(`${recorderUrl}/probe`);
    expect(res.status).toBe(200);
    expect(recorded).toEqual(['GET /probe']);
    recorded.length = 0;
  });
});

describe('GET /users/me rejects: algorithm', () => {
  it.each(['none', 'None', 'noNE', 'NONE'])('alg %s (unsigned token)', async (alg) => {
    const u = await user();
    const payload = b64json(claimsFor(u));
    await expectRejected(`${b64json({ alg, kid: realKid, typ: 'at+jwt' })}.${payload}.`);
    await expectRejected(`${b64json({ alg, typ: 'at+jwt' })}.${payload}.`);
  });

  it('alg none with the original signature left on', async () => {
    const u = await user();
    const [, p, s] = u.access.split('.');
    await expectRejected(`${b64json({ alg: 'none', kid: realKid, typ: 'at+jwt' })}.${p}.${s}`);
  });

  it('an empty signature (RS256 header, real claims)', async () => {
    const u = await user();
    const [h, p] = u.access.split('.');
    await expectRejected(`${h}.${p}.`);
  });

  it('RS256 → HS256 with the public key PEM as the HMAC secret', async () => {
    const u = await user();
    const claims = claimsFor(u);
    for (const secret of [publicKeyPem, publicKeyPem.trim(), Buffer.from(publicKeyPem)]) {
      await expectRejected(hs256({ alg: 'HS256', kid: realKid, typ: 'at+jwt' }, claims, secret));
      await expectRejected(hs256({ alg: 'HS256', typ: 'at+jwt' }, claims, secret));
    }
  });

  it('RS256 → HS256 with the public JWK (as published in the JWKS) as the HMAC secret', async () => {
    const u = await user();
    const claims = claimsFor(u);
    const published = json(await t.app.inject({ method: 'GET', url: '/.well-known/jwks.json' })) as { keys: Array<Record<string, unknown>> };
    const jwk = published.keys.find((k) => k.kid === realKid);
    expect(jwk).toBeDefined();
    for (const secret of [JSON.stringify(jwk), String(jwk?.n), Buffer.from(String(jwk?.n), 'base64url')]) {
      await expectRejected(hs256({ alg: 'HS256', kid: realKid, typ: 'at+jwt' }, claims, secret));
    }
  });

  it('typ missing, JWT or rt+jwt, signed with the real key (typ at+jwt is required)', async () => {
    const u = await user();
    for (const typ of [undefined, 'JWT', 'jwt', 'rt+jwt', 'application/at+jwt+x']) await expectRejected(await sign(claimsFor(u), { typ }));
  });
});

describe('GET /users/me rejects: key selection (kid, jwk, jku, x5u)', () => {
  it('kid path traversal (../../../../dev/null), with the real key and with HS256 over an empty secret', async () => {
    const u = await user();
    const kid = '../../../../dev/null';
    await expectRejected(await sign(claimsFor(u), { kid }));
    await expectRejected(hs256({ alg: 'HS256', kid, typ: 'at+jwt' }, claimsFor(u), Buffer.alloc(0)));
  });

  it("kid SQL injection (' OR '1'='1)", async () => {
    const u = await user();
    for (const kid of ["' OR '1'='1", "x' UNION SELECT 'secret' --"]) {
      await expectRejected(await sign(claimsFor(u), { kid }));
      await expectRejected(hs256({ alg: 'HS256', kid, typ: 'at+jwt' }, claimsFor(u), 'secret'));
    }
  });

  it('an unknown kid, signed with the real key', async () => {
    const u = await user();
    await expectRejected(await sign(claimsFor(u), { kid: randomUUID() }));
    await expectRejected(await sign(claimsFor(u), { kid: undefined }));
  });

  it('a 10 KB kid', async () => {
    const u = await user();
    await expectRejected(await sign(claimsFor(u), { kid: 'k'.repeat(10 * 1024) }));
  });

  it('an embedded jwk header, signed with the attacker key it names', async () => {
    const u = await user();
    const rsa = await generateKeyPair('RS256', { extractable: true });
    const ec = await generateKeyPair('ES256', { extractable: true });
    const rsaJwk = await exportJWK(rsa.publicKey);
    await expectRejected(await sign(claimsFor(u), { jwk: rsaJwk }, rsa.privateKey));
    await expectRejected(await sign(claimsFor(u), { jwk: rsaJwk, kid: undefined }, rsa.privateKey));
    await expectRejected(await sign(claimsFor(u), { jwk: { ...rsaJwk, kid: 'attacker' }, kid: 'attacker' }, rsa.privateKey));
    await expectRejected(await sign(claimsFor(u), { alg: 'ES256', jwk: await exportJWK(ec.publicKey) }, ec.privateKey));
    // the header alone is harmless: with the real key it is ignored, not trusted
    await expectAccepted(await sign(claimsFor(u), { jwk: rsaJwk }), u.userId);
  });

  it.each(['jku', 'x5u'])('a %s header pointing at a local server: rejected, and the server received no request', async (member) => {
    const u = await user();
    const attacker = await generateKeyPair('RS256', { extractable: true });
    recorded.length = 0;
    const url = `${recorderUrl}/${member}/keys.json`;
    await expectRejected(await sign(claimsFor(u), { [member]: url }, attacker.privateKey));
    await expectRejected(await sign(claimsFor(u), { [member]: url, kid: 'attacker' }, attacker.privateKey));
    await expectRejected(await sign(claimsFor(u), { [member]: url, kid: undefined }, attacker.privateKey));
    // a URL-valued header on a real token is ignored too: accepted, and still nothing fetched
    await expectAccepted(await sign(claimsFor(u), { [member]: url }), u.userId);
    // every request above has finished; let any stray fetch reach the server before looking
    await new Promise((resolve) => setImmediate(resolve));
    expect(recorded).toEqual([]);
  });
});

describe('GET /users/me rejects: time claims', () => {
  it('an expired token (the real one, 15 minutes later), and one whose exp was edited', async () => {
    const u = await user();
    t.clock.advance(14 * 60 * 1000 + 59 * 1000);
    await expectAccepted(u.access, u.userId);
    t.clock.advance(2 * 1000);
    await expectRejected(u.access);
    const [h, , s] = u.access.split('.');
    await expectRejected(`${h}.${b64json({ ...u.claims, exp: (u.claims.exp ?? 0) + 3600 })}.${s}`);
  });

  it('an expired token signed with the real key, and one without exp', async () => {
    const u = await user();
    const now = nowSeconds();
    await expectRejected(await sign(claimsFor(u, { iat: now - 3600, exp: now - 1 })));
    await expectRejected(await sign(claimsFor(u, { exp: undefined })));
  });

  it('nbf in the future beyond the clock skew', async () => {
    const u = await user();
    await expectRejected(await sign(claimsFor(u, { nbf: nowSeconds() + MAX_IAT_SKEW_SECONDS + 60 })));
  });

  it('iat in the future beyond the clock skew', async () => {
    const u = await user();
    const now = nowSeconds();
    await expectRejected(await sign(claimsFor(u, { iat: now + MAX_IAT_SKEW_SECONDS + 1 })));
    await expectRejected(await sign(claimsFor(u, { iat: now + 365 * 86400, exp: now + 365 * 86400 + 900 })));
  });

  it('iat missing or not a number', async () => {
    const u = await user();
    await expectRejected(await sign(claimsFor(u, { iat: undefined })));
    await expectRejected(await sign(claimsFor(u, { iat: String(nowSeconds()) as unknown as number })));
  });
});

describe('GET /users/me rejects: issuer and audience', () => {
  it('a wrong iss', async () => {
    const u = await user();
    for (const iss of ['http://evil.test', `${t.config.jwt.issuer}/`, 'https://tessera.test', t.config.jwt.issuer.toUpperCase()]) {
      await expectRejected(await sign(claimsFor(u, { iss })));
    }
  });

  it('a missing iss', async () => {
    const u = await user();
    await expectRejected(await sign(claimsFor(u, { iss: undefined })));
  });

  it('a missing aud', async () => {
    const u = await user();
    await expectRejected(await sign(claimsFor(u, { aud: undefined })));
  });

  it('a wrong aud', async () => {
    const u = await user();
    for (const aud of ['someone-else', t.config.jwt.issuer, ['someone-else'], [], 'tessera-test ', 'TESSERA-TEST']) {
      await expectRejected(await sign(claimsFor(u, { aud })));
    }
  });
});

describe('GET /users/me rejects: other tokens used as access tokens', () => {
  it('a refresh token', async () => {
    const u = await user();
    expect(decodeProtectedHeader(u.refresh)).toMatchObject({ alg: 'HS256', typ: 'rt+jwt' });
    await expectRejected(u.refresh);
    // even re-typed as an access token and signed with the refresh secret
    await expectRejected(hs256({ alg: 'HS256', kid: realKid, typ: 'at+jwt' }, claimsFor(u), refreshSecret));
  });

  it('an emailed link token (opaque confirmation token)', async () => {
    const u = await user();
    const mail = await smtp.waitFor(u.email, /Confirm/);
    const linkToken = tokenIn(mail);
    expect(linkToken.length).toBeGreaterThan(20);
    await expectRejected(linkToken);
    // the link token still works where it belongs (it was not consumed by the attempt)
    expect((await t.app.inject({ method: 'POST', url: '/auth/confirm-email', payload: { token: linkToken } })).statusCode).toBe(200);
  });

  it('an MFA mfa_token (the pending second step of a sign-in)', async () => {
    const u = await user();
    const start = await t.app.inject({ method: 'POST', url: '/users/me/mfa/totp', payload: {}, headers: bearer(u.access) });
    const { secret } = json(start) as { secret: string };
    const code = await generate({ secret, epoch: nowSeconds() });
    expect((await t.app.inject({ method: 'POST', url: '/users/me/mfa/totp/verify', payload: { code }, headers: bearer(u.access) })).statusCode).toBe(200);
    const challenge = await t.app.inject({ method: 'POST', url: '/auth/login', payload: { email: u.email, password: PASSWORD } });
    expect(json(challenge).error).toBe('mfa_required');
    const mfaToken = json(challenge).mfa_token as string;
    expect(typeof mfaToken).toBe('string');
    await expectRejected(mfaToken);
  });

  it('a one-time code of the third-party web sign-in (it works at POST /auth/token, not as a Bearer token)', async () => {
    const u = await user();
    const code = newOpaqueToken();
    const redirectUri = 'https://app.example.test/callback';
    const now = t.clock.now();
    await t.db.handle.db.insert(oauthCodes).values({
      codeHash: sha256Hex(code),
      userId: u.userId,
      provider: 'github',
      amr: ['ext'],
      redirectUri,
      codeChallenge: s256(APP_VERIFIER),
      createdAt: now,
      expiresAt: new Date(now.getTime() + 60_000),
    });
    await expectRejected(code);
    // the attempt did not spend it: the code is real and still exchanges once
    const exchange = await t.app.inject({
      method: 'POST',
      url: '/auth/token',
      payload: { grant_type: 'authorization_code', code, redirect_uri: redirectUri, code_verifier: APP_VERIFIER },
    });
    expect(exchange.statusCode, exchange.body).toBe(200);
    expect(decodeJwt(json(exchange).access_token as string).sub).toBe(u.userId);
  });

  it("a correctly signed token whose sid names no session, or another user's session", async () => {
    const a = await user();
    const b = await user();
    await expectRejected(await sign(claimsFor(a, { sid: randomUUID() })));
    await expectRejected(await sign(claimsFor(a, { sid: b.claims.sid })));
    await expectRejected(await sign(claimsFor(a, { sub: randomUUID() })));
    await expectRejected(await sign(claimsFor(a, { sid: 'not-a-uuid' })));
    await expectRejected(await sign(claimsFor(a, { sid: undefined })));
  });

  it("a tampered payload (another user's sub, sid, email or roles) with the original signature", async () => {
    const a = await user();
    const b = await user();
    const [h, , s] = a.access.split('.');
    await expectRejected(`${h}.${b64json({ ...a.claims, sub: b.userId, sid: b.claims.sid, email: b.email })}.${s}`);
    await expectRejected(`${h}.${b64json({ ...a.claims, roles: ['admin'] })}.${s}`);
    await expectRejected(`${b64json({ alg: 'RS256', typ: 'at+jwt' })}.${a.access.split('.')[1]}.${s}`);
  });
});

describe('GET /users/me rejects: malformed tokens', () => {
  it('a two-segment token', async () => {
    const u = await user();
    const [h, p] = u.access.split('.');
    await expectRejected(`${h}.${p}`);
  });

  it('a four-segment token (and a five-segment, JWE-shaped one)', async () => {
    const u = await user();
    const s = u.access.split('.')[2];
    await expectRejected(`${u.access}.${s}`);
    await expectRejected(`${u.access}..${s}`);
  });

  it('a truncated token and a flipped signature bit', async () => {
    const u = await user();
    const [h, p = '', s = ''] = u.access.split('.');
    await expectRejected(u.access.slice(0, -1));
    await expectRejected(`${h}.${p.slice(0, -4)}.${s}`);
    const last = s.at(-2) === 'A' ? 'B' : 'A';
    await expectRejected(`${h}.${p}.${s.slice(0, -2)}${last}${s.at(-1)}`);
  });

  // A character that is not in the base64url alphabet, put into the real token. `=` padding is
  // checked on its own: jose's base64 fallback (atob) decodes a padded signature to the same bytes.
  it.each([
    ['+ in the signature', (s: string) => `${s.slice(0, 20)}+${s.slice(21)}`],
    ['/ in the signature', (s: string) => `${s.slice(0, 20)}/${s.slice(21)}`],
    ['= padding after the signature', (s: string) => `${s}==`],
    ['= inside the signature', (s: string) => `${s.slice(0, 20)}=${s.slice(21)}`],
    ['a space inside the signature', (s: string) => `${s.slice(0, 20)} ${s.slice(20)}`],
    ['a tab inside the signature', (s: string) => `${s.slice(0, 20)}\t${s.slice(20)}`],
    ['a Latin-1 letter (é) inside the signature', (s: string) => `${s.slice(0, 20)}é${s.slice(20)}`],
    ['a non-Latin-1 character (☃) inside the signature', (s: string) => `${s.slice(0, 20)}☃${s.slice(20)}`],
  ])('%s', async (_name, mutate) => {
    const u = await user();
    const [h, p, s = ''] = u.access.split('.');
    await expectRejected(`${h}.${p}.${mutate(s)}`);
    await expectAccepted(u.access, u.userId);
  });
});

describe('the Authorization header (RFC 6750 §2.1, §3.1)', () => {
  it('Bearer with no token: 401 unauthorized, WWW-Authenticate: Bearer without an error code', async () => {
    for (const header of ['Bearer', 'Bearer ', 'Bearer    ']) await expectUnauthorized(header);
  });

  it('another scheme (Basic, Token, a bare token): 401 unauthorized', async () => {
    const u = await user();
    for (const header of [`Basic ${b64url('a:b')}`, `Token ${u.access}`, u.access, `JWT ${u.access}`]) await expectUnauthorized(header);
  });

  it('the scheme is case-insensitive: lower-case bearer and BEARER are accepted', async () => {
    const u = await user();
    await expectAccepted(u.access, u.userId, 'bearer');
    await expectAccepted(u.access, u.userId, 'BEARER');
  });
});

describe('a 100 KB Authorization header against a listening server', () => {
  it('gets a fast 431 headers_too_large from the HTTP parser, and the server serves the next request', async () => {
    const u = await user();
    await t.app.listen({ host: '127.0.0.1', port: 0 });
    const { port } = t.app.server.address() as AddressInfo;
    const huge = `Bearer ${'a'.repeat(100 * 1024)}`;
    const started = performance.now();
    const res = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = httpRequest({ host: '127.0.0.1', port, path: '/users/me', headers: { authorization: huge } }, (r) => {
        let body = '';
        r.setEncoding('utf8');
        r.on('data', (c: string) => (body += c));
        r.on('end', () => resolve({ status: r.statusCode ?? 0, body }));
      });
      req.on('error', reject);
      req.end();
    });
    const elapsed = performance.now() - started;
    expect(res.status).toBe(431);
    expect(JSON.parse(res.body)).toMatchObject({ error: 'headers_too_large' });
    expect(elapsed).toBeLessThan(100);
    const next = await fetch(`http://127.0.0.1:${port}/users/me`, { headers: bearer(u.access) });
    expect(next.status).toBe(200);
    expect(((await next.json()) as { id: string }).id).toBe(u.userId);
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

  it('a refresh token signed HS256 with a wrong secret, or unsigned', async () => {
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
    const none = `${b64json({ alg: 'none', kid: realKid, typ: 'rt+jwt' })}.${b64json(rt)}.`;
    const res = await t.app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: none } });
    expect(json(res).error).toBe('invalid_grant');
    // a padded spelling of the real refresh token is not the token
    const padded = await t.app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: `${u.refresh}=` } });
    expect(json(padded).error).toBe('invalid_grant');
    // none of that revoked or advanced the session
    expect((await t.app.inject({ method: 'POST', url: '/auth/refresh', payload: { refresh_token: u.refresh } })).statusCode).toBe(200);
  });
});
