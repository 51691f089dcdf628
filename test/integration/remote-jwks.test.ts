import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { calculateJwkThumbprint, createRemoteJWKSet, decodeProtectedHeader, jwtVerify, type JWK } from 'jose';
import type { JwtAlgorithm } from '../../src/config/index.js';
import { createTestApp, signUp, type TestApp } from '../helpers/test-app.js';

/**
 * README "Verifying tokens in another service": another service verifies Tessera's access tokens with nothing but
 * a standard JWT library and the JWKS, fetched over a real socket.
 */

const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'];

describe.each<JwtAlgorithm>(['RS256', 'ES256', 'EdDSA'])('remote verification with %s', (algorithm) => {
  let t: TestApp;
  let base: string;

  beforeAll(async () => {
    t = await createTestApp({ algorithm });
    await t.app.listen({ port: 0, host: '127.0.0.1' });
    base = `http://127.0.0.1:${(t.app.server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await t?.close();
  });

  it('serves the discovery document over the socket', async () => {
    const res = await fetch(`${base}/.well-known/openid-configuration`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    expect(res.headers.get('cache-control')).toMatch(/max-age=\d+/);
    const doc = (await res.json()) as Record<string, unknown>;
    // The issuer is the configured PUBLIC_URL, not the socket address.
    expect(doc.issuer).toBe('http://tessera.test');
    expect(doc.issuer).toBe(t.config.jwt.issuer);
    expect(doc.jwks_uri).toBe('http://tessera.test/.well-known/jwks.json');
    expect(doc.token_endpoint).toBe('http://tessera.test/auth/token');
    expect(doc.id_token_signing_alg_values_supported).toEqual([algorithm]);
    expect(doc.grant_types_supported).toEqual(expect.arrayContaining(['password', 'refresh_token']));
  });

  it('publishes only public members, a unique kid equal to the RFC 7638 thumbprint, with Cache-Control', async () => {
    const res = await fetch(`${base}/.well-known/jwks.json`);
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toMatch(/max-age=\d+/);
    const { keys } = (await res.json()) as { keys: JWK[] };
    expect(keys.length).toBeGreaterThanOrEqual(1);
    const kids = keys.map((k) => k.kid);
    expect(new Set(kids).size).toBe(keys.length);
    for (const k of keys) {
      for (const m of PRIVATE_MEMBERS) expect(k).not.toHaveProperty(m);
      expect(k.kid).toBe(await calculateJwkThumbprint(k, 'sha256'));
      expect(k).toMatchObject({ alg: algorithm, use: 'sig' });
    }
    const expectedKty = { RS256: 'RSA', ES256: 'EC', EdDSA: 'OKP' }[algorithm];
    expect(keys[0]!.kty).toBe(expectedKty);
    if (algorithm === 'ES256') expect(keys[0]!.crv).toBe('P-256');
    if (algorithm === 'EdDSA') expect(keys[0]!.crv).toBe('Ed25519');
  });

  it('an access token verifies with createRemoteJWKSet + jwtVerify, pinned like a real verifier', async () => {
    const u = await signUp(t.app);
    const header = decodeProtectedHeader(u.access);
    expect(header.alg).toBe(algorithm);
    expect(header.typ).toBe('at+jwt');

    const jwks = createRemoteJWKSet(new URL(`${base}/.well-known/jwks.json`));
    const { payload, protectedHeader } = await jwtVerify(u.access, jwks, {
      issuer: 'http://tessera.test',
      audience: 'tessera-test',
      algorithms: [algorithm],
      typ: 'at+jwt',
      requiredClaims: ['exp', 'iat', 'sub', 'sid', 'jti'],
      currentDate: t.clock.now(),
    });
    expect(payload).toMatchObject({ sub: u.userId, email: u.email, iss: 'http://tessera.test', aud: 'tessera-test' });
    expect(protectedHeader.kid).toBe(header.kid);
    expect(jwks.jwks()?.keys.map((k) => k.kid)).toContain(header.kid);

    // The same verifier refuses what it must: a wrong audience, a refresh token, an expired token.
    const opts = { issuer: 'http://tessera.test', algorithms: [algorithm], typ: 'at+jwt', currentDate: t.clock.now() };
    await expect(jwtVerify(u.access, jwks, { ...opts, audience: 'another-api' })).rejects.toMatchObject({ code: 'ERR_JWT_CLAIM_VALIDATION_FAILED' });
    await expect(jwtVerify(u.refresh, jwks, { ...opts, audience: 'tessera-test' })).rejects.toThrow();
    await expect(
      jwtVerify(u.access, jwks, { ...opts, audience: 'tessera-test', currentDate: new Date(t.clock.now().getTime() + 16 * 60 * 1000) }),
    ).rejects.toMatchObject({ code: 'ERR_JWT_EXPIRED' });
  });
});
