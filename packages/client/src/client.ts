import { TesseraError, TesseraNetworkError, errorFromBody } from './errors.js';
import { decodeJwtPayload } from './jwt.js';
import { createPkce, randomToken } from './pkce.js';
import { DEFAULT_SCOPE, buildAuthorizationUrl, checkCallback, checkIdToken, type AuthorizationOptions } from './redirect-flow.js';
import { memoryStorage, type TokenStorage } from './storage.js';
import type {
  AuthorizationRequest,
  AuthEvent,
  AuthListener,
  ClientOptions,
  FetchLike,
  MfaStatus,
  Passkey,
  PasskeySignInOptions,
  ProviderCredentials,
  RedirectSignedIn,
  Session,
  SessionInfo,
  SignInResult,
  SignedIn,
  SocialAuthorization,
  TotpEnrolment,
  User,
  WebAuthnCredentialJSON,
  WebAuthnOptionsJSON,
} from './types.js';

interface TokenResponse {
  access_token: string;
  token_type: string;
  expires_in?: number;
  /** Absent from a code exchange without `offline_access` for a third-party client: the session then ends with its access token. */
  refresh_token?: string;
  id_token?: string;
}

type Json = Record<string, unknown>;

const notSignedIn = () => new TesseraError('not_signed_in', 0, 'There is no signed-in session.');

