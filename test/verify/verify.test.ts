import { execFile, spawnSync } from 'node:child_process';
import { createHmac, createPrivateKey } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import express from 'express';
import Fastify, { type FastifyInstance } from 'fastify';
import { SignJWT, base64url, decodeJwt, exportJWK, generateKeyPair, type JWK, type JWTPayload } from 'jose';
import { afterAll, beforeAll, describe, expect, expectTypeOf, it } from 'vitest';
import { expressAuth, expressRequirePermission, expressRequireRole } from '../../packages/verify/src/express.js';
import { fastifyAuth, requirePermission, requireRole } from '../../packages/verify/src/fastify.js';
import {
  MAX_IAT_SKEW_SECONDS,
  VerifyError,
  createVerifier,
  hasPermission,
  hasRole,
  type AccessTokenClaims,
  type Verifier,
  type VerifierOptions,
} from '../../packages/verify/src/index.js';
import { freePort } from '../helpers/free-port.js';
import { testKeys } from '../helpers/keys.js';
import { createTestApp, signUp, type TestApp } from '../helpers/test-app.js';

// @tessera/verify against a live Tessera on a loopback port: its JWKS is the only thing the
// verifier knows. Express and Fastify services started here use the middleware.

const ROOT = path.resolve(import.meta.dirname, '../..');
const execFileAsync = promisify(execFile);

let t: TestApp;
let base: string;
let issuer: string;
let audience: string;
let user: Awaited<ReturnType<typeof signUp>>;
let kid: string;
let privateKey: string;
let adminToken: string;
const closers: Array<() => Promise<void>> = [];

/** Wraps fetch to count JWKS requests made by a verifier. */
function countingFetch() {
  const state = { jwks: 0 };
  const f = async (url: string, init: RequestInit) => {
    if (new URL(url).pathname === '/.well-known/jwks.json') state.jwks++;
    return fetch(url, init);
  };
  return { fetch: f, state };
}

function verifierFor(opts: Partial<VerifierOptions> = {}): Verifier {
  return createVerifier({ issuer, audience, now: () => t.clock.now(), ...opts });
}

const nowSeconds = () => Math.floor(t.clock.now().getTime() / 1000);

/** A token like Tessera's, signed with `key` (default: the test app's own key). */
async function mint(
  claims: Record<string, unknown>,
  opts: { key?: Parameters<SignJWT['sign']>[0]; header?: Record<string, unknown>; alg?: string } = {},
): Promise<string> {
  const alg = opts.alg ?? 'RS256';
  const key = opts.key ?? createPrivateKey(privateKey);
  const iat = nowSeconds();
  const payload: JWTPayload = {
    iss: issuer,
    aud: audience,
    sub: user.userId,
    sid: decodeJwt(user.access).sid as string,
    jti: crypto.randomUUID(),
    iat,
    exp: iat + 900,
    email: user.email,
    email_verified: true,
    roles: ['user'],
    amr: ['pwd'],
    ...claims,
  };
  for (const [k, v] of Object.entries(payload)) if (v === undefined) delete payload[k];
  return new SignJWT(payload).setProtectedHeader({ alg, typ: 'at+jwt', kid, ...opts.header }).sign(key);
}

async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  closers.push(() => new Promise((resolve) => server.close(() => resolve())));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

async function get(url: string, token?: string) {
  const res = await fetch(url, { headers: token ? { authorization: `Bearer ${token}` } : {} });
  const text = await res.text();
  return { status: res.status, body: (text ? JSON.parse(text) : null) as Record<string, unknown>, headers: res.headers };
}

beforeAll(async () => {
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  t = await createTestApp({ env: { PUBLIC_URL: base } });
  // Tessera's clock at the real time, so that its tokens are also valid for PyJWT (which uses the system clock).
  t.clock.set(Math.max(Date.now(), t.clock.now().getTime()));
  await t.app.listen({ host: '127.0.0.1', port });
  issuer = t.config.jwt.issuer;
  audience = t.config.jwt.audience;
  const keys = await testKeys('RS256');
  kid = keys.ring.current.kid;
  privateKey = keys.privateKey;
  user = await signUp(t.app);
  // An administrator made by Tessera itself (the path `tessera users create --admin` takes), signed in over HTTP.
  const adminEmail = `verify-admin.${Date.now()}@example.com`;
  await t.app.services.admin.createUser(null, {
    email: adminEmail,
    password: 'the admin passphrase 42',
    emailVerified: true,
    roles: ['admin', 'user'],
    sendInvite: false,
  });
  const signIn = await t.app.inject({ method: 'POST', url: '/auth/login', payload: { email: adminEmail, password: 'the admin passphrase 42' } });
  adminToken = (signIn.json() as { access_token: string }).access_token;
});

