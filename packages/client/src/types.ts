import type { TokenStorage } from './storage.js';

/** The `fetch` the SDK calls: the global one by default. */
export type FetchLike = (input: string | URL | Request, init?: RequestInit) => Promise<Response>;

export interface ClientOptions {
  /** Tessera's base URL, e.g. `https://auth.example.com` (a trailing slash is ignored). */
  baseUrl: string;
  /** Where the session is kept. Default: `memoryStorage()` (nothing survives a reload). */
  storage?: TokenStorage;
  /** A `fetch` of your own (instrumentation, tests, an older React Native polyfill). Default: `globalThis.fetch`. */
  fetch?: FetchLike;
  /** Refresh the access token when it expires within this many seconds. Default 30. */
  refreshMarginSeconds?: number;
  /** The client's clock in milliseconds since the epoch. Default `Date.now`. */
  now?: () => number;
  /** The storage key. Default `tessera.session`; use another to keep two sessions apart in one storage. */
  storageKey?: string;
  /**
   * The issuer the redirect flow expects in `iss` (RFC 9207) and in ID tokens: Tessera's JWT_ISSUER.
   * Default: `baseUrl` (Tessera's default issuer is its PUBLIC_URL).
   */
  issuer?: string;
}

/** The tokens of the signed-in session, as stored. */
export interface Session {
  accessToken: string;
  /**
   * Absent when Tessera gave none: a third-party client's session without the `offline_access`
   * scope. Such a session cannot be refreshed: it lasts as long as its access token, then the SDK
   * clears it (`signedOut`) and calls reject with `not_signed_in`: sign in again (the redirect flow,
   * with `prompt: 'none'` for a silent sign-in while the browser's Tessera session lasts).
   */
  refreshToken?: string;
  /**
   * When the access token expires, in ms on the client's clock (`now()`): the token's own lifetime
   * (`exp - iat`, or the server's `expires_in`) counted from when the client received it, so a wrong
   * device clock does not matter. Null when unknown (then only a 401 triggers a refresh).
   */
  expiresAt: number | null;
  /** `sub` of the access token: the user's id. */
  userId: string | null;
  /** How the session was signed in: `["pwd"]`, or `["pwd","otp"]` after a second factor. */
  amr: string[];
  /**
   * The registered client the tokens were issued to (the redirect flow); refreshes name it, since a
   * refresh token works only for its client. Absent for Tessera's own sign-in (the implicit client).
   */
  clientId?: string;
}

/** What `createAuthorizationRequest` gives: the URL to open, and everything `handleCallback` must get back. */
export interface AuthorizationRequest {
  /** Open this in the browser (web: `location.assign`; native: the system browser / an auth session). */
  url: string;
  clientId: string;
  redirectUri: string;
  /** The scopes asked for (space-separated). */
  scope: string;
  /** Sent as `state`; the callback must bring it back (CSRF). */
  state: string;
  /** Sent as `nonce`; the ID token must carry it (replay). */
  nonce: string;
  /** The PKCE (S256) verifier, sent with the code: keep it secret until then. */
  codeVerifier: string;
}

/** `handleCallback`'s result: signed in, with the ID token and its (checked) claims when `openid` was asked for. */
export interface RedirectSignedIn extends SignedIn {
  idToken: string | null;
  idTokenClaims: Record<string, unknown> | null;
}

export interface SignedIn {
  status: 'signed_in';
  session: Session;
}

export interface MfaRequired {
  status: 'mfa_required';
  /** Send it with a code to `verifyMfa`. Single use. */
  mfaToken: string;
  /** Seconds the mfaToken stays valid (5 min by default). */
  expiresIn: number;
  /** The second steps the account can take: `totp` (`verifyMfa`), `passkey` (`passkeys.mfaOptions` + `passkeys.verifyMfa`). */
  methods: string[];
}

/** Step 1 of a web social sign-in: where to send the browser, and the PKCE verifier `exchangeSocialCode` will send. */
export interface SocialAuthorization {
  url: string;
  /** Also kept in the client's storage until `exchangeSocialCode`; pass it there yourself when the finishing page has another storage. */
  codeVerifier: string;
}

/** What a sign-in gives: tokens, or the second step. Narrow on `status`. */
export type SignInResult = SignedIn | MfaRequired;

export interface User {
  id: string;
  email: string;
  emailVerified: boolean;
  firstName: string | null;
  lastName: string | null;
  hasPassword: boolean;
  createdAt: string;
  updatedAt: string;
}

export interface SessionInfo {
  id: string;
  /** The session of this client. */
  current: boolean;
  createdAt: string;
  lastRefreshedAt: string;
  expiresAt: string;
  userAgent: string | null;
  ip: string | null;
}

export interface MfaStatus {
  totpEnabled: boolean;
  recoveryCodesRemaining: number;
}

export interface TotpEnrolment {
  /** Base32, for typing into the app by hand. */
  secret: string;
  /** `otpauth://…`: opens an authenticator app on the same device. */
  otpauthUri: string;
  /** `data:image/png;base64,…`: the QR code to scan. */
  qrCode: string;
}

export type AuthEvent = 'signedIn' | 'tokenRefreshed' | 'signedOut';
/** Called with the event and the session after it (null after `signedOut`). */
export type AuthListener = (event: AuthEvent, session: Session | null) => void;

/** What every native provider sign-in may add: the raw nonce given to the SDK, and the name (Apple tells the app once). */
interface ProviderExtras {
  /** The raw nonce the app gave the provider SDK (Apple puts its SHA-256 in the token; send the raw value). */
  nonce?: string;
  firstName?: string;
  lastName?: string;
}

/** `{idToken}` (Google, Apple, OpenID providers) or `{accessToken}` (GitHub, Facebook) from a native provider SDK. */
export type ProviderCredentials = ({ idToken: string; accessToken?: string } | { idToken?: string; accessToken: string }) & ProviderExtras;

/**
 * WebAuthn options as JSON, exactly as Tessera sends them: hand them to `@simplewebauthn/browser`
 * (`startRegistration({ optionsJSON })`, `startAuthentication({ optionsJSON })`),
 * `PublicKeyCredential.parseCreationOptionsFromJSON` / `parseRequestOptionsFromJSON`, or
 * `react-native-passkey` (`Passkey.create`, `Passkey.get`).
 */
export type WebAuthnOptionsJSON = Record<string, unknown>;

/** A PublicKeyCredential as JSON (`credential.toJSON()`, or what those libraries return). */
export interface WebAuthnCredentialJSON {
  id: string;
  rawId: string;
  type: 'public-key';
  response: Record<string, unknown>;
  clientExtensionResults?: Record<string, unknown>;
  authenticatorAttachment?: string | null;
}

export interface Passkey {
  id: string;
  name: string;
  /** `multi_device`: a synced passkey (`amr` swk); `single_device`: bound to its authenticator (`amr` hwk). */
  deviceType: 'single_device' | 'multi_device';
  backedUp: boolean;
  transports: string[];
  createdAt: string;
  lastUsedAt: string | null;
}

/** Step 1 of a passkey sign-in: the options for the authenticator, and the flow id step 2 sends back. */
export interface PasskeySignInOptions {
  flowId: string;
  options: WebAuthnOptionsJSON;
}
