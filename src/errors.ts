/**
 * The error catalogue: every error a client can see, with a stable snake_case
 * code. Codes never change once released; docs/errors.md lists them and a
 * test keeps the two in sync.
 */
export const errorCatalogue = {
  // generic HTTP
  bad_request: { status: 400, message: 'The request is malformed.' },
  validation_failed: { status: 422, message: 'The request is invalid.' },
  invalid_json: { status: 400, message: 'The request body is not valid JSON.' },
  payload_too_large: { status: 413, message: 'The request body is too large.' },
  headers_too_large: { status: 431, message: 'The request headers are too large.' },
  request_timeout: { status: 408, message: 'The request was not received in time.' },
  unsupported_media_type: { status: 415, message: 'The request content type is not supported; send application/json or application/x-www-form-urlencoded.' },
  not_found: { status: 404, message: 'No such resource.' },
  method_not_allowed: { status: 405, message: 'This method is not allowed on this path (see Allow).' },
  internal_error: { status: 500, message: 'Something went wrong on our side.' },
  service_unavailable: { status: 503, message: 'The service is temporarily unavailable; retry shortly.' },

  // authentication of API calls
  unauthorized: { status: 401, message: 'A valid access token is required.' },
  invalid_token: { status: 401, message: 'The access token is invalid or expired.' },
  session_revoked: { status: 401, message: 'This session has ended; sign in again.' },
  /** RFC 6750 §3.1 (userinfo): the access token was not granted the scope the resource needs. */
  insufficient_scope: { status: 403, message: 'The access token was not granted the scope this needs (openid).' },

  // accounts
  email_already_registered: { status: 409, message: 'An account with this email already exists.' },
  invalid_email: { status: 422, message: 'The email address is not valid.' },
  password_too_short: { status: 422, message: 'The password must be at least 8 characters long.' },
  password_too_long: { status: 422, message: 'The password must be at most 72 bytes in UTF-8.' },
  password_too_common: { status: 422, message: 'This password is too common; choose another one.' },
  invalid_password: { status: 403, message: 'The password is incorrect.' },
  password_unchanged: { status: 422, message: 'The new password must differ from the current one.' },
  user_not_found: { status: 404, message: 'No such user.' },
  email_unchanged: { status: 422, message: 'The new email address is the current one.' },

  // links sent by email (confirmation, password reset, email change)
  email_token_invalid: { status: 400, message: 'This link is not valid. Request a new one.' },
  email_token_expired: { status: 400, message: 'This link has expired. Request a new one.' },
  email_token_used: { status: 400, message: 'This link was already used or replaced by a newer one. Request a new one if you still need it.' },

  // sessions
  session_not_found: { status: 404, message: 'No such session.' },
  insufficient_user_authentication: {
    status: 403,
    message: 'This action needs a sign-in with a second factor (amr "otp"); sign in again with your authenticator code.',
  },

  // roles and administration
  forbidden: { status: 403, message: 'You do not have the permission to do this.' },
  role_not_found: { status: 404, message: 'No such role.' },
  role_exists: { status: 409, message: 'A role with this name already exists.' },
  role_builtin: { status: 409, message: 'Built-in roles (admin, user) cannot be deleted.' },
  cannot_modify_self: { status: 409, message: 'Administrators cannot disable or delete their own account, or give themselves a role, here.' },
  last_admin: { status: 409, message: 'This is the last enabled administrator; make someone else admin first.' },

  // multi-factor authentication
  reauthentication_required: { status: 403, message: 'Confirm your password (or sign in again) to do this.' },
  mfa_already_enabled: { status: 409, message: 'Two-factor authentication is already on.' },
  mfa_not_enabled: { status: 409, message: 'Two-factor authentication is not on.' },
  mfa_enrolment_not_started: { status: 409, message: 'Start the enrolment first (POST /users/me/mfa/totp).' },
  invalid_mfa_code: { status: 400, message: 'The code is not valid.' },
  mfa_token_invalid: { status: 400, message: 'The sign-in step has expired or was already completed; sign in again.' },
  too_many_attempts: { status: 429, message: 'Too many wrong codes; wait before trying again.' },

  // third-party sign-in (README "Third-party sign-in")
  provider_not_found: { status: 404, message: 'No such sign-in provider (or it is not enabled).' },
  redirect_uri_not_allowed: { status: 400, message: 'redirect_uri is not one of the allowed redirect URLs (OAUTH_REDIRECT_ALLOWLIST).' },
  pkce_required: {
    status: 400,
    message:
      'PKCE is required: send code_challenge (the S256 hash of your code_verifier) with code_challenge_method=S256, and the code_verifier with the code.',
  },
  oauth_state_invalid: {
    status: 400,
    message: 'This sign-in attempt is unknown, expired, or was started in another browser. Start the sign-in again from the app.',
  },
  provider_unavailable: { status: 503, message: 'The sign-in provider cannot be reached; retry shortly.' },
  provider_token_invalid: { status: 400, message: 'The provider token is not valid.' },
  provider_email_missing: { status: 422, message: 'The provider did not share a usable email address.' },
  identity_not_linked: {
    status: 409,
    message:
      'An account with this email already exists and was not connected to this provider. Sign in with your password (or reset it), then connect the provider from your account.',
  },
  identity_already_linked: { status: 409, message: 'This provider account is already connected to another user.' },
  provider_already_linked: { status: 409, message: 'Another account of this provider is already connected; disconnect it first.' },
  identity_not_found: { status: 404, message: 'This provider is not connected to your account.' },
  last_sign_in_method: { status: 409, message: 'This is your last way to sign in; set a password (or connect another provider) first.' },

  // passkeys and sign-in by email (docs/passkeys.md)
  passkey_not_found: { status: 404, message: 'No such passkey.' },
  passkey_already_registered: { status: 409, message: 'This passkey is already registered.' },
  passkey_challenge_invalid: { status: 400, message: 'This passkey request has expired or was already used; start again.' },
  passkey_invalid: { status: 400, message: 'The passkey could not be verified.' },
  passkey_user_verification_required: { status: 400, message: 'This passkey did not verify you (PIN or biometrics); use one that does.' },
  email_sign_in_disabled: { status: 403, message: 'Sign-in by email code is turned off on this server (EMAIL_SIGN_IN_ENABLED).' },

  // OAuth clients (docs/clients.md)
  client_not_found: { status: 404, message: 'No such client.' },
  client_has_no_secret: { status: 409, message: 'This client does not authenticate with a secret (it is public, or uses private_key_jwt).' },

  // the OpenID Provider's hosted pages (docs/openid-provider.md): shown as error pages, never sent to an unchecked redirect URI
  unknown_client: { status: 400, message: 'No application is registered with this client_id.' },
  redirect_uri_not_registered: { status: 400, message: 'The redirect_uri is not one of the URIs registered for this application.' },
  authorization_request_expired: {
    status: 400,
    message: 'This sign-in has expired, was already completed, or was started in another browser. Go back to the application and start again.',
  },
  invalid_request_uri: {
    status: 400,
    message: 'The request_uri is unknown, expired, already used, or was pushed by another client. Go back to the application and start again.',
  },
  csrf_token_invalid: { status: 403, message: 'This form was not sent from this browser’s own page; start again.' },
  logout_request_invalid: { status: 400, message: 'The sign-out request is not valid (id_token_hint, client_id or post_logout_redirect_uri).' },
  consent_not_found: { status: 404, message: 'You have not allowed this application.' },

  // abuse protection (docs/security.md)
  rate_limited: { status: 429, message: 'Too many requests; wait before trying again (see Retry-After).' },
  sign_in_throttled: { status: 429, message: 'Too many failed sign-ins; wait before trying again (see Retry-After).' },
} as const satisfies Record<string, { status: number; message: string }>;

