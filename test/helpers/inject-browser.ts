import { createHash, randomBytes } from 'node:crypto';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';

/**
 * A browser over `app.inject` for the OpenID Provider's hosted pages: keeps cookies, follows the
 * service's own redirects, stops at a redirect to anywhere else (the client's redirect_uri), and
 * fills the forms of the pages (their CSRF value and request handle included).
 */
export class InjectBrowser {
  readonly cookies = new Map<string, string>();
  constructor(
    private readonly app: FastifyInstance,
    /** Extra headers of every request (e.g. a same-origin Sec-Fetch-Site). */
    private readonly headers: Record<string, string> = {},
  ) {}

  private remember(res: LightMyRequestResponse): void {
    const set = res.headers['set-cookie'];
    for (const line of set === undefined ? [] : Array.isArray(set) ? set : [set]) {
      const [pair = ''] = line.split(';');
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq);
      const value = pair.slice(eq + 1);
      if (/max-age=0/i.test(line) || value === '') this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
  }

  private cookieHeader(): Record<string, string> {
    if (this.cookies.size === 0) return {};
    return { cookie: [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ') };
  }

  async get(url: string, method: 'GET' | 'HEAD' = 'GET'): Promise<LightMyRequestResponse> {
    const res = await this.app.inject({ method, url, headers: { ...this.headers, ...this.cookieHeader() } });
    this.remember(res);
    return res;
  }

  async post(url: string, fields: Record<string, string>, headers: Record<string, string> = {}): Promise<LightMyRequestResponse> {
    const res = await this.app.inject({
      method: 'POST',
      url,
      headers: { 'content-type': 'application/x-www-form-urlencoded', 'sec-fetch-site': 'same-origin', ...this.headers, ...this.cookieHeader(), ...headers },
      payload: new URLSearchParams(fields).toString(),
    });
    this.remember(res);
    return res;
  }

  /** Follows the service's own redirects (relative locations); returns the last response and, if it left the service, where to. */
  async follow(res: LightMyRequestResponse): Promise<{ res: LightMyRequestResponse; external: URL | null; path: string | null }> {
    let path: string | null = null;
    for (let i = 0; i < 10 && res.statusCode >= 300 && res.statusCode < 400; i++) {
      const location = String(res.headers.location);
      if (!location.startsWith('/')) return { res, external: new URL(location), path };
      path = location;
      res = await this.get(location);
    }
    return { res, external: null, path };
  }

  async open(url: string) {
    return this.follow(await this.get(url));
  }

  /** Submits the page's form (its hidden fields and `fields`) to its action, and follows. */
  async submit(page: LightMyRequestResponse, fields: Record<string, string> = {}) {
    const html = page.body;
    const action = /<form method="post" action="([^"]+)"/.exec(html)?.[1];
    if (!action) throw new Error(`no form on the page: ${html.slice(0, 500)}`);
    const hidden: Record<string, string> = {};
    for (const m of html.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g)) hidden[m[1] ?? ''] = unescape(m[2] ?? '');
    return this.follow(await this.post(action, { ...hidden, ...fields }));
  }
}

const unescape = (s: string) =>
  s
    .replace(/&amp;/g, '&')
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>');

export function pkce() {
  const verifier = randomBytes(32).toString('base64url');
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') };
}

export function authorizeUrl(params: Record<string, string>): string {
  return `/auth/authorize?${new URLSearchParams({ response_type: 'code', ...params }).toString()}`;
}
