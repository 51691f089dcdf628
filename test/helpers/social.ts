/**
 * Helpers for the third-party sign-in tests: a provider key served as a JWKS by
 * a tiny node:http server (and ID tokens signed with it), a cookie-keeping
 * "browser" for driving a real OpenID provider over HTTP, and the Tessera side
 * of the web flow through app.inject (the binding cookie included).
 */
import { generateKeyPairSync, randomUUID, type KeyObject } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { SignJWT, exportJWK, type JWK } from 'jose';
import { s256 } from './fake-http.js';

export type Handler = (req: IncomingMessage, body: string, res: ServerResponse) => void | Promise<void>;

/** A loopback HTTP server with one handler; `close()` ends it (and its keep-alive sockets). */
export async function startServer(handler: Handler): Promise<{ base: string; server: Server; close(): Promise<void> }> {
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      Promise.resolve(handler(req, Buffer.concat(chunks).toString('utf8'), res)).catch((err: unknown) => {
        res.statusCode = 500;
        res.end(String(err));
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    base: `http://127.0.0.1:${port}`,
    server,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

/** An RSA signing key of a pretend provider, with its public JWK. */
export class ProviderKey {
  readonly kid = randomUUID();
  readonly privateKey: KeyObject;
  readonly jwk: Promise<JWK>;
  constructor() {
    const pair = generateKeyPairSync('rsa', { modulusLength: 2048 });
    this.privateKey = pair.privateKey;
    this.jwk = exportJWK(pair.publicKey).then((j) => ({ ...j, kid: this.kid, alg: 'RS256', use: 'sig' }));
  }

  /** An ID token with these claims (iat/exp from `now` unless given). */
  async idToken(claims: Record<string, unknown>, now: Date, opts: { kid?: string; alg?: 'RS256' } = {}): Promise<string> {
    const iat = Math.floor(now.getTime() / 1000);
    return new SignJWT({ iat, exp: iat + 600, ...claims })
      .setProtectedHeader({ alg: opts.alg ?? 'RS256', kid: opts.kid ?? this.kid, typ: 'JWT' })
      .sign(this.privateKey);
  }
}

/** Serves `{keys}` of the given provider keys at /jwks.json. */
export async function startJwksServer(keys: ProviderKey[]) {
  const srv = await startServer(async (req, _body, res) => {
    if (req.url === '/jwks.json') return sendJson(res, 200, { keys: await Promise.all(keys.map((k) => k.jwk)) });
    sendJson(res, 404, { error: 'not_found' });
  });
  return { ...srv, jwksUrl: `${srv.base}/jwks.json` };
}

export { sha256Hex } from '../../src/infra/opaque-token.js';
export { s256 };

/** The app's PKCE verifier of these tests (43–128 unreserved characters), and its S256 challenge. */
export const APP_VERIFIER = 'the-app-pkce-verifier-of-the-tests-0123456789';
export const APP_PKCE = { code_challenge: s256(APP_VERIFIER), code_challenge_method: 'S256' };

/** Follows redirects by hand and keeps cookies, like a browser would (one jar per "browser"). */
export class Browser {
  private readonly jar = new Map<string, string>();

  private remember(res: Response): void {
    for (const line of res.headers.getSetCookie()) {
      const [pair = ''] = line.split(';');
      const eq = pair.indexOf('=');
      if (eq > 0) this.jar.set(pair.slice(0, eq).trim(), pair.slice(eq + 1).trim());
    }
  }

  private cookieHeader(): string {
    return [...this.jar].map(([k, v]) => `${k}=${v}`).join('; ');
  }

  async request(url: string, init: { method?: string; form?: Record<string, string> } = {}): Promise<Response> {
    const headers: Record<string, string> = { cookie: this.cookieHeader() };
    let body: string | undefined;
    if (init.form) {
      headers['content-type'] = 'application/x-www-form-urlencoded';
      body = new URLSearchParams(init.form).toString();
    }
    const res = await fetch(url, { method: init.method ?? (body ? 'POST' : 'GET'), headers, body, redirect: 'manual' });
    this.remember(res);
    return res;
  }

  /**
   * Follows redirects from `url` through the provider's pages (login and consent
   * forms of oidc-provider's dev interactions, submitted with `login`) until one
   * points under `stopAt`; returns that URL.
   */
  async untilRedirectTo(url: string, stopAt: string, login: string): Promise<string> {
    let next = url;
    let form: Record<string, string> | undefined;
    for (let hop = 0; hop < 20; hop++) {
      const res = await this.request(next, form ? { method: 'POST', form } : {});
      form = undefined;
      const location = res.headers.get('location');
      if (location) {
        const abs = new URL(location, next).href;
        if (abs.startsWith(stopAt)) return abs;
        next = abs;
        continue;
      }
      const html = await res.text();
      const action = /<form[^>]*action="([^"]+)"/.exec(html)?.[1];
      const prompt = /name="prompt" value="([^"]+)"/.exec(html)?.[1];
      if (res.status !== 200 || !action || !prompt) throw new Error(`unexpected provider page ${res.status}: ${html.slice(0, 300)}`);
      next = new URL(action.replace(/&amp;/g, '&'), next).href;
      form = prompt === 'login' ? { prompt, login, password: 'any' } : { prompt };
    }
    throw new Error('too many redirects');
  }
}

