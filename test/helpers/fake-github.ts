import { randomBytes } from 'node:crypto';
import type { OAuth2ProviderConfig } from '../../src/config/index.js';
import { FakeHttpServer, oauth2Env, s256, type FakeReply, type RecordedRequest } from './fake-http.js';

/**
 * A stand-in for github.com and the GitHub REST API (like GitHub Enterprise,
 * the API lives under `/api/v3`), answering with the documented shapes:
 * - GET  /login/oauth/authorize            → 302 to redirect_uri?code&state (signed in as `loginAs`)
 * - POST /login/oauth/access_token         → 200 {access_token, token_type, scope} or 200 {error, error_description, error_uri}
 * - GET  /api/v3/user, /api/v3/user/emails → the user and its addresses, 401 {message: "Bad credentials"}
 * - POST /api/v3/applications/:client_id/token (Basic client_id:client_secret) → 200 token check, 404 Not Found
 * Knows any number of OAuth apps (client ids); tokens belong to one app and one user.
 */
export interface GithubEmail {
  email: string;
  primary: boolean;
  verified: boolean;
  visibility?: 'public' | 'private' | null;
}

export interface GithubUser {
  id: number;
  login: string;
  name: string | null;
  /** The public profile address (null unless the user made one public). */
  email: string | null;
  emails: GithubEmail[];
}

interface IssuedCode {
  userId: number;
  clientId: string;
  redirectUri: string;
  codeChallenge: string | null;
  used: boolean;
}

const DOCS = 'https://docs.github.com/rest';
const notFound: FakeReply = { status: 404, body: { message: 'Not Found', documentation_url: DOCS, status: '404' } };
const badCredentials: FakeReply = { status: 401, body: { message: 'Bad credentials', documentation_url: DOCS, status: '401' } };
const tokenError = (error: string, description: string): FakeReply => ({
  status: 200,
  body: {
    error,
    error_description: description,
    error_uri: `https://docs.github.com/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors/#${error.replace(/_/g, '-')}`,
  },
});

export class FakeGithub {
  readonly apps = new Map<string, string>();
  readonly users = new Map<number, GithubUser>();
  readonly tokens = new Map<string, { userId: number; clientId: string }>();
  readonly codes = new Map<string, IssuedCode>();
  /** Who "signs in" at the authorize page. */
  loginAs: number | null = null;
  private nextId = 1000;

  private constructor(readonly http: FakeHttpServer) {}

  static async start(app = { clientId: 'gh-client-id', clientSecret: 'gh-client-secret' }): Promise<FakeGithub> {
    let fake: FakeGithub | null = null;
    const http = await FakeHttpServer.start((req) => fake!.route(req));
    fake = new FakeGithub(http);
    fake.apps.set(app.clientId, app.clientSecret);
    return fake;
  }

  get base(): string {
    return this.http.base;
  }
  get apiUrl(): string {
    return `${this.base}/api/v3`;
  }

  /** The provider configuration for the first app (or the given one). */
  config(clientId = [...this.apps.keys()][0]!): OAuth2ProviderConfig {
    return {
      clientId,
      clientSecret: this.apps.get(clientId)!,
      scopes: 'read:user user:email',
      authorizationUrl: `${this.base}/login/oauth/authorize`,
      tokenUrl: `${this.base}/login/oauth/access_token`,
      apiUrl: this.apiUrl,
    };
  }

  /** The GITHUB_* variables that point Tessera at this fake. */
  env(clientId = [...this.apps.keys()][0]!): Record<string, string> {
    return oauth2Env('GITHUB', this.config(clientId));
  }

  addApp(clientId: string, clientSecret: string): void {
    this.apps.set(clientId, clientSecret);
  }

  addUser(user: Partial<GithubUser> = {}): GithubUser {
    const id = user.id ?? ++this.nextId;
    const u: GithubUser = { id, login: `user${id}`, name: null, email: null, emails: [], ...user };
    this.users.set(id, u);
    return u;
  }

  /** An access token of `userId` for an app (ours by default): what a native SDK would hand over. */
  issueToken(userId: number, clientId = [...this.apps.keys()][0]!): string {
    const token = `gho_${randomBytes(18).toString('base64url')}`;
    this.tokens.set(token, { userId, clientId });
    return token;
  }

  /** A code as GitHub's authorize page would give it. */
  issueCode(userId: number, redirectUri: string, codeChallenge: string | null, clientId = [...this.apps.keys()][0]!): string {
    const code = randomBytes(10).toString('hex');
    this.codes.set(code, { userId, clientId, redirectUri, codeChallenge, used: false });
    return code;
  }

  close(): Promise<void> {
    return this.http.close();
  }