afterAll(async () => {
  for (const close of closers.reverse()) await close();
  await t?.close();
});

describe('createVerifier against a live Tessera', () => {
  it('verifies a Tessera access token from the JWKS alone, with typed claims', async () => {
    expect(issuer).toBe(base);
    const claims = await verifierFor().verify(user.access);
    expect(claims).toMatchObject({ iss: base, aud: audience, sub: user.userId, email: user.email, amr: ['pwd'] });
    expect(claims.sid).toMatch(/^[0-9a-f-]{36}$/);
    expect(claims.roles).toEqual(expect.arrayContaining([expect.any(String)]));
    expect(Array.isArray(claims.permissions)).toBe(true);
    expect(typeof claims.email_verified).toBe('boolean');
    expectTypeOf(claims).toEqualTypeOf<AccessTokenClaims>();
    expectTypeOf(claims.permissions).toEqualTypeOf<string[]>();
    expect(hasPermission(claims, 'users:read')).toBe(false);
  });

  it('derives the JWKS URL from the issuer (trailing slash ignored) and pins RS256 by default', () => {
    const v = createVerifier({ issuer: `${base}/`, audience });
    expect(v.jwksUri).toBe(`${base}/.well-known/jwks.json`);
    expect(v.algorithms).toEqual(['RS256']);
    expect(() => createVerifier({ issuer: base, audience, algorithms: ['HS256' as 'RS256'] })).toThrow(/asymmetric/);
    expect(() => createVerifier({ issuer: base, audience, algorithms: ['none' as 'RS256'] })).toThrow(TypeError);
    expect(() => createVerifier({ issuer: base, audience: '' })).toThrow(/audience/);
  });

  it('accepts a token with `permissions` missing (→ []) and a minted admin token with `*`', async () => {
    const v = verifierFor();
    const plain = await v.verify(await mint({ permissions: undefined }));
    expect(plain.permissions).toEqual([]);
    const admin = await v.verify(adminToken);
    expect(admin.permissions).toEqual(['*']);
    expect(hasPermission(admin, 'users:read', 'orders:refund')).toBe(true);
    expect(hasRole(admin, 'support', 'admin')).toBe(true);
  });

  const rejects = async (v: Verifier, token: string, code: VerifyError['code']) => {
    const err = await v.verify(token).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err, 'should have been rejected').toBeInstanceOf(VerifyError);
    expect((err as VerifyError).code).toBe(code);
    return err as VerifyError;
  };

  it('rejects a wrong audience or issuer', async () => {
    await rejects(verifierFor({ audience: 'another-service' }), user.access, 'invalid_token');
    await rejects(verifierFor(), await mint({ aud: 'another-service' }), 'invalid_token');
    await rejects(verifierFor({ issuer: 'http://evil.test', jwksUri: `${base}/.well-known/jwks.json` }), user.access, 'invalid_token');
    await rejects(verifierFor(), await mint({ iss: 'http://evil.test' }), 'invalid_token');
  });

  it("rejects a wrong typ: a plain JWT, and Tessera's refresh token (rt+jwt, HS256)", async () => {
    const v = verifierFor();
    const e = await rejects(v, await mint({}, { header: { typ: 'JWT' } }), 'invalid_token');
    expect(e.message).toMatch(/typ/);
    await rejects(v, await mint({}, { header: { typ: undefined } }), 'invalid_token');
    await rejects(v, user.refresh, 'invalid_token');
  });

  it('rejects a token signed by a key that is not in the JWKS (same kid, other kid, embedded jwk/jku)', async () => {
    const other = await generateKeyPair('RS256');
    const v = verifierFor();
    await rejects(v, await mint({}, { key: other.privateKey }), 'invalid_token');
    await rejects(v, await mint({}, { key: other.privateKey, header: { kid: 'attacker-key' } }), 'invalid_token');
    const jwk: JWK = { ...(await exportJWK(other.publicKey)), kid: 'attacker-key' };
    await rejects(v, await mint({}, { key: other.privateKey, header: { kid: 'attacker-key', jwk, jku: 'http://127.0.0.1:9/jwks.json' } }), 'invalid_token');
  });

  it('rejects an expired token (token_expired), with clock tolerance as configured', async () => {
    const v = verifierFor();
    const expired = await mint({ iat: nowSeconds() - 1000, exp: nowSeconds() - 60 });
    const e = await rejects(v, expired, 'token_expired');
    expect(e.message).toMatch(/expired/);
    expect((await verifierFor({ clockToleranceSeconds: 120 }).verify(expired)).sub).toBe(user.userId);
    // Tessera's own token, 16 minutes later (15-minute lifetime)
    const later = createVerifier({ issuer, audience, now: () => t.clock.now().getTime() + 16 * 60_000 });
    await rejects(later, user.access, 'token_expired');
  });

  it('rejects alg none, HS256 with the public key, and garbage', async () => {
    const v = verifierFor();
    const enc = (o: object) => base64url.encode(JSON.stringify(o));
    const payload = decodeJwt(user.access);
    await rejects(v, `${enc({ alg: 'none', typ: 'at+jwt', kid })}.${enc(payload)}.`, 'invalid_token');
    await rejects(v, `${enc({ alg: 'none', typ: 'at+jwt' })}.${enc(payload)}.`, 'invalid_token');
    const keys = await testKeys('RS256');
    const hs = await new SignJWT(payload).setProtectedHeader({ alg: 'HS256', typ: 'at+jwt', kid }).sign(new TextEncoder().encode(keys.publicKey));
    await rejects(v, hs, 'invalid_token');
    await rejects(v, 'not.a.jwt', 'invalid_token');
    await rejects(v, '', 'invalid_token');
    expect(await v.verifyOrNull('garbage')).toBeNull();
  });

  it('rejects required claims missing or of the wrong type', async () => {
    const v = verifierFor();
    await rejects(v, await mint({ sid: undefined }), 'invalid_token');
    await rejects(v, await mint({ jti: undefined }), 'invalid_token');
    await rejects(v, await mint({ exp: undefined }), 'invalid_token');
    await rejects(v, await mint({ roles: 'admin' }), 'invalid_token');
    await rejects(v, await mint({ permissions: ['*', 1] }), 'invalid_token');
  });

  it('jwks_unavailable when the key set cannot be fetched (not an invalid token)', async () => {
    const dead = await freePort();
    const v = createVerifier({ issuer, audience, jwksUri: `http://127.0.0.1:${dead}/.well-known/jwks.json`, now: () => t.clock.now() });
    await rejects(v, user.access, 'jwks_unavailable');
    await expect(v.verifyOrNull(user.access)).rejects.toMatchObject({ code: 'jwks_unavailable' });
  });
});

