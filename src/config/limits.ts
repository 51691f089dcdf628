/**
 * Request limits per endpoint (RATE_LIMIT_*) and the brute-force protection of
 * sign-ins (BRUTE_FORCE_*). docs/security.md explains each.
 */
import type { Rate, Reader } from './reader.js';

/** Every request limit: its variable and default (count/duration, or `off`). docs/security.md explains each. */
export const RATE_LIMITS = {
  sign_in_ip: ['RATE_LIMIT_SIGN_IN_IP', '30/5m'],
  sign_in_account: ['RATE_LIMIT_SIGN_IN_ACCOUNT', '10/5m'],
  token_ip: ['RATE_LIMIT_TOKEN_IP', '300/5m'],
  code_exchange_ip: ['RATE_LIMIT_CODE_EXCHANGE_IP', '30/5m'],
  refresh_ip: ['RATE_LIMIT_REFRESH_IP', '300/5m'],
  register_ip: ['RATE_LIMIT_REGISTER_IP', '30/1h'],
  register_account: ['RATE_LIMIT_REGISTER_ACCOUNT', '5/1h'],
  forgot_password_ip: ['RATE_LIMIT_FORGOT_PASSWORD_IP', '20/1h'],
  forgot_password_account: ['RATE_LIMIT_FORGOT_PASSWORD_ACCOUNT', '5/1h'],
  resend_confirmation_ip: ['RATE_LIMIT_RESEND_CONFIRMATION_IP', '20/1h'],
  resend_confirmation_account: ['RATE_LIMIT_RESEND_CONFIRMATION_ACCOUNT', '5/1h'],
  mfa_verify_ip: ['RATE_LIMIT_MFA_VERIFY_IP', '30/5m'],
  social_authorize_ip: ['RATE_LIMIT_SOCIAL_AUTHORIZE_IP', '60/5m'],
  email_change_account: ['RATE_LIMIT_EMAIL_CHANGE_ACCOUNT', '5/1h'],
  email_code_ip: ['RATE_LIMIT_EMAIL_CODE_IP', '20/1h'],
  email_code_account: ['RATE_LIMIT_EMAIL_CODE_ACCOUNT', '5/1h'],
  passkey_ip: ['RATE_LIMIT_PASSKEY_IP', '60/5m'],
  revoke_ip: ['RATE_LIMIT_REVOKE_IP', '300/5m'],
  userinfo_ip: ['RATE_LIMIT_USERINFO_IP', '600/5m'],
} as const satisfies Record<string, readonly [string, string]>;

export type RateLimitName = keyof typeof RATE_LIMITS;

/** A request's parsed body, as the route rules below read it. */
export type RequestBody = Record<string, unknown> | null | undefined;
const field = (body: RequestBody, name: string): string => {
  const v = body?.[name];
  return typeof v === 'string' ? v : '';
};

/**
 * Which limits a request counts against, by route. Per-IP limits count the
 * client address (`request.ip`: the socket, or the forwarded chain only from
 * proxies named in TRUST_PROXY); per-account limits count the submitted email.
 */
export const RATE_LIMIT_RULES: Record<string, (body: RequestBody) => RateLimitName[]> = {
  'POST /auth/token': (body) => {
    switch (field(body, 'grant_type')) {
      case 'password':
        return ['token_ip', 'sign_in_ip', 'sign_in_account'];
      case 'refresh_token':
        return ['token_ip', 'refresh_ip'];
      // A guess at an emailed code: a sign-in (the address's counter is the brute-force guard's, email-sign-in/service.ts).
      case 'urn:tessera:params:oauth:grant-type:email-code':
        return ['token_ip', 'sign_in_ip'];
      default:
        // authorization_code (the one-time code of the web social sign-in) and any other grant.
        return ['token_ip', 'code_exchange_ip'];
    }
  },
  'POST /auth/login': () => ['sign_in_ip', 'sign_in_account'],
  // Native third-party sign-in (each one calls the provider): a sign-in from this IP too.
  'POST /auth/oauth/:provider/token': () => ['sign_in_ip'],
  'POST /auth/refresh': () => ['refresh_ip'],
  'POST /auth/register': () => ['register_ip', 'register_account'],
  'POST /auth/password/forgot': () => ['forgot_password_ip', 'forgot_password_account'],
  'POST /auth/confirm-email/resend': () => ['resend_confirmation_ip', 'resend_confirmation_account'],
  'POST /auth/mfa/verify': () => ['mfa_verify_ip'],
  // The hosted pages of the OpenID Provider: the same sign-in and second-step limits as the API.
  'POST /auth/ui/sign-in': () => ['sign_in_ip', 'sign_in_account'],
  'POST /auth/ui/mfa': () => ['mfa_verify_ip'],
  'POST /auth/ui/sign-up': () => ['register_ip', 'register_account'],
  // Each request mails the address (an account or not): bounded per IP and per address.
  'POST /auth/email-code': () => ['email_code_ip', 'email_code_account'],
  // Each options answer stores a challenge until it expires; verify and the link page's POST are sign-ins.
  'POST /auth/passkey/options': () => ['passkey_ip'],
  'POST /auth/passkey/verify': () => ['passkey_ip'],
  'POST /auth/email-code/link': () => ['passkey_ip'],
  // The same on the hosted sign-in page (features/oidc/passwordless-routes.ts); a guessed code is a sign-in.
  'POST /auth/ui/passkey/options': () => ['passkey_ip'],
  'POST /auth/ui/passkey': () => ['passkey_ip'],
  'POST /auth/ui/email-code': () => ['email_code_ip', 'email_code_account'],
  'POST /auth/ui/email-code/verify': () => ['sign_in_ip'],
  'POST /auth/ui/email-link': () => ['passkey_ip'],
  // Each start of a web sign-in writes a state row (purged after expiry): bounded per IP.
  'GET /auth/oauth/:provider/authorize': () => ['social_authorize_ip'],
  // So does each authorization request of the OpenID Provider (a pending request row).
  'GET /auth/authorize': () => ['social_authorize_ip'],
  'GET /auth/ui/social/:provider': () => ['social_authorize_ip'],
  // And each pushed authorization request (RFC 9126: a row for 60 s).
  'POST /auth/par': () => ['social_authorize_ip'],
  // The OpenID Provider's token-side endpoints: each verifies a client or a token and reads the
  // database; generous, since a relying party's server calls them for all of its users from one address.
  'POST /auth/revoke': () => ['revoke_ip'],
  'GET /auth/userinfo': () => ['userinfo_ip'],
  'POST /auth/userinfo': () => ['userinfo_ip'],
};

