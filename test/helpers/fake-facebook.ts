import { createHmac, randomBytes } from 'node:crypto';
import type { OAuth2ProviderConfig } from '../../src/config/index.js';
import { FakeHttpServer, oauth2Env, s256, type FakeReply, type RecordedRequest } from './fake-http.js';

/**
 * A stand-in for Facebook Login and the Graph API (under `/v21.0`), answering
 * with the documented shapes:
 * - GET /v21.0/dialog/oauth          → 302 to redirect_uri?code&state#_=_ (signed in as `loginAs`)
 * - GET /v21.0/oauth/access_token    → {access_token, token_type, expires_in} or 400 {error: {message, type, code, fbtrace_id}}
 * - GET /v21.0/debug_token           → {data: {app_id, type, application, expires_at, is_valid, scopes, user_id}}
 *                                      ({data: {error, is_valid: false, scopes: []}} for a bad input token)
 * - GET /v21.0/me?fields=…           → the requested fields; checks appsecret_proof
 * Knows any number of apps (app id → secret); tokens belong to one app and one user.
 */
export interface FacebookUser {
  /** App-scoped id. */
  id: string;
  name: string;
  first_name: string;
  last_name: string;
  /** Absent for accounts without a confirmed address (or when the user declined the email permission). */
  email?: string;
}

interface FbToken {
  userId: string;
  appId: string;
  valid: boolean;
  type: 'USER' | 'PAGE' | 'APP';
  scopes: string[];
}

const graphError = (status: number, message: string, type: string, code: number, extra: Record<string, unknown> = {}): FakeReply => ({
  status,
  body: { error: { message, type, code, ...extra, fbtrace_id: 'A' + randomBytes(8).toString('hex') } },
});
const EXPIRES_AT = 1_900_000_000;

export class FakeFacebook {
  readonly apps = new Map<string, string>();
  readonly users = new Map<string, FacebookUser>();
  readonly tokens = new Map<string, FbToken>();
  readonly codes = new Map<string, { userId: string; appId: string; redirectUri: string; codeChallenge: string | null; used: boolean }>();
  loginAs: string | null = null;
  private nextId = 10_000_000_000;

  private constructor(readonly http: FakeHttpServer) {}

  static async start(app = { appId: '1234567890', appSecret: 'fb-app-secret' }): Promise<FakeFacebook> {
    let fake: FakeFacebook | null = null;
    const http = await FakeHttpServer.start((req) => fake!.route(req));
    fake = new FakeFacebook(http);
    fake.apps.set(app.appId, app.appSecret);
    return fake;
  }

  get base(): string {
    return this.http.base;
  }
  get graphUrl(): string {
    return `${this.base}/v21.0`;
  }

  config(appId = [...this.apps.keys()][0]!): OAuth2ProviderConfig {
    return {
      clientId: appId,
      clientSecret: this.apps.get(appId)!,
      scopes: 'email public_profile',
      authorizationUrl: `${this.graphUrl}/dialog/oauth`,
      tokenUrl: `${this.graphUrl}/oauth/access_token`,
      apiUrl: this.graphUrl,
    };
  }

  /** The FACEBOOK_* variables that point Tessera at this fake. */
  env(appId = [...this.apps.keys()][0]!): Record<string, string> {
    return oauth2Env('FACEBOOK', this.config(appId));
  }

  addApp(appId: string, appSecret: string): void {
    this.apps.set(appId, appSecret);
  }

  addUser(user: Partial<FacebookUser> = {}): FacebookUser {
    const id = user.id ?? String(++this.nextId);
    const u: FacebookUser = { id, first_name: 'Test', last_name: `User${id.slice(-4)}`, name: '', ...user };
    if (!u.name) u.name = `${u.first_name} ${u.last_name}`;
    this.users.set(id, u);
    return u;
  }

  /** A user access token (ours by default): what the native SDK would hand over. */
  issueToken(userId: string, opts: { appId?: string; valid?: boolean; type?: FbToken['type'] } = {}): string {
    const token = 'EAA' + randomBytes(24).toString('base64url');
    this.tokens.set(token, {
      userId,
      appId: opts.appId ?? [...this.apps.keys()][0]!,
      valid: opts.valid ?? true,
      type: opts.type ?? 'USER',
      scopes: ['email', 'public_profile'],
    });
    return token;
  }

  issueCode(userId: string, redirectUri: string, codeChallenge: string | null, appId = [...this.apps.keys()][0]!): string {
    const code = 'AQ' + randomBytes(16).toString('base64url');
    this.codes.set(code, { userId, appId, redirectUri, codeChallenge, used: false });
    return code;
  }

  /** The appsecret_proof Facebook expects for a token of an app. */
  proof(token: string, appId = [...this.apps.keys()][0]!): string {
    return createHmac('sha256', this.apps.get(appId)!).update(token).digest('hex');
  }

  close(): Promise<void> {
    return this.http.close();
  }

