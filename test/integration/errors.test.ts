import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errorCatalogue, oauthErrorCatalogue } from '../../src/errors.js';
import { openDatabase } from '../../src/infra/db/client.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { PASSWORD, bearer, createTestApp, json, signUp, uniqueEmail, type TestApp } from '../helpers/test-app.js';

let t: TestApp;
beforeAll(async () => {
  t = await createTestApp();
});
afterAll(async () => {
  await t?.close();
});

const post = (app: FastifyInstance, url: string, contentType: string, payload: string, headers: Record<string, string> = {}) =>
  app.inject({ method: 'POST', url, headers: { ...headers, 'content-type': contentType }, payload });

function expectError(res: LightMyRequestResponse, status: number, code: string) {
  expect(res.statusCode, res.body).toBe(status);
  expect(res.headers['content-type']).toMatch(/^application\/json/);
  const body = json(res);
  expect(body.error).toBe(code);
  expect(typeof body.message).toBe('string');
  return body;
}

/** RFC 6749 §5.2: exactly {error, error_description}, never cached. */
function expectOAuthError(res: LightMyRequestResponse, status: number, code: string) {
  expect(res.statusCode, res.body).toBe(status);
  const body = json(res);
  expect(Object.keys(body).sort()).toEqual(['error', 'error_description']);
  expect(body.error).toBe(code);
  expect(typeof body.error_description).toBe('string');
  expect((body.error_description as string).length).toBeGreaterThan(0);
  expect(res.headers['cache-control']).toBe('no-store');
  return body;
}