/**
 * The body field that names the account of a route's per-account limits: the
 * one the route actually authenticates (or acts) with, `email` unless listed.
 * Never another field the client adds: a decoy `email` on a form grant must
 * not move the count of its `username` elsewhere.
 */
export const ACCOUNT_FIELDS: Record<string, string> = {
  'POST /auth/token': 'username',
};

/**
 * Limits of signed-in requests, counted per account (the verified access token's user),
 * so they run after the route's own guards (`authenticate`) instead of before them.
 */
export const SIGNED_IN_RATE_LIMIT_RULES: Record<string, RateLimitName[]> = {
  // Each request mails the current address, and the new one (or its owner): bounded per account.
  'POST /users/me/email': ['email_change_account'],
};
/**
 * Limits a known client of the address skips (features/accounts/sign-in-guard.ts): its own
 * brute-force counter, reserved before each password is hashed, already slows
 * its guesses, so a stranger flooding the address cannot refuse the owner at
 * a known client.
 */
export const KNOWN_CLIENT_SKIPS = new Set<RateLimitName>(['sign_in_account']);

/** The limits of the brute-force protection (features/accounts/sign-in-guard.ts), as 429s and metrics name them. */
export const BRUTE_FORCE_LIMITS = { delay: 'sign_in_delay', ipFailures: 'sign_in_failures_ip' } as const;

export interface RateLimitConfig {
  /** RATE_LIMIT_ENABLED: the request limits below. */
  enabled: boolean;
  limits: Record<RateLimitName, Rate | null>;
  bruteForce: {
    /** BRUTE_FORCE_ENABLED: growing delays per account and the per-IP failure throttle. */
    enabled: boolean;
    /** Failed passwords for one address before the first delay. */
    freeAttempts: number;
    /** The first delay; each further failure doubles it, up to maxDelaySeconds. */
    baseDelaySeconds: number;
    maxDelaySeconds: number;
    /** An address's failures are forgotten this long after its last one. */
    windowSeconds: number;
    /** A client IP that signed in to an address is judged by its own counter for this long after its last success; 0 = off. */
    knownClientSeconds: number;
    /** Failed sign-ins from one IP (any accounts) before that IP must wait out the window; null = off. */
    ipFailures: Rate | null;
  };
}

export function rateLimitConfig(r: Reader): RateLimitConfig {
  const limits = Object.fromEntries(Object.entries(RATE_LIMITS).map(([key, [name, fallback]]) => [key, r.rate(name, fallback)])) as Record<
    RateLimitName,
    Rate | null
  >;
  const baseDelaySeconds = r.duration('BRUTE_FORCE_BASE_DELAY', 1, 1, 3600);
  return {
    enabled: r.bool('RATE_LIMIT_ENABLED', true),
    limits,
    bruteForce: {
      enabled: r.bool('BRUTE_FORCE_ENABLED', true),
      freeAttempts: r.int('BRUTE_FORCE_FREE_ATTEMPTS', 5, 1, 1000),
      baseDelaySeconds,
      maxDelaySeconds: Math.max(baseDelaySeconds, r.duration('BRUTE_FORCE_MAX_DELAY', 15 * 60, 1, 86400)),
      windowSeconds: r.duration('BRUTE_FORCE_WINDOW', 24 * 3600, 60, 30 * 86400),
      knownClientSeconds: r.duration('BRUTE_FORCE_KNOWN_CLIENT_TTL', 30 * 86400, 0, 365 * 86400),
      ipFailures: r.rate('BRUTE_FORCE_IP_FAILURES', '30/15m'),
    },
  };
}