// The JWT attack suite of test/integration/token-attacks.test.ts, against createVerifier: each
// forgery must be refused as invalid_token (a VerifyError, never another exception).
describe('createVerifier: JWT attack suite', () => {
  const enc = (o: object) => base64url.encode(JSON.stringify(o));
  const hs256 = (header: object, payload: object, secret: string | Uint8Array) => {
    const input = `${enc(header)}.${enc(payload)}`;
    return `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`;
  };
  const rejected = async (token: string) => {
    const err = await verifierFor()
      .verify(token)
      .then(
        () => null,
        (e: unknown) => e,
      );
    expect(err, 'should have been rejected').toBeInstanceOf(VerifyError);
    expect((err as VerifyError).code).toBe('invalid_token');
  };
  const claims = () => decodeJwt(user.access);

  it('positive control: a token minted here with the real key is accepted', async () => {
    expect((await verifierFor().verify(await mint({}))).sub).toBe(user.userId);
    expect((await verifierFor().verify(await mint({ iat: nowSeconds() + MAX_IAT_SKEW_SECONDS }))).sub).toBe(user.userId);
  });

  it.each(['none', 'None', 'noNE'])('alg %s', async (alg) => {
    await rejected(`${enc({ alg, typ: 'at+jwt', kid })}.${enc(claims())}.`);
  });

  it.each([
    ['an empty signature', async () => user.access.split('.').slice(0, 2).join('.') + '.'],
    ['HS256 with the public key PEM as secret', async () => hs256({ alg: 'HS256', typ: 'at+jwt', kid }, claims(), (await testKeys('RS256')).publicKey)],
    [
      'HS256 with the public JWK as secret',
      async () => hs256({ alg: 'HS256', typ: 'at+jwt', kid }, claims(), JSON.stringify((await testKeys('RS256')).ring.current.publicJwk)),
    ],
    ['kid path traversal', async () => mint({}, { header: { kid: '../../../../dev/null' } })],
    ['kid SQL injection', async () => mint({}, { header: { kid: "' OR '1'='1" } })],
    ['a 10 KB kid', async () => mint({}, { header: { kid: 'k'.repeat(10 * 1024) } })],
    [
      'an embedded jwk (attacker key)',
      async () => {
        const other = await generateKeyPair('RS256', { extractable: true });
        return mint({}, { key: other.privateKey, header: { jwk: await exportJWK(other.publicKey) } });
      },
    ],
    ['nbf beyond the skew', async () => mint({ nbf: nowSeconds() + MAX_IAT_SKEW_SECONDS + 60 })],
    ['iat beyond the skew', async () => mint({ iat: nowSeconds() + MAX_IAT_SKEW_SECONDS + 1 })],
    ['a missing aud', async () => mint({ aud: undefined })],
    ['a wrong iss', async () => mint({ iss: `${issuer}/` })],
    ["Tessera's refresh token", async () => user.refresh],
    ['a two-segment token', async () => user.access.split('.').slice(0, 2).join('.')],
    ['a four-segment token', async () => `${user.access}.${user.access.split('.')[2]}`],
    ['a padded signature (=)', async () => `${user.access}==`],
    ['+ in the signature', async () => user.access.replace(/\.([^.]{20})[^.]([^.]*)$/, '.$1+$2')],
    ['a space in the signature', async () => user.access.replace(/\.([^.]{20})([^.]*)$/, '.$1 $2')],
  ])('%s', async (_name, token) => {
    await rejected(await token());
  });

  it.each(['jku', 'x5u'])('a %s header pointing at a local server: rejected, and the server received no request', async (member) => {
    const seen: string[] = [];
    const url = await listen(
      createServer((req, res) => {
        seen.push(String(req.url));
        res.writeHead(200, { 'content-type': 'application/json' }).end('{"keys":[]}');
      }),
    );
    const other = await generateKeyPair('RS256', { extractable: true });
    await rejected(await mint({}, { key: other.privateKey, header: { [member]: `${url}/keys.json` } }));
    await rejected(await mint({}, { key: other.privateKey, header: { [member]: `${url}/keys.json`, kid: 'attacker' } }));
    await new Promise((resolve) => setImmediate(resolve));
    expect(seen).toEqual([]);
    // the server does record what reaches it
    await fetch(`${url}/probe`);
    expect(seen).toEqual(['/probe']);
  });
});

