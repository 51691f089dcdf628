import { connect, type AddressInfo } from 'node:net';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config/index.js';
import { SmtpCatcher, tokenIn } from '../helpers/smtp.js';
import { PASSWORD, bearer, createTestApp, json, signUp, uniqueEmail, type TestApp } from '../helpers/test-app.js';

// HTTP hardening (OWASP ASVS 5.0 V3/V4): security headers on the API, the HTML pages and /docs;
// the body limit (413 before parsing or hashing, also over a raw socket with a lying
// Content-Length or a chunked body); the header size limit (431 from Node's parser);
// the CORS allow-list. `t` runs the defaults (over http, no CORS); `tuned` shares its
// database with PUBLIC_URL on https, CORS_ORIGINS, MAX_HEADER_BYTES=4096 and app redirects.

const APP_ORIGIN = 'https://app.example.test';
const DEV_ORIGIN = 'http://localhost:3000';

let smtp: SmtpCatcher;
let t: TestApp;
let tuned: TestApp;

beforeAll(async () => {
  smtp = await SmtpCatcher.start();
  t = await createTestApp({ env: { SMTP_SERVER: '127.0.0.1', SMTP_PORT: String(smtp.port), SMTP_TIMEOUT_MS: '5000', OUTBOX_POLL_INTERVAL_MS: '50' } });
  tuned = await createTestApp({
    db: t.db,
    env: {
      PUBLIC_URL: 'https://auth.example.test',
      CORS_ORIGINS: `${APP_ORIGIN}, ${DEV_ORIGIN}`,
      MAX_HEADER_BYTES: '4096',
      PASSWORD_RESET_URL: `${APP_ORIGIN}/reset`,
      EMAIL_CONFIRMED_REDIRECT_URL: `${APP_ORIGIN}/welcome`,
    },
  });
  await t.app.listen({ host: '127.0.0.1', port: 0 });
  await tuned.app.listen({ host: '127.0.0.1', port: 0 });
});

afterAll(async () => {
  await tuned?.close();
  await t?.close();
  await smtp?.close();
});

const portOf = (app: FastifyInstance) => (app.server.address() as AddressInfo).port;

/** bcrypt operations so far, from /metrics (hash + verify + dummy). */
async function hashCount(app: FastifyInstance): Promise<number> {
  const text = (await app.inject({ method: 'GET', url: '/metrics' })).body;
  let n = 0;
  for (const m of text.matchAll(/^tessera_password_hash_seconds_count\{[^}]*\} (\d+)/gm)) n += Number(m[1]);
  return n;
}

/** Raw HTTP over a socket: writes `head`, then each chunk of `body` as the server allows; resolves with what came back. */
function rawRequest(port: number, head: string, body: Buffer[] = []): Promise<{ status: number; text: string; bodyBytesWritten: number }> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    let text = '';
    let written = 0;
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      socket.destroy();
      resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0), text, bodyBytesWritten: written });
    };
    socket.setEncoding('utf8');
    socket.on('data', (c: string) => {
      text += c;
      // one complete response is enough
      const m = /\r\n\r\n/.exec(text);
      const len = /content-length: (\d+)/i.exec(text)?.[1];
      if (m && len !== undefined && text.length >= m.index + 4 + Number(len)) finish();
    });
    socket.on('error', () => finish());
    socket.on('close', () => finish());
    socket.write(head);
    const pump = () => {
      while (body.length && !socket.destroyed && !text) {
        const chunk = body.shift() as Buffer;
        written += chunk.length;
        if (!socket.write(chunk)) return void socket.once('drain', pump);
      }
    };
    pump();
  });
}