/** The `tessera_oauth` binding cookie Tessera set, as a Cookie header value. */
export function bindingCookie(res: LightMyRequestResponse): string {
  const raw = res.headers['set-cookie'];
  const line = (Array.isArray(raw) ? raw : [raw ?? '']).find((c) => c.startsWith('tessera_oauth='));
  if (!line) throw new Error('no binding cookie');
  return line.split(';')[0] as string;
}

/**
 * GET /auth/oauth/:provider/authorize through app.inject: the provider URL and the binding cookie.
 * PKCE is required: the app's challenge (APP_PKCE) is sent unless the query has a challenge of its own.
 */
export async function authorize(app: FastifyInstance, provider: string, query: Record<string, string>, cookie?: string) {
  const withPkce = 'code_challenge' in query || 'code_challenge_method' in query ? query : { ...APP_PKCE, ...query };
  const res = await app.inject({
    method: 'GET',
    url: `/auth/oauth/${provider}/authorize?${new URLSearchParams(withPkce).toString()}`,
    headers: cookie ? { cookie } : {},
  });
  if (res.statusCode !== 302) throw new Error(`authorize: ${res.statusCode} ${res.body}`);
  return { location: new URL(res.headers.location as string), cookie: bindingCookie(res), res };
}

/** Replays the provider's redirect (an absolute URL under PUBLIC_URL) through app.inject. */
export async function callbackGet(app: FastifyInstance, url: string, cookie: string | null) {
  const u = new URL(url);
  return app.inject({ method: 'GET', url: `${u.pathname}${u.search}`, headers: cookie ? { cookie } : {} });
}

/** The app's redirect_uri with its query parameters. */
export function landing(res: LightMyRequestResponse): URL {
  if (res.statusCode !== 302 && res.statusCode !== 303) throw new Error(`expected a redirect, got ${res.statusCode} ${res.body}`);
  return new URL(res.headers.location as string);
}

/**
 * POST /auth/token grant_type=authorization_code. The verifier of APP_PKCE is sent unless the form
 * names `code_verifier` itself (`code_verifier: undefined` sends none).
 */
export async function exchangeCode(app: FastifyInstance, form: Record<string, string | undefined>) {
  const fields = { grant_type: 'authorization_code', ...('code_verifier' in form ? {} : { code_verifier: APP_VERIFIER }), ...form };
  const sent = Object.entries(fields).filter((e): e is [string, string] => e[1] !== undefined);
  return app.inject({
    method: 'POST',
    url: '/auth/token',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    payload: new URLSearchParams(sent).toString(),
  });
}