describe('JWKS caching and refetch', () => {
  it('fetches once, refetches for an unknown kid only after the cooldown', async () => {
    const other = await generateKeyPair('RS256');
    const unknownKid = await mint({}, { key: other.privateKey, header: { kid: 'rotated-key' } });

    // default cooldown (30 s): the unknown kid right after the first fetch does not refetch
    const c1 = countingFetch();
    const v1 = verifierFor({ fetch: c1.fetch });
    await v1.verify(user.access);
    await v1.verify(user.access);
    expect(c1.state.jwks).toBe(1);
    await expect(v1.verify(unknownKid)).rejects.toMatchObject({ code: 'invalid_token' });
    expect(c1.state.jwks).toBe(1);

    // short cooldown: one refetch once it has passed, none within it
    const c2 = countingFetch();
    const v2 = verifierFor({ fetch: c2.fetch, jwksCooldownMs: 1000 });
    await v2.verify(user.access);
    expect(c2.state.jwks).toBe(1);
    await new Promise((r) => setTimeout(r, 1100));
    await expect(v2.verify(unknownKid)).rejects.toMatchObject({ code: 'invalid_token' });
    expect(c2.state.jwks).toBe(2);
    await expect(v2.verify(unknownKid)).rejects.toMatchObject({ code: 'invalid_token' });
    await v2.verify(user.access);
    expect(c2.state.jwks).toBe(2);
  });

  it('picks up a rotated-in key: an unknown kid refetches the set (after the cooldown)', async () => {
    const a = await generateKeyPair('ES256');
    const b = await generateKeyPair('ES256');
    const jwkA = { ...(await exportJWK(a.publicKey)), kid: 'a', alg: 'ES256', use: 'sig' };
    const jwkB = { ...(await exportJWK(b.publicKey)), kid: 'b', alg: 'ES256', use: 'sig' };
    const set = { keys: [jwkA] as JWK[] };
    let hits = 0;
    const jwksBase = await listen(
      createServer((_req, res) => {
        hits++;
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify(set));
      }),
    );
    const v = verifierFor({ jwksUri: `${jwksBase}/jwks.json`, algorithms: ['ES256'], jwksCooldownMs: 1000 });
    const tokenA = await mint({}, { key: a.privateKey, alg: 'ES256', header: { kid: 'a' } });
    const tokenB = await mint({}, { key: b.privateKey, alg: 'ES256', header: { kid: 'b' } });
    expect((await v.verify(tokenA)).sub).toBe(user.userId);
    set.keys = [jwkB, jwkA]; // the issuer rotates
    await expect(v.verify(tokenB)).rejects.toMatchObject({ code: 'invalid_token' }); // within the cooldown
    expect(hits).toBe(1);
    await new Promise((r) => setTimeout(r, 1100));
    expect((await v.verify(tokenB)).sub).toBe(user.userId);
    expect(hits).toBe(2);
    // the RS256 Tessera token is refused here: the algorithm is pinned to ES256
    await expect(v.verify(user.access)).rejects.toMatchObject({ code: 'invalid_token' });
  });
});