/** A 5xx body says nothing about the inside: no stack, SQL, file path or driver text. */
function expectNoInternals(res: LightMyRequestResponse) {
  const text = res.body;
  expect(text).not.toMatch(/\bat .+:\d+:\d+/); // stack frames
  expect(text).not.toMatch(/\.(ts|js|mjs):\d+/);
  expect(text).not.toMatch(/\/(work|home|usr|tmp|app|src|node_modules)\//);
  expect(text).not.toMatch(/\b(select|insert|update|delete)\b.+\b(from|into|set)\b/i);
  expect(text).not.toMatch(/"users"|"sessions"|params:|Failed query|PGlite|pool|ECONNREFUSED|drizzle/i);
  const body = JSON.parse(text) as Record<string, unknown>;
  expect(body).not.toHaveProperty('stack');
  expect(body).not.toHaveProperty('cause');
}

describe('routing', () => {
  it.each([
    ['GET', '/nope'],
    ['POST', '/auth/nope'],
    ['GET', '/users/me/nope'],
    ['GET', '/auth/register/x'],
  ] as const)('%s %s → 404 not_found (JSON)', async (method, url) => {
    const res = await t.app.inject({ method, url });
    expectError(res, 404, 'not_found');
  });
});

describe('a method the path does not have', () => {
  it.each([
    ['GET', '/auth/token', 'POST'],
    ['DELETE', '/auth/register', 'POST'],
    ['PUT', '/users/me', 'GET, HEAD, PATCH, DELETE'],
    ['POST', '/health/live', 'GET, HEAD'],
    ['POST', '/users/me/sessions/2f0c7c1e-0000-4000-8000-000000000000', 'DELETE'],
    ['OPTIONS', '/auth/login', 'POST'],
  ] as const)('%s %s → 405 method_not_allowed with Allow: %s', async (method, url, allow) => {
    const res = await t.app.inject({ method, url });
    const body = expectError(res, 405, 'method_not_allowed');
    expect(res.headers.allow).toBe(allow);
    expect(body.message).toContain(method);
  });

  it('GET and HEAD routes still answer; unknown paths stay 404', async () => {
    expect((await t.app.inject({ method: 'GET', url: '/health/live' })).statusCode).toBe(200);
    expect((await t.app.inject({ method: 'HEAD', url: '/health/live' })).statusCode).toBe(200);
    expect((await t.app.inject({ method: 'GET', url: '/.well-known/jwks.json' })).statusCode).toBe(200);
    expectError(await t.app.inject({ method: 'GET', url: '/auth/tokens' }), 404, 'not_found');
  });

  it('with CORS_ORIGINS, a preflight still gets its CORS answer', async () => {
    const cors = await createTestApp({ db: t.db, env: { CORS_ORIGINS: 'https://app.example' } });
    try {
      const res = await cors.app.inject({
        method: 'OPTIONS',
        url: '/auth/token',
        headers: { origin: 'https://app.example', 'access-control-request-method': 'POST' },
      });
      expect(res.statusCode, res.body).toBe(204);
      expect(res.headers['access-control-allow-origin']).toBe('https://app.example');
      expectError(await cors.app.inject({ method: 'GET', url: '/auth/token' }), 405, 'method_not_allowed');
      expectError(await cors.app.inject({ method: 'GET', url: '/nope' }), 404, 'not_found');
    } finally {
      await cors.close();
    }
  });
});

describe('validation messages are written for people', () => {
  it.each([
    [{ password: PASSWORD }, 'email', 'is required'],
    [{ email: 42, password: PASSWORD }, 'email', 'must be a string'],
    [{ email: 'a@example.com', password: PASSWORD, first_name: 7 }, 'first_name', 'must be a string or null'],
    [{ email: 'a@example.com', password: PASSWORD, first_name: 'x'.repeat(101) }, 'first_name', 'must be at most 100 characters long'],
    [{ email: '', password: PASSWORD }, 'email', 'must not be empty'],
  ])('register %j → details [{field: %s, message: %s}]', async (payload, field, message) => {
    const body = expectError(await t.app.inject({ method: 'POST', url: '/auth/register', payload }), 422, 'validation_failed');
    expect(body.details).toEqual([{ field, message }]);
    expect(body.message).toBe(`The request is invalid: ${field} ${message}.`);
  });

  it('a body that is not an object is named as the body, without validator jargon', async () => {
    const body = expectError(await post(t.app, '/auth/register', 'application/json', '[]'), 422, 'validation_failed');
    expect(body.details).toEqual([{ field: 'body', message: 'must be a JSON object or a form (application/x-www-form-urlencoded)' }]);
    expect(JSON.stringify(body)).not.toMatch(/must have required property|must be object|instancePath|anyOf/);
  });

  it('the token endpoints say which parameter, in plain words', async () => {
    const missing = expectOAuthError(await t.app.inject({ method: 'POST', url: '/auth/token', payload: { username: 'a@b.co' } }), 400, 'invalid_request');
    expect(missing.error_description).toBe('Missing parameter: grant_type.');
    const wrong = expectOAuthError(
      await t.app.inject({ method: 'POST', url: '/auth/login', payload: { email: 42, password: PASSWORD } }),
      400,
      'invalid_request',
    );
    expect(wrong.error_description).toBe('Invalid parameter: email must be a string.');
    const notObject = expectOAuthError(await post(t.app, '/auth/refresh', 'application/json', '[]'), 400, 'invalid_request');
    expect(notObject.error_description).toBe('The request body must be a JSON object or a form (application/x-www-form-urlencoded).');
  });
});

describe('request bodies', () => {
  const jsonRegister = (body: string) => post(t.app, '/auth/register', 'application/json', body);

  it('a body over the 64 KiB default → 413 payload_too_large; just under is parsed', async () => {
    expect(t.config.bodyLimit).toBe(64 * 1024);
    const over = JSON.stringify({ email: uniqueEmail('big'), password: PASSWORD, first_name: 'x'.repeat(64 * 1024) });
    expectError(await jsonRegister(over), 413, 'payload_too_large');
    // Same size class, under the limit: it reaches validation (first_name is too long) instead.
    const under = JSON.stringify({ email: uniqueEmail('big'), password: PASSWORD, first_name: 'x'.repeat(60 * 1024) });
    expectError(await jsonRegister(under), 422, 'validation_failed');
    // The token endpoint too, in the RFC 6749 §5.2 shape with the catalogue code.
    expectOAuthError(await post(t.app, '/auth/token', 'application/json', JSON.stringify({ grant_type: 'x'.repeat(70_000) })), 413, 'payload_too_large');
    const form = `grant_type=password&username=a%40b.co&password=${'x'.repeat(70_000)}`;
    expectOAuthError(await post(t.app, '/auth/token', 'application/x-www-form-urlencoded', form), 413, 'payload_too_large');
  });

  it('malformed JSON → 400 invalid_json', async () => {
    for (const body of ['{bad', '{"email": "a@b.co",}', '{"email": "a@b.co"', "{'email': 'a@b.co'}"]) {
      expectError(await jsonRegister(body), 400, 'invalid_json');
    }
  });

  it('an empty body declared as JSON → 400', async () => {
    expectError(await jsonRegister(''), 400, 'invalid_json');
  });

  it.each(['text/plain', 'application/xml', 'multipart/form-data; boundary=x', 'application/octet-stream'])('%s → 415 unsupported_media_type', async (type) => {
    expectError(await post(t.app, '/auth/register', type, `email=${uniqueEmail('ct')}&password=${PASSWORD}`), 415, 'unsupported_media_type');
  });

  it('text/plain at /auth/token, /auth/login, /auth/refresh → 415 in the RFC 6749 §5.2 shape, no-store', async () => {
    for (const url of ['/auth/token', '/auth/login', '/auth/refresh']) {
      const body = expectOAuthError(await post(t.app, url, 'text/plain', 'grant_type=password'), 415, 'unsupported_media_type');
      expect(body.error_description).toMatch(/application\/x-www-form-urlencoded/);
    }
  });

  it.each([
    [{ email: 42, password: PASSWORD }, 'email'],
    [{ email: ['a@example.com'], password: PASSWORD }, 'email'],
    [{ email: { address: 'a@example.com' }, password: PASSWORD }, 'email'],
    [{ email: true, password: PASSWORD }, 'email'],
    [{ email: 'types@example.com', password: 12345678901 }, 'password'],
    [{ email: 'types@example.com', password: PASSWORD, first_name: 7 }, 'first_name'],
  ])('wrong type %j → 422 validation_failed naming %s, nothing coerced', async (payload, field) => {
    const res = await t.app.inject({ method: 'POST', url: '/auth/register', payload });
    const body = expectError(res, 422, 'validation_failed');
    const details = body.details as Array<{ field: string; message: string }>;
    expect(details.length).toBeGreaterThan(0);
    expect(details.map((d) => d.field)).toContain(field);
    for (const d of details) expect(typeof d.message).toBe('string');
  });

  it.each(['[]', 'null', '42', '"a string"', 'true', '[{"email":"a@b.co"}]'])('non-object JSON %s → 4xx, never 5xx, on every JSON endpoint', async (body) => {
    const u = await signUp(t.app);
    const targets: Array<[string, 'POST' | 'PATCH', Record<string, string>]> = [
      ['/auth/register', 'POST', {}],
      ['/auth/login', 'POST', {}],
      ['/auth/refresh', 'POST', {}],
      ['/auth/token', 'POST', {}],
      ['/auth/logout', 'POST', bearer(u.access)],
      ['/users/me', 'PATCH', bearer(u.access)],
      ['/users/me/password', 'POST', bearer(u.access)],
    ];
    for (const [url, method, headers] of targets) {
      const res = await t.app.inject({ method, url, headers: { ...headers, 'content-type': 'application/json' }, payload: body });
      expect(res.statusCode, `${method} ${url} ${body} → ${res.body}`).toBeLessThan(500);
      // logout ignores its body: a valid token is enough.
      if (url === '/auth/logout') continue;
      expect(res.statusCode, `${method} ${url} ${body} → ${res.body}`).toBeGreaterThanOrEqual(400);
      expect(typeof json(res).error).toBe('string');
    }
  });

  it('thousands of unknown fields are ignored without trouble', async () => {
    const many: Record<string, unknown> = {};
    for (let i = 0; i < 5000; i++) many[`f${i}`] = 0; // ~45 KB: under the body limit
    const email = uniqueEmail('many');
    const res = await t.app.inject({ method: 'POST', url: '/auth/register', payload: { ...many, email, password: PASSWORD } });
    expect(res.statusCode, res.body).toBe(201);
    expect(Object.keys(json(res))).not.toContain('f1');

    const form = Array.from({ length: 5000 }, (_, i) => `f${i}=${i}`).join('&');
    const tok = await post(
      t.app,
      '/auth/token',
      'application/x-www-form-urlencoded',
      `${form}&grant_type=password&username=${encodeURIComponent(email)}&password=${encodeURIComponent(PASSWORD)}`,
    );
    expect(tok.statusCode, tok.body).toBe(200);
  });

  it('deeply nested JSON → 4xx or ignored, never 5xx', async () => {
    const deepArray = `{"email":${'['.repeat(30_000)}${']'.repeat(30_000)},"password":"${PASSWORD}"}`;
    const r1 = await post(t.app, '/auth/register', 'application/json', deepArray);
    expectError(r1, r1.statusCode === 413 ? 413 : 422, r1.statusCode === 413 ? 'payload_too_large' : 'validation_failed');
    const deepObject = `{"email":"${uniqueEmail('deep')}","password":"${PASSWORD}","x":${'{"a":'.repeat(10_000)}1${'}'.repeat(10_000)}}`;
    const r2 = await post(t.app, '/auth/register', 'application/json', deepObject);
    expect(r2.statusCode, r2.body).toBeLessThan(500);
  });
});

describe('OAuth2 endpoints answer in the RFC 6749 §5.2 shape', () => {
  it('malformed JSON on /auth/token, /auth/login, /auth/refresh → 400 invalid_request', async () => {
    for (const url of ['/auth/token', '/auth/login', '/auth/refresh']) {
      expectOAuthError(await post(t.app, url, 'application/json', '{bad'), 400, 'invalid_request');
      expectOAuthError(await post(t.app, url, 'application/json', ''), 400, 'invalid_request');
      expectOAuthError(await post(t.app, url, 'application/json', '[]'), 400, 'invalid_request');
    }
  });

  it('missing grant_type (JSON or form) → 400 invalid_request naming it', async () => {
    const j = expectOAuthError(
      await t.app.inject({ method: 'POST', url: '/auth/token', payload: { username: 'a@b.co', password: PASSWORD } }),
      400,
      'invalid_request',
    );
    expect(j.error_description).toMatch(/grant_type/);
    const f = expectOAuthError(await post(t.app, '/auth/token', 'application/x-www-form-urlencoded', 'username=a%40b.co&password=x'), 400, 'invalid_request');
    expect(f.error_description).toMatch(/grant_type/);
  });

  it('missing grant parameters → invalid_request; unknown grant → unsupported_grant_type', async () => {
    const noPassword = expectOAuthError(
      await post(t.app, '/auth/token', 'application/x-www-form-urlencoded', 'grant_type=password&username=a%40b.co'),
      400,
      'invalid_request',
    );
    expect(noPassword.error_description).toMatch(/password/);
    const noToken = expectOAuthError(await post(t.app, '/auth/token', 'application/x-www-form-urlencoded', 'grant_type=refresh_token'), 400, 'invalid_request');
    expect(noToken.error_description).toMatch(/refresh_token/);
    expectOAuthError(await post(t.app, '/auth/token', 'application/x-www-form-urlencoded', 'grant_type=client_credentials'), 400, 'unsupported_grant_type');
  });

  it('wrong types on /auth/login → invalid_request, not the catalogue shape', async () => {
    expectOAuthError(await t.app.inject({ method: 'POST', url: '/auth/login', payload: { email: 42, password: PASSWORD } }), 400, 'invalid_request');
    expectOAuthError(await t.app.inject({ method: 'POST', url: '/auth/login', payload: { email: 'a@b.co' } }), 400, 'invalid_request');
  });
});

/** Drops a PostgreSQL test database whose handle was already closed (TestDatabase.drop would close it twice). */
async function dropClosedDatabase(db: TestDatabase) {
  if (!db.url) return;
  const name = new URL(db.url).pathname.slice(1);
  const admin = new pg.Client({ connectionString: process.env.TEST_DATABASE_URL });
  await admin.connect();
  try {
    await admin.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
  } finally {
    await admin.end();
  }
}

describe('database outage', () => {
  async function expectOutageAnswers(app: FastifyInstance, access: string, email: string) {
    const me = await app.inject({ method: 'GET', url: '/users/me', headers: bearer(access) });
    expectError(me, 503, 'service_unavailable');
    expect(me.headers['retry-after']).toBeDefined();
    expectNoInternals(me);

    // The OAuth2 endpoints keep the RFC 6749 §5.2 shape, with the catalogue code.
    const login = await app.inject({ method: 'POST', url: '/auth/login', payload: { email, password: PASSWORD } });
    expectOAuthError(login, 503, 'service_unavailable');
    expectNoInternals(login);

    const token = await post(
      app,
      '/auth/token',
      'application/x-www-form-urlencoded',
      new URLSearchParams({ grant_type: 'password', username: email, password: PASSWORD }).toString(),
    );
    expectOAuthError(token, 503, 'service_unavailable');
    expectNoInternals(token);

    const reg = await app.inject({ method: 'POST', url: '/auth/register', payload: { email: uniqueEmail('outage'), password: PASSWORD } });
    expectError(reg, 503, 'service_unavailable');
    expectNoInternals(reg);

    const ready = await app.inject({ method: 'GET', url: '/health/ready' });
    expect(ready.statusCode).toBe(503);
    expect(json(ready)).toEqual({ status: 'unavailable', checks: { database: 'down' } });
    // Liveness is about the process, not its dependencies.
    expect((await app.inject({ method: 'GET', url: '/health/live' })).statusCode).toBe(200);
  }

  it('a closed database handle → 503 service_unavailable without internals; readiness 503', async () => {
    // A token issued by the main app verifies on the outage app: same test key ring, issuer and audience.
    const u = await signUp(t.app);
    const db = await createTestDatabase();
    const down = await createTestApp({ db });
    try {
      expect((await down.app.inject({ method: 'GET', url: '/health/ready' })).statusCode).toBe(200);
      await db.handle.close();
      await expectOutageAnswers(down.app, u.access, u.email);
    } finally {
      await down.close();
      await dropClosedDatabase(db);
    }
  });

  it('an unreachable PostgreSQL server (connection refused) → 503', async () => {
    const u = await signUp(t.app);
    // Port 1: nothing listens, the connection is refused at once.
    const handle = await openDatabase({ url: 'postgres://postgres@127.0.0.1:1/tessera', connectTimeoutMs: 2000 });
    const down = await createTestApp({ db: { handle, url: null, drop: () => handle.close() } });
    try {
      await expectOutageAnswers(down.app, u.access, u.email);
    } finally {
      await down.close();
      await handle.close();
    }
  });
});

describe('docs/errors.md', () => {
  const docPath = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../docs/errors.md');
  const rows = () => {
    const found = new Map<string, number[]>();
    for (const line of readFileSync(docPath, 'utf8').split('\n')) {
      const m = /^\|\s*`([a-z0-9_]+)`\s*\|\s*(\d{3})\s*\|/.exec(line);
      if (m) found.set(m[1]!, [...(found.get(m[1]!) ?? []), Number(m[2])]);
    }
    return found;
  };

  it('lists every catalogue and OAuth2 code with its status, once', () => {
    const doc = rows();
    const expected: Array<[string, number]> = [
      ...Object.entries(errorCatalogue).map(([code, e]) => [code, e.status] as [string, number]),
      ...Object.entries(oauthErrorCatalogue),
    ];
    for (const [code, status] of expected) {
      expect(doc.get(code), `docs/errors.md is missing ${code}`).toBeDefined();
      expect(doc.get(code), `docs/errors.md: ${code}`).toEqual([status]);
    }
  });

  it('lists no code that the catalogues do not have', () => {
    const known = new Set([...Object.keys(errorCatalogue), ...Object.keys(oauthErrorCatalogue)]);
    const unknown = [...rows().keys()].filter((c) => !known.has(c));
    expect(unknown).toEqual([]);
    expect(rows().size).toBeGreaterThanOrEqual(known.size);
  });
});
