/**
 * The configuration: every environment variable, read once at start-up by
 * `loadConfig`, which assembles the concerns (one file each) and validates the
 * whole, throwing one ConfigError that lists every bad variable.
 *
 *   reader.ts         the typed parsers and the collected problems
 *   server.ts         process, HTTP server, proxies, CORS, /metrics, Redis
 *   database.ts       PostgreSQL or the embedded PGlite
 *   tokens.ts         JWT settings and signing-key sources
 *   accounts.ts       password hashing, MFA
 *   introspection.ts  the clients of POST /auth/introspect
 *   social.ts         third-party sign-in (provider defaults live with each provider)
 *   limits.ts         request limits and brute-force protection
 *   mail.ts           SMTP, the sender, emailed links and their lifetimes
 *   ui.ts             the hosted pages' theme
 *   passwordless.ts   passkeys (WebAuthn) and sign-in by an emailed code
 *   production.ts     what NODE_ENV=production requires
 *
 * config/* imports only config/* and the constant provider defaults, so every
 * layer may import it.
 */
import { passwordsConfig, mfaConfig, type MfaConfig, type PasswordsConfig } from './accounts.js';
import { databaseConfig, type DatabaseConfig } from './database.js';
import { introspectionClients, type IntrospectionClient } from './introspection.js';
import { rateLimitConfig, type RateLimitConfig } from './limits.js';
import { emailConfig, type EmailConfig } from './mail.js';
import { emailSignInConfig, webAuthnConfig, type EmailSignInConfig, type WebAuthnConfig } from './passwordless.js';
import { checkProduction } from './production.js';
import { ConfigError, Reader, type Env } from './reader.js';
import { redisConfig, serverConfig, type RedisConfig, type ServerConfig } from './server.js';
import { socialConfig, type SocialConfig } from './social.js';
import { checkKeySources, jwtConfig, type JwtConfig } from './tokens.js';
import { uiConfig, type UiConfig } from './ui.js';

export type { MfaConfig, PasswordsConfig } from './accounts.js';
export type { DatabaseConfig } from './database.js';
export { MIN_CLIENT_SECRET_LENGTH, type IntrospectionClient } from './introspection.js';
export {
  ACCOUNT_FIELDS,
  BRUTE_FORCE_LIMITS,
  KNOWN_CLIENT_SKIPS,
  RATE_LIMITS,
  RATE_LIMIT_RULES,
  SIGNED_IN_RATE_LIMIT_RULES,
  type RateLimitConfig,
  type RateLimitName,
  type RequestBody,
} from './limits.js';
export type { EmailConfig, SmtpConfig } from './mail.js';
export type { EmailSignInConfig, WebAuthnConfig } from './passwordless.js';
export { ConfigError, type Env, type Rate } from './reader.js';
export type { RedisConfig, ServerConfig, TrustProxy } from './server.js';
export type { AppleConfig, OAuth2ProviderConfig, OidcProviderConfig, SocialConfig } from './social.js';
export type { UiConfig } from './ui.js';
export { JWT_ALGORITHMS, configuredJwtAlgorithm, type JwtAlgorithm, type JwtConfig } from './tokens.js';

export interface Config extends ServerConfig, RedisConfig {
  database: DatabaseConfig;
  migrateOnStart: boolean;
  jwt: JwtConfig;
  passwords: PasswordsConfig;
  requireEmailVerification: boolean;
  /** POST /auth/introspect (RFC 7662): the clients allowed to call it; empty = the endpoint is off. */
  introspection: { clients: IntrospectionClient[] };
  /** PASSWORD_GRANT_ENABLED: false turns off grant_type=password and POST /auth/login (deployments that sign in only through redirects). */
  passwordGrantEnabled: boolean;
  /** REGISTRATION_ENUMERATION_PROTECTION: a sign-up with a registered email answers like a new one and emails the owner instead of a 409. */
  registrationEnumerationProtection: boolean;
  /** The role every new user gets. */
  defaultRole: string;
  mfa: MfaConfig;
  /** Third-party sign-in (docs/social-sign-in.md); a provider is null unless configured. */
  social: SocialConfig;
  /** Request limits per endpoint and brute-force protection of sign-ins (docs/security.md). */
  rateLimits: RateLimitConfig;
  /** Product name shown in emails and pages. */
  appName: string;
  email: EmailConfig;
  /** The hosted pages' theme: logo, primary colour, a stylesheet override. */
  ui: UiConfig;
  /** Passkeys (docs/passkeys.md). */
  webauthn: WebAuthnConfig;
  /** Passwordless sign-in by an emailed code or link (docs/passkeys.md). */
  emailSignIn: EmailSignInConfig;
}

/** Parses and validates the whole configuration; throws ConfigError listing every bad variable. */
export function loadConfig(env: Env = process.env): Config {
  const r = new Reader(env);
  // The concerns are read in this order, so the problems are listed in it.
  const server = serverConfig(r);
  const config: Config = {
    ...server,
    database: databaseConfig(r),
    migrateOnStart: r.bool('MIGRATE_ON_START', true),
    jwt: jwtConfig(r, server.publicUrl),
    passwords: passwordsConfig(r, server.workers),
    requireEmailVerification: r.bool('REQUIRE_EMAIL_VERIFICATION', true),
    introspection: { clients: introspectionClients(r) },
    registrationEnumerationProtection: r.bool('REGISTRATION_ENUMERATION_PROTECTION', false),
    passwordGrantEnabled: r.bool('PASSWORD_GRANT_ENABLED', true),
    defaultRole: r.string('DEFAULT_ROLE', 'user'),
    mfa: mfaConfig(r),
    social: socialConfig(r),
    ...redisConfig(r),
    rateLimits: rateLimitConfig(r),
    appName: r.string('APP_NAME', 'Tessera'),
    email: emailConfig(r, server.publicUrl),
    ui: uiConfig(r),
    webauthn: webAuthnConfig(r, server.publicUrl, r.string('APP_NAME', 'Tessera')),
    emailSignIn: emailSignInConfig(r),
  };
  checkKeySources(r, config.jwt);
  checkProduction(r, config);
  if (r.problems.length) throw new ConfigError(r.problems);
  return config;
}

/** Reads `.env` into process.env without overriding real environment variables. */
export function loadDotEnv(file = '.env'): void {
  try {
    process.loadEnvFile(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}