  private route(req: RecordedRequest): FakeReply {
    const p = req.url.pathname;
    if (req.method === 'GET' && p === '/login/oauth/authorize') return this.authorize(req);
    if (req.method === 'POST' && p === '/login/oauth/access_token') return this.accessToken(req);
    if (!p.startsWith('/api/v3/')) return notFound;
    const api = p.slice('/api/v3'.length);
    const check = /^\/applications\/([^/]+)\/token$/.exec(api);
    if (req.method === 'POST' && check) return this.checkToken(req, decodeURIComponent(check[1]!));
    if (req.method === 'GET' && (api === '/user' || api === '/user/emails')) {
      const auth = /^(?:Bearer|token) (.+)$/i.exec(req.headers.authorization ?? '');
      const token = auth ? this.tokens.get(auth[1]!) : undefined;
      const user = token ? this.users.get(token.userId) : undefined;
      if (!user) return badCredentials;
      return { status: 200, body: api === '/user' ? this.userJson(user) : user.emails.map((e) => ({ visibility: null, ...e })) };
    }
    return notFound;
  }

  private authorize(req: RecordedRequest): FakeReply {
    const q = req.url.searchParams;
    const clientId = q.get('client_id') ?? '';
    const redirectUri = q.get('redirect_uri');
    if (!this.apps.has(clientId) || !redirectUri) return { status: 404, body: 'Not Found' };
    if (this.loginAs === null) return { status: 200, body: 'Sign in to GitHub' };
    const challenge = q.get('code_challenge');
    const code = this.issueCode(this.loginAs, redirectUri, q.get('code_challenge_method') === 'S256' ? challenge : null, clientId);
    const to = new URL(redirectUri);
    to.searchParams.set('code', code);
    if (q.get('state') !== null) to.searchParams.set('state', q.get('state')!);
    return { status: 302, location: to.toString() };
  }

  private accessToken(req: RecordedRequest): FakeReply {
    const form = new URLSearchParams(req.body);
    const clientId = form.get('client_id') ?? '';
    if (!this.apps.has(clientId) || this.apps.get(clientId) !== form.get('client_secret')) {
      return tokenError('incorrect_client_credentials', 'The client_id and/or client_secret passed are incorrect.');
    }
    const code = this.codes.get(form.get('code') ?? '');
    if (!code || code.used || code.clientId !== clientId) return tokenError('bad_verification_code', 'The code passed is incorrect or expired.');
    if (form.get('redirect_uri') !== null && form.get('redirect_uri') !== code.redirectUri) {
      return tokenError('redirect_uri_mismatch', 'The redirect_uri MUST match the registered callback URL for this application.');
    }
    if (code.codeChallenge !== null && s256(form.get('code_verifier') ?? '') !== code.codeChallenge) {
      return tokenError('bad_verification_code', 'The code passed is incorrect or expired.');
    }
    code.used = true;
    const accessToken = this.issueToken(code.userId, clientId);
    return { status: 200, body: { access_token: accessToken, token_type: 'bearer', scope: 'read:user,user:email' } };
  }

  private checkToken(req: RecordedRequest, pathClientId: string): FakeReply {
    const basic = /^Basic (.+)$/i.exec(req.headers.authorization ?? '');
    const [id, secret] = basic ? Buffer.from(basic[1]!, 'base64').toString('utf8').split(':') : [];
    if (!id || this.apps.get(id) !== secret) return badCredentials;
    if (id !== pathClientId) return notFound;
    let accessToken: unknown;
    try {
      accessToken = (JSON.parse(req.body) as { access_token?: unknown }).access_token;
    } catch {
      return { status: 400, body: { message: 'Problems parsing JSON', documentation_url: DOCS, status: '400' } };
    }
    if (typeof accessToken !== 'string') return { status: 422, body: { message: 'Invalid request.', documentation_url: DOCS, status: '422' } };
    const token = this.tokens.get(accessToken);
    // A token of another app is, for this app's check, unknown.
    if (!token || token.clientId !== id) return notFound;
    const user = this.users.get(token.userId)!;
    return {
      status: 200,
      body: {
        id: 1,
        url: `${this.apiUrl}/authorizations/1`,
        scopes: ['read:user', 'user:email'],
        token: accessToken,
        token_last_eight: accessToken.slice(-8),
        hashed_token: 'not-computed-by-the-fake',
        app: { url: 'https://app.example', name: 'Tessera test app', client_id: id },
        note: null,
        note_url: null,
        updated_at: '2026-01-01T00:00:00Z',
        created_at: '2026-01-01T00:00:00Z',
        expires_at: null,
        fingerprint: null,
        user: this.userJson(user),
        installation: null,
      },
    };
  }

  private userJson(u: GithubUser) {
    return {
      login: u.login,
      id: u.id,
      node_id: `U_${u.id}`,
      avatar_url: `https://avatars.githubusercontent.com/u/${u.id}?v=4`,
      gravatar_id: '',
      url: `${this.apiUrl}/users/${u.login}`,
      html_url: `https://github.com/${u.login}`,
      type: 'User',
      site_admin: false,
      name: u.name,
      company: null,
      blog: '',
      location: null,
      email: u.email,
      hireable: null,
      bio: null,
      twitter_username: null,
      public_repos: 0,
      public_gists: 0,
      followers: 0,
      following: 0,
      created_at: '2020-01-01T00:00:00Z',
      updated_at: '2026-01-01T00:00:00Z',
    };
  }
}