describe('security headers', () => {
  function expectCommonHeaders(res: LightMyRequestResponse) {
    expect(res.headers['x-content-type-options']).toBe('nosniff');
    expect(res.headers['x-frame-options']).toBe('SAMEORIGIN');
    expect(res.headers['referrer-policy']).toBe('no-referrer');
    expect(res.headers['cross-origin-opener-policy']).toBe('same-origin');
    expect(res.headers['x-powered-by']).toBeUndefined();
    const csp = String(res.headers['content-security-policy']);
    expect(csp).toContain("default-src 'self'");
    expect(csp).toContain("frame-ancestors 'self'");
    expect(csp).toContain("object-src 'none'");
    expect(csp).toContain("script-src 'self'");
    return csp;
  }

  it('on API responses (JSON success and error)', async () => {
    const u = await signUp(t.app);
    for (const res of [
      await t.app.inject({ method: 'GET', url: '/users/me', headers: bearer(u.access) }),
      await t.app.inject({ method: 'GET', url: '/users/me' }),
      await t.app.inject({ method: 'POST', url: '/auth/login', payload: { email: u.email, password: PASSWORD } }),
      await t.app.inject({ method: 'GET', url: '/.well-known/jwks.json' }),
      await t.app.inject({ method: 'GET', url: '/no/such/route' }),
    ]) {
      expectCommonHeaders(res);
      expect(res.headers['content-type']).toMatch(/^application\/json/);
    }
  });

  it('on the pages of emailed links (token in the URL): no-referrer and no-store, valid or not', async () => {
    const email = uniqueEmail('pages');
    expect((await t.app.inject({ method: 'POST', url: '/auth/register', payload: { email, password: PASSWORD } })).statusCode).toBe(201);
    const confirmToken = tokenIn(await smtp.waitFor(email, /Confirm/));
    expect((await t.app.inject({ method: 'POST', url: '/auth/password/forgot', payload: { email } })).statusCode).toBe(202);
    const resetToken = tokenIn(await smtp.waitFor(email, /reset/i));
    const pages = [
      [`/auth/password/reset?token=${resetToken}`, 200],
      [`/auth/confirm-email?token=${confirmToken}`, 200],
      ['/auth/confirm-email?token=not-a-real-token', 400],
      ['/auth/password/reset?token=not-a-real-token', 400],
    ] as const;
    for (const [url, status] of pages) {
      const res = await t.app.inject({ method: 'GET', url });
      expect(res.statusCode, url).toBe(status);
      expect(res.headers['content-type']).toMatch(/^text\/html/);
      expect(res.headers['cache-control']).toBe('no-store');
      const csp = expectCommonHeaders(res);
      // the reset form posts to its own origin only; no <base> can redirect relative URLs
      expect(csp).toContain("form-action 'self'");
      expect(csp).toContain("base-uri 'none'");
    }
  });

  it('on redirects that carry the token to the app (PASSWORD_RESET_URL, EMAIL_CONFIRMED_REDIRECT_URL)', async () => {
    const reset = await tuned.app.inject({ method: 'GET', url: '/auth/password/reset?token=abc' });
    expect(reset.statusCode).toBe(302);
    expect(reset.headers.location).toBe(`${APP_ORIGIN}/reset?token=abc`);
    const confirm = await tuned.app.inject({ method: 'GET', url: '/auth/confirm-email?token=abc' });
    expect(confirm.statusCode).toBe(303);
    for (const res of [reset, confirm]) {
      expect(res.headers['referrer-policy']).toBe('no-referrer');
      expect(res.headers['cache-control']).toBe('no-store');
    }
  });

  it('on /docs (Swagger UI): its own CSP, still no framing by others', async () => {
    const res = await t.app.inject({ method: 'GET', url: '/docs' });
    expect(res.statusCode, res.body.slice(0, 200)).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/html/);
    const csp = expectCommonHeaders(res);
    expect(csp).not.toContain('upgrade-insecure-requests');
  });

  it('HSTS only when PUBLIC_URL is https', async () => {
    const plain = await t.app.inject({ method: 'GET', url: '/health/live' });
    expect(plain.headers['strict-transport-security']).toBeUndefined();
    expect(String(plain.headers['content-security-policy'])).not.toContain('upgrade-insecure-requests');
    const secure = await tuned.app.inject({ method: 'GET', url: '/health/live' });
    expect(secure.headers['strict-transport-security']).toBe('max-age=31536000; includeSubDomains');
    expect(String(secure.headers['content-security-policy'])).toContain('upgrade-insecure-requests');
  });
});