describe('middleware', () => {
  let expressBase: string;
  let fastifyBase: string;
  let fastifyApp: FastifyInstance;

  beforeAll(async () => {
    const verifier = verifierFor();
    const broken = createVerifier({ issuer, audience, jwksUri: `http://127.0.0.1:${await freePort()}/jwks.json` });

    const ex = express();
    ex.get('/me', expressAuth(verifier), (req, res) => {
      expectTypeOf(req.auth).toEqualTypeOf<AccessTokenClaims | undefined>();
      res.json(req.auth);
    });
    ex.get('/admin', expressAuth(verifier), expressRequirePermission('users:read'), (_req, res) => {
      res.json({ ok: true });
    });
    ex.get('/staff', expressAuth(verifier), expressRequireRole('admin', 'support'), (_req, res) => {
      res.json({ ok: true });
    });
    ex.get('/misconfigured', expressRequireRole('admin'), (_req, res) => {
      res.json({ ok: true });
    });
    ex.get('/broken', expressAuth(broken), (_req, res) => {
      res.json({ ok: true });
    });
    expressBase = await listen(createServer(ex));

    fastifyApp = Fastify();
    const auth = fastifyAuth(verifier);
    fastifyApp.get('/me', { onRequest: auth }, async (request) => {
      expectTypeOf(request.claims).toEqualTypeOf<AccessTokenClaims | undefined>();
      return request.claims;
    });
    fastifyApp.get('/admin', { preHandler: [auth, requirePermission('users:read')] }, async () => ({ ok: true }));
    fastifyApp.get('/staff', { preHandler: [auth, requireRole('admin', 'support')] }, async () => ({ ok: true }));
    fastifyApp.get('/misconfigured', { preHandler: requireRole('admin') }, async () => ({ ok: true }));
    fastifyApp.get('/broken', { onRequest: fastifyAuth(broken) }, async () => ({ ok: true }));
    // a whole scope behind the hook
    await fastifyApp.register(async (scope) => {
      scope.addHook('onRequest', auth);
      scope.get('/scoped/me', async (request) => ({ sub: request.claims?.sub }));
    });
    await fastifyApp.listen({ host: '127.0.0.1', port: 0 });
    closers.push(() => fastifyApp.close());
    fastifyBase = `http://127.0.0.1:${(fastifyApp.server.address() as AddressInfo).port}`;
  });

  for (const framework of ['express', 'fastify'] as const) {
    describe(framework, () => {
      const url = (p: string) => `${framework === 'express' ? expressBase : fastifyBase}${p}`;

      it('/me: the Tessera token → 200 with the claims', async () => {
        const res = await get(url('/me'), user.access);
        expect(res.status).toBe(200);
        expect(res.body).toMatchObject({ sub: user.userId, email: user.email, iss: base, amr: ['pwd'] });
        expect(Array.isArray(res.body.permissions)).toBe(true);
      });

      it('no token, a non-Bearer header → 401 unauthorized with WWW-Authenticate: Bearer', async () => {
        const res = await get(url('/me'));
        expect(res.status).toBe(401);
        expect(res.body).toMatchObject({ error: 'unauthorized', message: expect.any(String) });
        expect(res.headers.get('www-authenticate')).toBe('Bearer');
        expect(res.headers.get('content-type')).toMatch(/application\/json/);
        const basic = await fetch(url('/me'), { headers: { authorization: 'Basic dXNlcjpwYXNz' } });
        expect(basic.status).toBe(401);
        expect(await basic.json()).toMatchObject({ error: 'unauthorized' });
      });

      it('an invalid or expired token → 401 invalid_token', async () => {
        for (const token of [user.refresh, await mint({ aud: 'other' }), await mint({ exp: nowSeconds() - 10, iat: nowSeconds() - 100 }), 'garbage']) {
          const res = await get(url('/me'), token);
          expect(res.status).toBe(401);
          expect(res.body).toMatchObject({ error: 'invalid_token', message: expect.any(String) });
          expect(res.headers.get('www-authenticate')).toMatch(/^Bearer error="invalid_token"/);
        }
        const expired = await get(url('/me'), await mint({ exp: nowSeconds() - 10, iat: nowSeconds() - 100 }));
        expect(expired.body.message).toMatch(/expired/);
      });

      it('/admin (users:read): a fresh user → 403 forbidden; the admin token (`*`) → 200', async () => {
        const res = await get(url('/admin'), user.access);
        expect(res.status).toBe(403);
        expect(res.body).toEqual({ error: 'forbidden', message: 'This needs the permission users:read.' });
        expect((await get(url('/admin'), adminToken)).status).toBe(200);
        expect((await get(url('/admin'), await mint({ permissions: ['users:*'] }))).status).toBe(200);
        expect((await get(url('/admin'), await mint({ permissions: ['users:write', 'orders:*'] }))).status).toBe(403);
        expect((await get(url('/admin'))).status).toBe(401);
      });

      it('requireRole: any one of the roles', async () => {
        expect((await get(url('/staff'), user.access)).status).toBe(403);
        expect((await get(url('/staff'), adminToken)).status).toBe(200);
        expect((await get(url('/staff'), await mint({ roles: ['user', 'support'] }))).status).toBe(200);
      });

      it('a role check without the auth middleware → 401, never a pass', async () => {
        const res = await get(url('/misconfigured'), adminToken);
        expect(res.status).toBe(401);
        expect(res.body).toMatchObject({ error: 'unauthorized' });
      });

      it('JWKS unreachable → 503 service_unavailable', async () => {
        const res = await get(url('/broken'), user.access);
        expect(res.status).toBe(503);
        expect(res.body).toMatchObject({ error: 'service_unavailable' });
      });
    });
  }

  it('fastify: the hook guards a whole scope', async () => {
    expect((await get(`${fastifyBase}/scoped/me`, user.access)).body).toEqual({ sub: user.userId });
    expect((await get(`${fastifyBase}/scoped/me`)).status).toBe(401);
  });
});