function formEncode(fields: Record<string, string>): string {
  // By hand: URLSearchParams is incomplete in some React Native versions.
  return Object.entries(fields)
    .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`.replace(/%20/g, '+'))
    .join('&');
}

function isRequest(input: unknown): input is Request {
  return typeof Request !== 'undefined' && input instanceof Request;
}

function toUser(u: Json): User {
  return {
    id: u.id as string,
    email: u.email as string,
    emailVerified: u.email_verified as boolean,
    firstName: (u.first_name as string | null) ?? null,
    lastName: (u.last_name as string | null) ?? null,
    hasPassword: u.has_password as boolean,
    createdAt: u.created_at as string,
    updatedAt: u.updated_at as string,
  };
}

function toSessionInfo(s: Json): SessionInfo {
  return {
    id: s.id as string,
    current: s.current as boolean,
    createdAt: s.created_at as string,
    lastRefreshedAt: s.last_refreshed_at as string,
    expiresAt: s.expires_at as string,
    userAgent: (s.user_agent as string | null) ?? null,
    ip: (s.ip as string | null) ?? null,
  };
}

/** A web social sign-in between its two steps, as stored. */
interface PendingSocialSignIn {
  codeVerifier: string;
  redirectUri: string;
}

function parsePending(raw: string | null): PendingSocialSignIn | null {
  if (!raw) return null;
  try {
    const p = JSON.parse(raw) as Partial<PendingSocialSignIn>;
    return typeof p.codeVerifier === 'string' && typeof p.redirectUri === 'string' ? { codeVerifier: p.codeVerifier, redirectUri: p.redirectUri } : null;
  } catch {
    return null;
  }
}

function parseStored(raw: string | null): Session | null {
  if (!raw) return null;
  try {
    const s = JSON.parse(raw) as Partial<Session>;
    // A session without a refresh token (a third-party client without offline_access) is a session all the same.
    if (typeof s.accessToken !== 'string' || (s.refreshToken !== undefined && typeof s.refreshToken !== 'string')) return null;
    return {
      accessToken: s.accessToken,
      ...(s.refreshToken !== undefined ? { refreshToken: s.refreshToken } : {}),
      expiresAt: typeof s.expiresAt === 'number' ? s.expiresAt : null,
      userId: typeof s.userId === 'string' ? s.userId : null,
      amr: Array.isArray(s.amr) ? s.amr : [],
      ...(typeof s.clientId === 'string' ? { clientId: s.clientId } : {}),
    };
  } catch {
    return null;
  }
}

/** MFA management of the signed-in user. */
export interface MfaApi {
  /** `GET /users/me/mfa` */
  status(): Promise<MfaStatus>;
  /** `POST /users/me/mfa/totp`: `password` is needed unless the session is younger than MFA_REAUTH_WINDOW (5 min). */
  startEnrolment(opts?: { password?: string }): Promise<TotpEnrolment>;
  /** `POST /users/me/mfa/totp/verify` with the first code: turns TOTP on and returns 10 recovery codes. */
  activate(code: string): Promise<{ recoveryCodes: string[] }>;
  /** `DELETE /users/me/mfa/totp` (a session signed in with a code). */
  disable(opts: { password: string; code: string }): Promise<void>;
  /** `POST /users/me/mfa/recovery-codes` (a session signed in with a code). */
  regenerateRecoveryCodes(password: string): Promise<{ recoveryCodes: string[] }>;
}

function toPasskey(p: Json): Passkey {
  return {
    id: p.id as string,
    name: p.name as string,
    deviceType: p.device_type as Passkey['deviceType'],
    backedUp: p.backed_up as boolean,
    transports: p.transports as string[],
    createdAt: p.created_at as string,
    lastUsedAt: (p.last_used_at as string | null) ?? null,
  };
}

/** Passkeys (WebAuthn): the signed-in user's, and signing in with one. The ceremony itself is the platform's (see the README). */
export interface PasskeysApi {
  /** `POST /users/me/passkeys/options`: creation options; `password` is needed unless the session is younger than MFA_REAUTH_WINDOW (5 min). */
  registrationOptions(opts?: { password?: string }): Promise<WebAuthnOptionsJSON>;
  /** `POST /users/me/passkeys`: the credential the authenticator created from those options. */
  register(credential: WebAuthnCredentialJSON, name?: string): Promise<Passkey>;
  /** `GET /users/me/passkeys` */
  list(): Promise<Passkey[]>;
  /** `PATCH /users/me/passkeys/:id` */
  rename(id: string, name: string): Promise<Passkey>;
  /** `DELETE /users/me/passkeys/:id` (refused with `last_sign_in_method` for the account's last way to sign in). */
  remove(id: string): Promise<void>;
  /** `POST /auth/passkey/options`: without `email`, any passkey of the site (username-less, conditional UI). */
  signInOptions(opts?: { email?: string }): Promise<PasskeySignInOptions>;
  /** `POST /auth/passkey/verify`: the assertion made from `signInOptions` → signed in (or `mfa_required`, for a passkey without user verification on an account with TOTP). */
  signIn(flowId: string, credential: WebAuthnCredentialJSON): Promise<SignInResult>;
  /** `POST /auth/mfa/passkey/options`: after a password, when `mfa_required` lists `passkey`. */
  mfaOptions(mfaToken: string): Promise<WebAuthnOptionsJSON>;
  /** `POST /auth/mfa/passkey/verify`: the second step with a passkey. */
  verifyMfa(mfaToken: string, credential: WebAuthnCredentialJSON): Promise<SignedIn>;
}

export class TesseraClient {
  readonly baseUrl: string;
  readonly mfa: MfaApi;
  readonly passkeys: PasskeysApi;
  private readonly storage: TokenStorage;
  private readonly fetchImpl: FetchLike;
  private readonly marginMs: number;
  private readonly now: () => number;
  private readonly key: string;
  private readonly issuer: string;
  /** Where the redirect flow keeps its request between its two steps. */
  private readonly requestKey: string;
  /** Where a web social sign-in keeps its PKCE verifier between its two steps. */
  private readonly pkceKey: string;
  private session: Session | null = null;
  private loading: Promise<void> | null = null;
  private refreshing: Promise<Session> | null = null;
  private readonly listeners = new Set<AuthListener>();

  constructor(opts: ClientOptions) {
    if (!opts || typeof opts.baseUrl !== 'string' || !opts.baseUrl) throw new TypeError('createClient: baseUrl is required.');
    this.baseUrl = opts.baseUrl.replace(/\/+$/, '');
    this.storage = opts.storage ?? memoryStorage();
    // Looked up at call time, and never called as a method of the options object (browsers need `this === window`).
    this.fetchImpl = opts.fetch ?? ((input, init) => globalThis.fetch(input, init));
    this.marginMs = (opts.refreshMarginSeconds ?? 30) * 1000;
    this.now = opts.now ?? (() => Date.now());
    this.key = opts.storageKey ?? 'tessera.session';
    this.pkceKey = `${this.key}.pkce`;
    this.requestKey = `${this.key}.authorization`;
    this.issuer = (opts.issuer ?? this.baseUrl).replace(/\/+$/, '');
    this.mfa = {
      status: async () => {
        const b = await this.authed<Json>('GET', '/users/me/mfa');
        return { totpEnabled: b.totp_enabled as boolean, recoveryCodesRemaining: b.recovery_codes_remaining as number };
      },
      startEnrolment: async (o = {}) => {
        const b = await this.authed<Json>('POST', '/users/me/mfa/totp', o.password === undefined ? {} : { password: o.password });
        return { secret: b.secret as string, otpauthUri: b.otpauth_uri as string, qrCode: b.qr_code as string };
      },
      activate: async (code) => ({ recoveryCodes: (await this.authed<Json>('POST', '/users/me/mfa/totp/verify', { code })).recovery_codes as string[] }),
      disable: async ({ password, code }) => {
        await this.authed('DELETE', '/users/me/mfa/totp', { password, code });
      },
      regenerateRecoveryCodes: async (password) => ({
        recoveryCodes: (await this.authed<Json>('POST', '/users/me/mfa/recovery-codes', { password })).recovery_codes as string[],
      }),
    };
    this.passkeys = {
      registrationOptions: async (o = {}) => this.authed<Json>('POST', '/users/me/passkeys/options', o.password === undefined ? {} : { password: o.password }),
      register: async (credential, name) =>
        toPasskey(
          await this.authed<Json>('POST', '/users/me/passkeys', { credential: credential as unknown as Json, ...(name === undefined ? {} : { name }) }),
        ),
      list: async () => ((await this.authed<Json>('GET', '/users/me/passkeys')).passkeys as Json[]).map(toPasskey),
      rename: async (id, name) => toPasskey(await this.authed<Json>('PATCH', `/users/me/passkeys/${encodeURIComponent(id)}`, { name })),
      remove: async (id) => {
        await this.authed('DELETE', `/users/me/passkeys/${encodeURIComponent(id)}`);
      },
      signInOptions: async (o = {}) => {
        const b = await this.call<Json>('POST', '/auth/passkey/options', { json: o.email === undefined ? {} : { email: o.email } });
        return { flowId: b.flow_id as string, options: b.options as WebAuthnOptionsJSON };
      },
      signIn: (flowId, credential) =>
        this.signInWith(() =>
          this.call<TokenResponse>('POST', '/auth/passkey/verify', { json: { flow_id: flowId, credential: credential as unknown as Json } }),
        ),
      mfaOptions: async (mfaToken) =>
        (await this.call<Json>('POST', '/auth/mfa/passkey/options', { json: { mfa_token: mfaToken } })).options as WebAuthnOptionsJSON,
      verifyMfa: async (mfaToken, credential) =>
        this.start(
          await this.call<TokenResponse>('POST', '/auth/mfa/passkey/verify', { json: { mfa_token: mfaToken, credential: credential as unknown as Json } }),
        ),
    };
  }

  // ---- auth state -----------------------------------------------------------

  /** Listens to `signedIn`, `tokenRefreshed` and `signedOut`; returns the unsubscribe function. */
  onAuthStateChange(listener: AuthListener): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  /** The stored session (tokens may be expired), or null. */
  async getSession(): Promise<Session | null> {
    await this.load();
    return this.session;
  }

  /** A valid access token, refreshed first when it expires within the margin (for WebSockets and the like). */
  async getAccessToken(): Promise<string> {
    return (await this.validSession()).accessToken;
  }

  // ---- sign-in ---------------------------------------------------------------

  /** `POST /auth/register` → the new user. Does not sign in (the address may need confirming first). */
  async register(input: { email: string; password: string; firstName?: string; lastName?: string }): Promise<User> {
    const body: Json = { email: input.email, password: input.password };
    if (input.firstName !== undefined) body.first_name = input.firstName;
    if (input.lastName !== undefined) body.last_name = input.lastName;
    return toUser(await this.call<Json>('POST', '/auth/register', { json: body }));
  }

  /** Email and password, through the OAuth2 token endpoint (`POST /auth/token`, `grant_type=password`, form-encoded). */
  signIn(input: { email: string; password: string }): Promise<SignInResult> {
    return this.signInWith(() =>
      this.call<TokenResponse>('POST', '/auth/token', { form: { grant_type: 'password', username: input.email, password: input.password } }),
    );
  }

  /** `POST /auth/email-code`: mails a one-time code and a sign-in link (EMAIL_SIGN_IN_ENABLED); the same answer for every address. */
  async requestEmailCode(email: string): Promise<void> {
    await this.call('POST', '/auth/email-code', { json: { email } });
  }

  /** The emailed code, through the token endpoint (`grant_type=urn:tessera:params:oauth:grant-type:email-code`). The first sign-in creates the account. */
  signInWithEmailCode(input: { email: string; code: string }): Promise<SignInResult> {
    return this.signInWith(() =>
      this.call<TokenResponse>('POST', '/auth/token', {
        form: { grant_type: 'urn:tessera:params:oauth:grant-type:email-code', email: input.email, code: input.code },
      }),
    );
  }

  /** The token of the emailed link (an app that opens the link itself: a universal link, a deep link). */
  signInWithEmailLink(token: string): Promise<SignInResult> {
    return this.signInWith(() =>
      this.call<TokenResponse>('POST', '/auth/token', { form: { grant_type: 'urn:tessera:params:oauth:grant-type:email-code', token } }),
    );
  }

  /** The second step after `{status: 'mfa_required'}`: a 6-digit code or a recovery code. */
  async verifyMfa(input: { mfaToken: string; code: string }): Promise<SignedIn> {
    const tokens = await this.call<TokenResponse>('POST', '/auth/mfa/verify', { json: { mfa_token: input.mfaToken, code: input.code } });
    return this.start(tokens);
  }

  /**
   * Web social sign-in, step 1: the URL to send the browser to. Creates the PKCE verifier
   * (Tessera requires PKCE S256), keeps it in this client's storage until `exchangeSocialCode`
   * and returns it too (keep it yourself if the page that finishes uses another storage).
   * Tessera comes back to `redirectUri` (one of OAUTH_REDIRECT_ALLOWLIST) with `?code=…&state=…`
   * or `?error=…`. `state`: the app's own value, returned as is.
   */
  async socialAuthorizeUrl(provider: string, redirectUri: string, opts: { state?: string } = {}): Promise<SocialAuthorization> {
    const { verifier, challenge } = await createPkce();
    const pending: PendingSocialSignIn = { codeVerifier: verifier, redirectUri };
    await this.storage.set(this.pkceKey, JSON.stringify(pending));
    const q = new URLSearchParams({ redirect_uri: redirectUri });
    if (opts.state !== undefined) q.set('state', opts.state);
    q.set('code_challenge', challenge);
    q.set('code_challenge_method', 'S256');
    return { url: `${this.baseUrl}/auth/oauth/${encodeURIComponent(provider)}/authorize?${q.toString()}`, codeVerifier: verifier };
  }

  /**
   * Web social sign-in, step 2: `POST /auth/token` with `grant_type=authorization_code`, the
   * code, and the `redirectUri` and PKCE `codeVerifier` of step 1 (from this client's storage
   * unless given). The stored verifier is used once, whatever the answer.
   */
  async exchangeSocialCode(code: string, opts: { redirectUri?: string; codeVerifier?: string } = {}): Promise<SignInResult> {
    const pending = parsePending(await this.storage.get(this.pkceKey));
    await this.storage.remove(this.pkceKey);
    const codeVerifier = opts.codeVerifier ?? pending?.codeVerifier;
    const redirectUri = opts.redirectUri ?? pending?.redirectUri;
    if (codeVerifier === undefined || redirectUri === undefined) {
      throw new TesseraError(
        'pkce_verifier_missing',
        0,
        'No PKCE verifier for this code: start the sign-in with socialAuthorizeUrl (with the same storage), or pass codeVerifier and redirectUri.',
      );
    }
    const form: Record<string, string> = { grant_type: 'authorization_code', code, redirect_uri: redirectUri, code_verifier: codeVerifier };
    return this.signInWith(() => this.call<TokenResponse>('POST', '/auth/token', { form }));
  }

  /**
   * The OpenID Connect redirect flow, step 1 (authorization code + PKCE S256): the URL of Tessera's
   * authorization endpoint, with a fresh `state`, `nonce` and PKCE verifier. The result is also kept in
   * this client's storage until `handleCallback`; keep it yourself when the page (or app process) that
   * finishes has another storage, and never send `codeVerifier` anywhere else.
   */
  async createAuthorizationRequest(opts: AuthorizationOptions): Promise<AuthorizationRequest> {
    const { verifier, challenge } = await createPkce();
    const state = randomToken();
    const nonce = randomToken();
    const request: AuthorizationRequest = {
      url: buildAuthorizationUrl(this.baseUrl, opts, { state, nonce, codeChallenge: challenge }),
      clientId: opts.clientId,
      redirectUri: opts.redirectUri,
      scope: opts.scope ?? DEFAULT_SCOPE,
      state,
      nonce,
      codeVerifier: verifier,
    };
    await this.storage.set(this.requestKey, JSON.stringify(request));
    return request;
  }

  /**
   * The redirect flow, step 2: checks the callback URL (RFC 9207 `iss`, then `state`, then an `error`
   * answer, thrown as a `TesseraError` with the server's code: `access_denied`, `login_required`, …),
   * exchanges the code at the token endpoint as a public client (`client_id` + `code_verifier`),
   * checks the ID token's claims (iss, aud, azp, nonce, exp; see redirect-flow.ts for the signature),
   * and signs in. The stored request is used once, whatever the outcome.
   */
  async handleCallback(callbackUrl: string | URL, saved?: AuthorizationRequest): Promise<RedirectSignedIn> {
    const stored = await this.storage.get(this.requestKey);
    await this.storage.remove(this.requestKey);
    const request = saved ?? (stored ? (JSON.parse(stored) as AuthorizationRequest) : null);
    if (!request)
      throw new TesseraError(
        'authorization_request_missing',
        0,
        'No authorization request to finish: start with createAuthorizationRequest (same storage), or pass it.',
      );
    const code = checkCallback(callbackUrl, request, this.issuer);
    const tokens = await this.call<TokenResponse>('POST', '/auth/token', {
      form: { grant_type: 'authorization_code', code, redirect_uri: request.redirectUri, client_id: request.clientId, code_verifier: request.codeVerifier },
    });
    const openid = request.scope.split(' ').includes('openid');
    if (openid && !tokens.id_token) throw new TesseraError('id_token_invalid', 0, 'The token response has no ID token although openid was asked for.');
    const idTokenClaims = tokens.id_token
      ? checkIdToken(tokens.id_token, { issuer: this.issuer, clientId: request.clientId, nonce: request.nonce, nowMs: this.now() })
      : null;
    const signedIn = await this.start(tokens, request.clientId);
    return { ...signedIn, idToken: tokens.id_token ?? null, idTokenClaims };
  }

  /** Native social sign-in: the provider SDK's ID token or access token → `POST /auth/oauth/:provider/token`. */
  signInWithProviderToken(provider: string, credentials: ProviderCredentials): Promise<SignInResult> {
    const json: Json = {};
    if (credentials.idToken !== undefined) json.id_token = credentials.idToken;
    if (credentials.accessToken !== undefined) json.access_token = credentials.accessToken;
    if (credentials.nonce !== undefined) json.nonce = credentials.nonce;
    if (credentials.firstName !== undefined) json.first_name = credentials.firstName;
    if (credentials.lastName !== undefined) json.last_name = credentials.lastName;
    return this.signInWith(() => this.call<TokenResponse>('POST', `/auth/oauth/${encodeURIComponent(provider)}/token`, { json }));
  }

  // ---- sign-out --------------------------------------------------------------

  /**
   * Ends this session (`POST /auth/logout` with the refresh token) and forgets it locally. The local
   * session is cleared even when the server cannot be reached; the call then rejects with the network error.
   */
  async signOut(): Promise<void> {
    await this.load();
    const s = this.session;
    if (!s) return;
    try {
      if (s.refreshToken) await this.call('POST', '/auth/logout', { json: { refresh_token: s.refreshToken } });
      // No refresh token: revoking the access token (RFC 7009) ends its session just the same.
      else if (!this.expired(s))
        await this.call('POST', '/auth/revoke', {
          form: { token: s.accessToken, token_type_hint: 'access_token', ...(s.clientId ? { client_id: s.clientId } : {}) },
        });
    } finally {
      await this.end();
    }
  }

  /** Ends every session of the user (`POST /auth/logout/all`), then this one locally. */
  async signOutEverywhere(): Promise<void> {
    await this.authed('POST', '/auth/logout/all');
    await this.end();
  }

  // ---- account ---------------------------------------------------------------

  /** `GET /users/me` */
  async getUser(): Promise<User> {
    return toUser(await this.authed<Json>('GET', '/users/me'));
  }

  /** `PATCH /users/me` */
  async updateProfile(input: { firstName?: string; lastName?: string }): Promise<User> {
    const body: Json = {};
    if (input.firstName !== undefined) body.first_name = input.firstName;
    if (input.lastName !== undefined) body.last_name = input.lastName;
    return toUser(await this.authed<Json>('PATCH', '/users/me', body));
  }

  /** `POST /users/me/password`: signs out every other session; this one stays. */
  async changePassword(input: { currentPassword: string; newPassword: string }): Promise<void> {
    await this.authed('POST', '/users/me/password', { current_password: input.currentPassword, new_password: input.newPassword });
  }

  /** `POST /users/me/email`: mails a link to the new address; the address changes when it is opened. */
  async changeEmail(input: { newEmail: string; password: string }): Promise<void> {
    await this.authed('POST', '/users/me/email', { new_email: input.newEmail, password: input.password });
  }

  /** `DELETE /users/me`, then forgets the session locally. */
  async deleteAccount(password: string): Promise<void> {
    await this.authed('DELETE', '/users/me', { password });
    await this.end();
  }

  /** `POST /auth/password/forgot`: always resolves (the server never says whether the account exists). */
  async forgotPassword(email: string): Promise<void> {
    await this.call('POST', '/auth/password/forgot', { json: { email } });
  }

  /** `POST /auth/password/reset` with the emailed token: ends every session of the account. */
  async resetPassword(input: { token: string; password: string }): Promise<void> {
    await this.call('POST', '/auth/password/reset', { json: { token: input.token, password: input.password } });
  }

  /** `POST /auth/confirm-email/resend`: always resolves. */
  async resendConfirmation(email: string): Promise<void> {
    await this.call('POST', '/auth/confirm-email/resend', { json: { email } });
  }

  /** `POST /auth/confirm-email` with the emailed token (also completes an email change) → the user. */
  async confirmEmail(token: string): Promise<User> {
    return toUser(await this.call<Json>('POST', '/auth/confirm-email', { json: { token } }));
  }

  // ---- sessions --------------------------------------------------------------

  /** `GET /users/me/sessions` */
  async listSessions(): Promise<SessionInfo[]> {
    return (await this.authed<Json[]>('GET', '/users/me/sessions')).map(toSessionInfo);
  }

  /** `DELETE /users/me/sessions/:id` */
  async revokeSession(id: string): Promise<void> {
    await this.authed('DELETE', `/users/me/sessions/${encodeURIComponent(id)}`);
  }

  // ---- authenticated fetch ------------------------------------------------------

  /**
   * `fetch` with `Authorization: Bearer <access token>`, for your other services. The token is refreshed
   * first when it expires within `refreshMarginSeconds`; a 401 answer refreshes once and retries once.
   * Rejects with `TesseraNetworkError` when the network fails (the session is kept), and with the refresh's
   * `TesseraError` (`invalid_grant`) when the session has ended (after a `signedOut` event).
   * Send bodies that can be sent twice (strings, Blob, FormData, URLSearchParams), not streams.
   */
  fetch = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const session = await this.validSession();
    const retryInput = isRequest(input) ? input.clone() : input;
    const res = await this.send(input, this.withBearer(input, init, session.accessToken));
    if (res.status !== 401) return res;
    const next = await this.refreshAfter(session.accessToken);
    // No refresh token to try: the service's own 401 is the answer.
    if (!next) return res;
    try {
      await res.body?.cancel();
    } catch {
      // nothing to free
    }
    return this.send(retryInput, this.withBearer(retryInput, init, next.accessToken));
  };

  /**
   * Refreshes the tokens now. Single-flight: concurrent callers share one `POST /auth/refresh`.
   * If another client on the same storage already rotated the refresh token, its tokens are adopted instead.
   */
  refreshSession(): Promise<Session> {
    this.refreshing ??= this.runRefresh().finally(() => {
      this.refreshing = null;
    });
    return this.refreshing;
  }

  // ---- internals ---------------------------------------------------------------

  private expiresSoon(s: Session): boolean {
    return s.expiresAt !== null && s.expiresAt - this.now() <= this.marginMs;
  }

  private expired(s: Session): boolean {
    return s.expiresAt !== null && s.expiresAt <= this.now();
  }

  private async validSession(): Promise<Session> {
    await this.load();
    const s = this.session;
    if (!s) throw notSignedIn();
    // Without a refresh token the access token is used to its end (nothing could replace it sooner).
    if (!s.refreshToken && !this.refreshing) return this.expired(s) ? this.refreshSession() : s;
    return this.expiresSoon(s) || this.refreshing ? this.refreshSession() : s;
  }

  /**
   * After a 401 with `failedAccess`: join the refresh in flight, use a token that replaced it meanwhile, or
   * refresh; null when there is nothing to retry with (a session without refresh token whose token still runs).
   */
  private async refreshAfter(failedAccess: string): Promise<Session | null> {
    if (this.refreshing) return this.refreshing;
    if (this.session && this.session.accessToken !== failedAccess) return this.session;
    if (this.session && !this.session.refreshToken && !this.expired(this.session)) return null;
    return this.refreshSession();
  }

  private async runRefresh(): Promise<Session> {
    await this.load();
    const held = this.session;
    if (!held) throw notSignedIn();
    // Another client on this storage ("another tab") may have rotated the tokens, or signed out.
    const stored = await this.readStorage();
    if (!stored) {
      await this.end();
      throw notSignedIn();
    }
    let current = held;
    if (stored.refreshToken !== held.refreshToken || stored.accessToken !== held.accessToken) {
      current = this.session = stored;
      if (!this.expiresSoon(stored)) {
        this.emit('tokenRefreshed');
        return stored;
      }
    }
    if (!current.refreshToken) {
      // Nothing to refresh with (a third-party client without offline_access): the session lasts as
      // long as its access token. Still valid: keep it; over: signed out, as a refused refresh would be.
      if (!this.expired(current)) return current;
      await this.end();
      throw notSignedIn();
    }
    const refreshToken = current.refreshToken;
    let tokens: TokenResponse;
    try {
      // A refresh token works only for its client: a redirect-flow session refreshes as that (public) client.
      tokens = current.clientId
        ? await this.call<TokenResponse>('POST', '/auth/token', {
            form: { grant_type: 'refresh_token', refresh_token: refreshToken, client_id: current.clientId },
          })
        : await this.call<TokenResponse>('POST', '/auth/refresh', { json: { refresh_token: refreshToken } });
    } catch (err) {
      if (err instanceof TesseraError && err.code === 'invalid_grant') {
        // Lost a race with another client that stored newer tokens meanwhile? Use those.
        const again = await this.readStorage();
        if (again && again.refreshToken !== refreshToken && !this.expiresSoon(again)) {
          this.session = again;
          this.emit('tokenRefreshed');
          return again;
        }
        await this.end();
      }
      throw err;
    }
    const next = this.sessionFrom(tokens, current.clientId);
    await this.save(next);
    this.emit('tokenRefreshed');
    return next;
  }

  private load(): Promise<void> {
    this.loading ??= this.readStorage().then((s) => {
      this.session ??= s;
    });
    return this.loading;
  }

  private async readStorage(): Promise<Session | null> {
    return parseStored(await this.storage.get(this.key));
  }

  private async save(s: Session): Promise<void> {
    await this.load();
    this.session = s;
    await this.storage.set(this.key, JSON.stringify(s));
  }

  /** Forgets the session (memory and storage) and emits `signedOut` if there was one. */
  private async end(): Promise<void> {
    await this.load();
    const had = this.session !== null;
    this.session = null;
    await this.storage.remove(this.key);
    if (had) this.emit('signedOut');
  }

  private emit(event: AuthEvent): void {
    for (const listener of [...this.listeners]) {
      try {
        listener(event, this.session);
      } catch {
        // a listener's error is its own business
      }
    }
  }

  private sessionFrom(t: TokenResponse, clientId?: string): Session {
    const receivedAt = this.now();
    const claims = decodeJwtPayload(t.access_token);
    const exp = typeof claims?.exp === 'number' ? claims.exp : null;
    const iat = typeof claims?.iat === 'number' ? claims.iat : null;
    // The token's lifetime counted on our own clock: immune to a device clock that is off.
    const lifetimeMs = exp !== null && iat !== null ? (exp - iat) * 1000 : typeof t.expires_in === 'number' ? t.expires_in * 1000 : null;
    const amr = Array.isArray(claims?.amr) ? (claims.amr as unknown[]).filter((a): a is string => typeof a === 'string') : [];
    return {
      accessToken: t.access_token,
      ...(t.refresh_token ? { refreshToken: t.refresh_token } : {}),
      expiresAt: lifetimeMs !== null ? receivedAt + lifetimeMs : exp !== null ? exp * 1000 : null,
      userId: typeof claims?.sub === 'string' ? claims.sub : null,
      amr,
      ...(clientId ? { clientId } : {}),
    };
  }

  private async start(tokens: TokenResponse, clientId?: string): Promise<SignedIn> {
    const session = this.sessionFrom(tokens, clientId);
    await this.save(session);
    this.emit('signedIn');
    return { status: 'signed_in', session };
  }

  private async signInWith(request: () => Promise<TokenResponse>): Promise<SignInResult> {
    let tokens: TokenResponse;
    try {
      tokens = await request();
    } catch (err) {
      if (err instanceof TesseraError && err.code === 'mfa_required') {
        const b = err.body as { mfa_token?: unknown; expires_in?: unknown; methods?: unknown };
        if (typeof b.mfa_token === 'string')
          return {
            status: 'mfa_required',
            mfaToken: b.mfa_token,
            expiresIn: typeof b.expires_in === 'number' ? b.expires_in : 300,
            methods: Array.isArray(b.methods) ? (b.methods as string[]) : ['totp'],
          };
      }
      throw err;
    }
    return this.start(tokens);
  }

  private withBearer(input: string | URL | Request, init: RequestInit | undefined, token: string): RequestInit {
    const headers = new Headers(init?.headers ?? (isRequest(input) ? input.headers : undefined));
    headers.set('authorization', `Bearer ${token}`);
    return { ...init, headers };
  }

  private async send(input: string | URL | Request, init: RequestInit): Promise<Response> {
    try {
      return await this.fetchImpl(input, init);
    } catch (err) {
      if (err && typeof err === 'object' && (err as { name?: unknown }).name === 'AbortError') throw err;
      throw new TesseraNetworkError(`Network request failed: ${err instanceof Error ? err.message : String(err)}`, err);
    }
  }

  private async parse<T>(res: Response): Promise<T> {
    const text = await res.text();
    let body: unknown = null;
    if (text) {
      try {
        body = JSON.parse(text);
      } catch {
        body = text;
      }
    }
    if (!res.ok) throw errorFromBody(res.status, body);
    return body as T;
  }

  /** An unauthenticated call to Tessera. */
  private async call<T = unknown>(method: string, path: string, opts: { json?: Json; form?: Record<string, string> } = {}): Promise<T> {
    const headers: Record<string, string> = { accept: 'application/json' };
    let body: string | undefined;
    if (opts.form) {
      headers['content-type'] = 'application/x-www-form-urlencoded';
      body = formEncode(opts.form);
    } else if (opts.json) {
      headers['content-type'] = 'application/json';
      body = JSON.stringify(opts.json);
    }
    return this.parse<T>(await this.send(this.baseUrl + path, { method, headers, ...(body === undefined ? {} : { body }) }));
  }

  /** A call to Tessera with the access token (refresh and retry included). */
  private async authed<T = unknown>(method: string, path: string, json?: Json): Promise<T> {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (json) headers['content-type'] = 'application/json';
    const res = await this.fetch(this.baseUrl + path, { method, headers, ...(json ? { body: JSON.stringify(json) } : {}) });
    // Tessera itself refused a token that no refresh can replace: that session is over.
    if (res.status === 401 && this.session && !this.session.refreshToken) await this.end();
    return this.parse<T>(res);
  }
}

/** Creates a client. Nothing is read from storage until the first call. */
export function createClient(options: ClientOptions): TesseraClient {
  return new TesseraClient(options);
}