describe('body size limit (BODY_LIMIT_BYTES, 64 KiB by default)', () => {
  const big = JSON.stringify({ email: 'big@example.com', password: 'p'.repeat(1024 * 1024) });

  it('a 1 MB JSON body to /auth/login, /auth/register and /auth/token: 413 payload_too_large, no hash spent', async () => {
    const before = await hashCount(t.app);
    for (const url of ['/auth/login', '/auth/register', '/auth/token']) {
      const res = await t.app.inject({ method: 'POST', url, headers: { 'content-type': 'application/json' }, payload: big });
      expect(res.statusCode, url).toBe(413);
      expect(json(res).error).toBe('payload_too_large');
    }
    expect(await hashCount(t.app)).toBe(before);
    // the counter does count: one sign-in moves it
    await t.app.inject({ method: 'POST', url: '/auth/login', payload: { email: 'nobody@example.com', password: PASSWORD } });
    expect(await hashCount(t.app)).toBe(before + 1);
  });

  it('over a socket: a 1 MB Content-Length is refused before the body is sent', async () => {
    const before = await hashCount(t.app);
    const res = await rawRequest(
      portOf(t.app),
      `POST /auth/register HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: ${1024 * 1024}\r\n\r\n`,
    );
    expect(res.status).toBe(413);
    expect(res.text).toContain('"error":"payload_too_large"');
    expect(res.bodyBytesWritten).toBe(0);
    expect(await hashCount(t.app)).toBe(before);
  });

  it('over a socket: a chunked 1 MB body is cut off at the limit with 413', async () => {
    const before = await hashCount(t.app);
    const chunk = Buffer.from('a'.repeat(16 * 1024));
    const chunks = [Buffer.from(`{"email":"big@example.com","password":"`)];
    for (let i = 0; i < 64; i++) chunks.push(chunk);
    const body = chunks.map((c) => Buffer.concat([Buffer.from(`${c.length.toString(16)}\r\n`), c, Buffer.from('\r\n')]));
    body.push(Buffer.from('0\r\n\r\n'));
    const res = await rawRequest(
      portOf(t.app),
      `POST /auth/login HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n`,
      body,
    );
    expect(res.status).toBe(413);
    expect(res.text).toContain('"error":"payload_too_large"');
    expect(await hashCount(t.app)).toBe(before);
  });

  it('over a socket: a Content-Length smaller than the body sent: only the declared bytes are read (a 4xx, no hash)', async () => {
    const before = await hashCount(t.app);
    const res = await rawRequest(
      portOf(t.app),
      `POST /auth/login HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 20\r\n\r\n`,
      [Buffer.from(big)],
    );
    expect(res.status).toBeGreaterThanOrEqual(400);
    expect(res.status).toBeLessThan(500);
    expect(await hashCount(t.app)).toBe(before);
    // and the server is fine
    expect((await fetch(`http://127.0.0.1:${portOf(t.app)}/health/live`)).status).toBe(200);
  });

  it('a password over 72 bytes on sign-up: 422 password_too_long before any hashing', async () => {
    const before = await hashCount(t.app);
    for (const password of ['p'.repeat(73), '€'.repeat(25), 'x'.repeat(1024)]) {
      const res = await t.app.inject({ method: 'POST', url: '/auth/register', payload: { email: uniqueEmail('long'), password } });
      expect(res.statusCode).toBe(422);
      expect(json(res).error).toBe('password_too_long');
    }
    expect(await hashCount(t.app)).toBe(before);
  });
});

describe('header size limit (MAX_HEADER_BYTES)', () => {
  const get = (port: number, bytes: number) =>
    rawRequest(port, `GET /health/live HTTP/1.1\r\nHost: localhost\r\nX-Padding: ${'a'.repeat(bytes)}\r\nConnection: close\r\n\r\n`);

  it('default 16 KiB: 12 KB of headers pass, 20 KB get 431 headers_too_large', async () => {
    expect((await get(portOf(t.app), 12 * 1024)).status).toBe(200);
    const res = await get(portOf(t.app), 20 * 1024);
    expect(res.status).toBe(431);
    expect(res.text).toContain('"error":"headers_too_large"');
  });

  it('MAX_HEADER_BYTES=4096: 3 KB pass, 5 KB get 431, and the server keeps serving', async () => {
    expect((await get(portOf(tuned.app), 3 * 1024)).status).toBe(200);
    expect((await get(portOf(tuned.app), 5 * 1024)).status).toBe(431);
    expect((await fetch(`http://127.0.0.1:${portOf(tuned.app)}/health/live`)).status).toBe(200);
  });

  it('malformed HTTP gets a catalogue 400 bad_request', async () => {
    const res = await rawRequest(portOf(t.app), 'GET / HTTP/1.1\r\nHost: localhost\r\nBad Header Line\r\n\r\n');
    expect(res.status).toBe(400);
    expect(res.text).toContain('"error":"bad_request"');
  });
});