  private route(req: RecordedRequest): FakeReply {
    if (req.method !== 'GET') return graphError(400, 'Unsupported method', 'GraphMethodException', 100);
    switch (req.url.pathname) {
      case '/v21.0/dialog/oauth':
        return this.dialog(req);
      case '/v21.0/oauth/access_token':
        return this.accessToken(req);
      case '/v21.0/debug_token':
        return this.debugToken(req);
      case '/v21.0/me':
        return this.me(req);
      default:
        return graphError(400, 'Unknown path components', 'OAuthException', 2500);
    }
  }

  private dialog(req: RecordedRequest): FakeReply {
    const q = req.url.searchParams;
    const appId = q.get('client_id') ?? '';
    const redirectUri = q.get('redirect_uri');
    if (!this.apps.has(appId) || !redirectUri || q.get('response_type') !== 'code') return { status: 400, body: 'Invalid App ID' };
    if (this.loginAs === null) return { status: 200, body: 'Log in to Facebook' };
    const code = this.issueCode(this.loginAs, redirectUri, q.get('code_challenge_method') === 'S256' ? q.get('code_challenge') : null, appId);
    const to = new URL(redirectUri);
    to.searchParams.set('code', code);
    if (q.get('state') !== null) to.searchParams.set('state', q.get('state')!);
    to.hash = '_=_';
    return { status: 302, location: to.toString() };
  }

  private accessToken(req: RecordedRequest): FakeReply {
    const q = req.url.searchParams;
    const appId = q.get('client_id') ?? '';
    if (!this.apps.has(appId) || this.apps.get(appId) !== q.get('client_secret')) {
      return graphError(400, 'Error validating client secret.', 'OAuthException', 1, { error_subcode: 0 });
    }
    const code = this.codes.get(q.get('code') ?? '');
    if (!code || code.appId !== appId) return graphError(400, 'Invalid verification code format.', 'OAuthException', 100, { error_subcode: 36007 });
    if (code.used) return graphError(400, 'This authorization code has been used.', 'OAuthException', 100, { error_subcode: 36009 });
    if (q.get('redirect_uri') !== code.redirectUri) {
      return graphError(
        400,
        'Error validating verification code. Please make sure your redirect_uri is identical to the one you used in the OAuth dialog request',
        'OAuthException',
        100,
        { error_subcode: 36008 },
      );
    }
    if (code.codeChallenge !== null && s256(q.get('code_verifier') ?? '') !== code.codeChallenge) {
      return graphError(400, 'Invalid code verifier.', 'OAuthException', 100);
    }
    code.used = true;
    const accessToken = this.issueToken(code.userId, { appId });
    return { status: 200, body: { access_token: accessToken, token_type: 'bearer', expires_in: 5_183_944 } };
  }

  private debugToken(req: RecordedRequest): FakeReply {
    const q = req.url.searchParams;
    const [appId, secret] = (q.get('access_token') ?? '').split('|');
    if (!appId || !this.apps.has(appId) || this.apps.get(appId) !== secret) {
      return graphError(400, 'Invalid OAuth access token signature.', 'OAuthException', 190);
    }
    const token = this.tokens.get(q.get('input_token') ?? '');
    if (!token) return { status: 200, body: { data: { error: { code: 190, message: 'Invalid OAuth access token.' }, is_valid: false, scopes: [] } } };
    return {
      status: 200,
      body: {
        data: {
          app_id: token.appId,
          type: token.type,
          application: token.appId === appId ? 'Tessera test app' : 'Some other app',
          data_access_expires_at: EXPIRES_AT + 1_000_000,
          expires_at: EXPIRES_AT,
          is_valid: token.valid,
          ...(token.valid ? {} : { error: { code: 190, message: 'Error validating access token: Session has expired.', subcode: 463 } }),
          issued_at: EXPIRES_AT - 5_184_000,
          scopes: token.scopes,
          user_id: token.userId,
        },
      },
    };
  }

  private me(req: RecordedRequest): FakeReply {
    const q = req.url.searchParams;
    const accessToken = q.get('access_token') ?? '';
    const token = this.tokens.get(accessToken);
    if (!token || !token.valid) return graphError(400, 'Invalid OAuth access token - Cannot parse access token', 'OAuthException', 190);
    if (q.get('appsecret_proof') !== this.proof(accessToken, token.appId)) {
      return graphError(400, 'Invalid appsecret_proof provided in the API argument', 'GraphMethodException', 100);
    }
    const user = this.users.get(token.userId);
    if (!user) return graphError(400, 'Unsupported get request.', 'GraphMethodException', 100, { error_subcode: 33 });
    const fields = (q.get('fields') ?? 'id,name').split(',');
    const out: Record<string, unknown> = {};
    for (const f of fields) if (user[f as keyof FacebookUser] !== undefined) out[f] = user[f as keyof FacebookUser];
    return { status: 200, body: out };
  }
}