export type ErrorCode = keyof typeof errorCatalogue;

export interface FieldError {
  field: string;
  message: string;
}

/** An error the client may see: a catalogue code, its status, and a safe message. */
export class AppError extends Error {
  readonly status: number;
  constructor(
    readonly code: ErrorCode,
    message?: string,
    readonly details?: FieldError[],
    /** Sent as `Retry-After` (429). */
    readonly retryAfterSeconds?: number,
  ) {
    super(message ?? errorCatalogue[code].message);
    this.name = 'AppError';
    this.status = errorCatalogue[code].status;
  }
}

/**
 * Errors of the OAuth2 token endpoint (RFC 6749 §5.2). They render as
 * `{error, error_description}` instead of the catalogue shape.
 */
export const oauthErrorCatalogue = {
  invalid_request: 400,
  invalid_grant: 400,
  unsupported_grant_type: 400,
  invalid_client: 401,
  /** RFC 6749 §5.2: the client authenticated but is not allowed this grant type. */
  unauthorized_client: 400,
  invalid_scope: 400,
  /** RFC 7009 §2.2.1: token revocation of a token type Tessera does not revoke (an ID token). */
  unsupported_token_type: 400,
  /** Not in RFC 6749: the right password of an account whose email is not confirmed yet (REQUIRE_EMAIL_VERIFICATION). */
  email_not_verified: 403,
  /** Not in RFC 6749: the right password of an account with MFA; the body carries `mfa_token` and `expires_in`. */
  mfa_required: 403,
} as const;

export type OAuthErrorCode = keyof typeof oauthErrorCatalogue;

export class OAuthError extends Error {
  readonly status: number;
  constructor(
    readonly code: OAuthErrorCode,
    readonly description: string,
    /** More members of the body (`mfa_token`, `expires_in` and `methods` of `mfa_required`). */
    readonly extra?: Record<string, string | number | string[]>,
  ) {
    super(description);
    this.name = 'OAuthError';
    this.status = oauthErrorCatalogue[code];
  }
}