describe('other languages', () => {
  // Debian's python3-jwt lives in /usr/bin/python3's dist-packages (a pyenv `python3` on PATH does not see it).
  const python = process.env.TESSERA_TEST_PYTHON ?? (existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3');

  it('Python: PyJWT PyJWKClient verifies the token against the live JWKS (python3-jwt is required; .ci/run installs it)', async () => {
    const probe = spawnSync(python, ['-c', 'import jwt, cryptography; print(jwt.__version__)'], { encoding: 'utf8' });
    expect(probe.status, `${python} cannot import jwt (install python3-jwt python3-cryptography): ${probe.stderr}`).toBe(0);
    const script = `
import json, sys
import jwt
from jwt import PyJWKClient

jwks_url, token, audience, issuer = sys.argv[1:5]
if jwt.get_unverified_header(token).get("typ") != "at+jwt":
    raise SystemExit("not an access token")
key = PyJWKClient(jwks_url).get_signing_key_from_jwt(token)
claims = jwt.decode(token, key.key, algorithms=["RS256"], audience=audience, issuer=issuer,
                    options={"require": ["exp", "iat", "iss", "aud", "sub"]})
try:
    jwt.decode(token, key.key, algorithms=["RS256"], audience="another-service", issuer=issuer)
    wrong_audience = "accepted"
except jwt.InvalidAudienceError:
    wrong_audience = "rejected"
print(json.dumps({"sub": claims["sub"], "email": claims["email"], "kid": key.key_id, "wrong_audience": wrong_audience}))
`;
    // async: the server answering PyJWKClient runs in this process
    const { stdout } = await execFileAsync(python, ['-c', script, `${base}/.well-known/jwks.json`, user.access, audience, issuer], { timeout: 20_000 });
    expect(JSON.parse(stdout.trim())).toEqual({ sub: user.userId, email: user.email, kid, wrong_audience: 'rejected' });
  });
});

describe('package', () => {
  it('builds to ESM + .d.ts with tsc -p packages/verify; fastify/express only as types', () => {
    const outDir = mkdtempSync(path.join(tmpdir(), 'tessera-verify-build-'));
    try {
      const tsc = spawnSync(
        process.execPath,
        [path.join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', path.join(ROOT, 'packages/verify'), '--outDir', outDir],
        { encoding: 'utf8' },
      );
      expect(tsc.status, tsc.stdout + tsc.stderr).toBe(0);
      const pkg = JSON.parse(readFileSync(path.join(ROOT, 'packages/verify/package.json'), 'utf8')) as {
        exports: Record<string, { types: string; import: string }>;
        dependencies: Record<string, string>;
        type: string;
        sideEffects: boolean;
      };
      expect(pkg).toMatchObject({ type: 'module', sideEffects: false });
      expect(Object.keys(pkg.dependencies)).toEqual(['jose']);
      for (const entry of Object.values(pkg.exports)) {
        for (const file of [entry.types, entry.import]) expect(existsSync(path.join(outDir, file.replace(/^\.\/dist\//, ''))), file).toBe(true);
      }
      expect(existsSync(path.join(outDir, 'index.js'))).toBe(true);
      expect(existsSync(path.join(outDir, 'index.d.ts'))).toBe(true);
      for (const file of readdirSync(outDir).filter((f) => f.endsWith('.js'))) {
        const js = readFileSync(path.join(outDir, file), 'utf8');
        expect(js, file).not.toMatch(/from ['"](fastify|express)['"]|require\(/);
      }
      expect(readFileSync(path.join(outDir, 'express.d.ts'), 'utf8')).not.toMatch(/from ['"]express/);

      // A consumer of the root and /express entries type-checks with no express, @types/express,
      // fastify or Node types in sight, and without skipLibCheck.
      writeFileSync(
        path.join(outDir, 'consumer.ts'),
        [
          "import { createVerifier, hasPermission, type AccessTokenClaims } from './index.js';",
          "import { expressAuth, expressRequirePermission, type AuthRequest } from './express.js';",
          "const v = createVerifier({ issuer: 'https://auth.example.com', audience: 'tessera', algorithms: ['ES256'] });",
          'export const mw = [expressAuth(v, { realm: "api" }), expressRequirePermission("orders:read")];',
          'export const ok = (req: AuthRequest): boolean => !!req.auth && hasPermission(req.auth, "x");',
          'export type C = AccessTokenClaims["permissions"];',
        ].join('\n'),
      );
      const config = {
        compilerOptions: {
          strict: true,
          noEmit: true,
          target: 'ES2022',
          module: 'NodeNext',
          moduleResolution: 'NodeNext',
          lib: ['ES2022', 'DOM'],
          types: [],
          skipLibCheck: false,
          typeRoots: [],
        },
        files: ['consumer.ts'],
      };
      writeFileSync(path.join(outDir, 'tsconfig.json'), JSON.stringify(config));
      const consumer = spawnSync(process.execPath, [path.join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', outDir], { encoding: 'utf8' });
      expect(consumer.status, consumer.stdout + consumer.stderr).toBe(0);
    } finally {
      rmSync(outDir, { recursive: true, force: true });
    }
  });
});
