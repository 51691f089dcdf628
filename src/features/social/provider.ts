/**
 * One interface for every third-party sign-in provider (docs/social-sign-in.md). Each
 * provider lives in its own file under `providers/` and is built from
 * configuration only when it is configured; every endpoint URL it calls can be
 * overridden (that is how tests and company IdPs reach it).
 *
 * A provider answers one question: "who is this, according to the provider?"
 * (a verified `ProviderProfile`), or throws `ProviderError`. What to do with the
 * answer (sign in, link, create) belongs to the social service, never here.
 */

/** What a provider vouches for after it has verified a code or a token. */
export interface ProviderProfile {
  /** The provider's stable, never-reassigned user id (`sub`, GitHub numeric id, Facebook app-scoped id). */
  subject: string;
  /** As the provider gives it (trimmed); null when it gave none. */
  email: string | null;
  /** True only when the provider asserts the address is verified (and, for linking, stable: see `Provider.emailLinking`). */
  emailVerified: boolean;
  firstName: string | null;
  lastName: string | null;
}

/** The parameters Tessera generated for one web sign-in attempt. */
export interface AuthorizationRequest {
  state: string;
  /** PKCE S256 challenge of the verifier kept server-side. */
  codeChallenge: string;
  /** OIDC nonce (ignored by plain OAuth2 providers). */
  nonce: string;
  /** Tessera's own callback URL for this provider (`${PUBLIC_URL}/auth/oauth/:provider/callback`). */
  callbackUrl: string;
}

export interface CodeExchange {
  code: string;
  codeVerifier: string;
  nonce: string;
  callbackUrl: string;
  /**
   * Extra parameters of the callback (Apple posts `user`, a JSON string with the
   * name, only on the first authorisation); providers ignore what they do not know.
   */
  callbackParams: Record<string, string>;
}

/** What a native app (React Native SDK) hands over. */
export interface NativeToken {
  idToken?: string | undefined;
  accessToken?: string | undefined;
  /** The raw nonce the app gave the provider SDK (Apple hashes it: the token carries SHA-256(nonce)). */
  nonce?: string | undefined;
  /** Apple's first-login name, sent by the app as the SDK gives it (`fullName`). */
  firstName?: string | undefined;
  lastName?: string | undefined;
}

export interface Provider {
  /** Path segment and identity key: `google`, `apple`, `github`, `facebook`, or a configured generic name. */
  readonly id: string;
  /** Shown by GET /auth/providers. */
  readonly displayName: string;
  /** How the provider returns to the callback: a GET with a query string, or Apple's `form_post`. */
  readonly responseMode: 'query' | 'form_post';
  /**
   * Whether a verified email from this provider may link to an existing account.
   * False for providers whose addresses can change without re-verification.
   */
  readonly emailLinking: boolean;
  /** Which native inputs it accepts (POST /auth/oauth/:provider/token). */
  readonly nativeInput: 'id_token' | 'access_token';
  /** The provider's authorization endpoint with every parameter set. */
  authorizationUrl(request: AuthorizationRequest): Promise<URL>;
  /** Web flow: exchanges the code (with the PKCE verifier) and returns the verified profile. */
  exchangeCode(exchange: CodeExchange): Promise<ProviderProfile>;
  /** Native flow: verifies a token the app got from the provider's SDK. */
  verifyNativeToken(token: NativeToken): Promise<ProviderProfile>;
}

/**
 * A provider said no, or answered something unusable. `reason` is a short
 * stable word for logs and audit (`id_token_invalid`, `token_exchange_failed`,
 * `wrong_app`, `no_email`, `provider_unreachable`, …); it never carries a token.
 */
export class ProviderError extends Error {
  constructor(
    readonly reason: string,
    message: string,
    /** true: the provider could not be reached or failed (5xx, timeout) — not the user's fault. */
    readonly unavailable = false,
  ) {
    super(message);
    this.name = 'ProviderError';
  }
}