describe('CORS (CORS_ORIGINS)', () => {
  const preflight = (app: FastifyInstance, origin: string, method = 'GET', headers = 'authorization,content-type,x-request-id') =>
    app.inject({
      method: 'OPTIONS',
      url: '/users/me',
      headers: { origin, 'access-control-request-method': method, 'access-control-request-headers': headers },
    });

  it('a preflight from an allowed origin: 204 with that origin, methods, headers, max-age and Vary: Origin', async () => {
    for (const origin of [APP_ORIGIN, DEV_ORIGIN]) {
      const res = await preflight(tuned.app, origin);
      expect(res.statusCode).toBe(204);
      expect(res.headers['access-control-allow-origin']).toBe(origin);
      expect(String(res.headers.vary)).toMatch(/Origin/i);
      expect(String(res.headers['access-control-allow-methods']).split(/,\s*/)).toEqual(['GET', 'POST', 'PATCH', 'DELETE']);
      expect(String(res.headers['access-control-allow-headers']).toLowerCase().split(/,\s*/)).toEqual(['authorization', 'content-type', 'x-request-id']);
      expect(res.headers['access-control-max-age']).toBe('600');
      expect(res.headers['access-control-allow-credentials']).toBeUndefined();
    }
  });

  it('a preflight from a foreign origin gets no Access-Control-Allow-Origin', async () => {
    for (const origin of ['https://evil.example', 'https://app.example.test.evil.example', 'http://app.example.test', 'null', 'https://APP.example.test:443']) {
      const res = await preflight(tuned.app, origin);
      expect(res.headers['access-control-allow-origin'], origin).toBeUndefined();
    }
  });

  it('a response to an allowed origin is readable by it; to a foreign origin it is not (no ACAO)', async () => {
    const u = await signUp(tuned.app);
    const allowed = await tuned.app.inject({ method: 'GET', url: '/users/me', headers: { ...bearer(u.access), origin: APP_ORIGIN } });
    expect(allowed.statusCode).toBe(200);
    expect(allowed.headers['access-control-allow-origin']).toBe(APP_ORIGIN);
    expect(String(allowed.headers['access-control-expose-headers'])).toContain('WWW-Authenticate');
    expect(String(allowed.headers.vary)).toMatch(/Origin/i);
    const foreign = await tuned.app.inject({ method: 'GET', url: '/users/me', headers: { ...bearer(u.access), origin: 'https://evil.example' } });
    expect(foreign.headers['access-control-allow-origin']).toBeUndefined();
  });

  it('without CORS_ORIGINS (the default) there are no CORS headers at all', async () => {
    const res = await preflight(t.app, APP_ORIGIN);
    expect(res.headers['access-control-allow-origin']).toBeUndefined();
    expect(res.headers['access-control-allow-methods']).toBeUndefined();
    const get = await t.app.inject({ method: 'GET', url: '/health/live', headers: { origin: APP_ORIGIN } });
    expect(get.headers['access-control-allow-origin']).toBeUndefined();
  });

  it('CORS_ORIGINS accepts exact origins only', () => {
    const base = { NODE_ENV: 'test' };
    expect(loadConfig({ ...base, CORS_ORIGINS: 'https://a.example, http://localhost:3000 ,https://b.example:8443' }).corsOrigins).toEqual([
      'https://a.example',
      'http://localhost:3000',
      'https://b.example:8443',
    ]);
    expect(loadConfig(base).corsOrigins).toEqual([]);
    for (const bad of [
      '*',
      'https://a.example/',
      'https://a.example/app',
      'a.example',
      'https://A.example',
      'https://a.example:443',
      'ftp://a.example',
      'https://a.example?x=1',
      'https://user@a.example',
    ]) {
      expect(() => loadConfig({ ...base, CORS_ORIGINS: bad }), bad).toThrow(ConfigError);
    }
  });

  it('MAX_HEADER_BYTES and BCRYPT_MAX_QUEUE are validated', () => {
    expect(loadConfig({ NODE_ENV: 'test' }).maxHeaderBytes).toBe(16384);
    expect(loadConfig({ NODE_ENV: 'test' }).passwords.bcryptMaxQueue).toBe(1000);
    for (const env of [{ MAX_HEADER_BYTES: '100' }, { MAX_HEADER_BYTES: 'big' }, { BCRYPT_MAX_QUEUE: '0' }]) {
      expect(() => loadConfig({ NODE_ENV: 'test', ...env })).toThrow(ConfigError);
    }
  });
});
