import { createPrivateKey } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import path from 'node:path';

export type JwtAlgorithm = 'RS256' | 'ES256' | 'EdDSA';
export const JWT_ALGORITHMS: readonly JwtAlgorithm[] = ['RS256', 'ES256', 'EdDSA'];

/** `false` = trust nobody (socket address), `true` = trust every hop, number = hops, string[] = addresses/CIDRs. */
export type TrustProxy = boolean | number | string[];

export interface Config {
  env: 'development' | 'production' | 'test';
  debug: boolean;
  logLevel: string;
  host: string;
  port: number;
  workers: number;
  publicUrl: string;
  dataDir: string;
  trustProxy: TrustProxy;
  bodyLimit: number;
  /** MAX_HEADER_BYTES: Node's maxHeaderSize, all request headers together; a larger head gets 431 before any route runs. */
  maxHeaderBytes: number;
  /** CORS_ORIGINS: the exact origins (scheme://host[:port]) browsers may call the API from; [] = no CORS headers at all. */
  corsOrigins: string[];
  /** How long SIGTERM/SIGINT waits for in-flight requests (or the worker's jobs) before giving up. */
  shutdownTimeoutMs: number;
  /** REQUEST_DEADLINE_MS: a request not answered by then gets 503 service_unavailable; its transaction, if not committing yet, is rolled back. */
  requestDeadlineMs: number;
  /** WORKER_CRASH_LIMIT: this many worker crashes within the window stop the cluster primary (exit 1); null = never give up. */
  workerCrashLimit: Rate | null;
  /** When set, GET /metrics needs `Authorization: Bearer <token>`. */
  metricsToken: string | null;
  /** METRICS_PUBLIC: production may serve /metrics without METRICS_TOKEN (a private network only). */
  metricsPublic: boolean;
  database: {
    /** null = embedded PGlite in `${dataDir}/db`. */
    url: string | null;
    poolMax: number;
    connectTimeoutMs: number;
    statementTimeoutMs: number;
  };
  migrateOnStart: boolean;
  jwt: {
    algorithm: JwtAlgorithm;
    issuer: string;
    audience: string;
    accessTokenMinutes: number;
    refreshTokenDays: number;
    refreshReuseGraceSeconds: number;
    privateKeyPem: string | null;
    publicKeyPem: string | null;
    /** PREVIOUS_PUBLIC_KEYS: public PEMs of earlier keys, published next to PRIVATE_KEY (docs/key-rotation.md). */
    previousPublicKeysPem: string | null;
    /** KEYS_DIR: a directory of PEM private keys managed by `tessera keys …`; null = PRIVATE_KEY, or DATA_DIR/keys outside production. */
    keysDir: string | null;
    /** KEYS_ACTIVATION_DELAY: how long `tessera keys rotate` publishes a new key before it signs. */
    keysActivationDelaySeconds: number;
    /** KEYS_RELOAD_INTERVAL: how often a server re-reads its keys directory (0 = only on SIGHUP). */
    keysReloadIntervalSeconds: number;
  };
  passwords: {
    bcryptRounds: number;
    bcryptConcurrency: number;
    /** BCRYPT_MAX_QUEUE: hashes allowed to wait for a thread; beyond it a request gets 503 service_unavailable with Retry-After. */
    bcryptMaxQueue: number;
    /** BCRYPT_MAX_WAIT_MS: a hash whose estimated wait for a thread is longer is refused at once (503 with Retry-After). */
    bcryptMaxWaitMs: number;
    /** BCRYPT_NICE: the nice value of the hashing threads (0 = the priority of the rest; up to 19 = yield to everything). */
    bcryptNice: number;
  };
  requireEmailVerification: boolean;
  /** POST /auth/introspect (RFC 7662): the clients allowed to call it; empty = the endpoint is off. */
  introspection: { clients: IntrospectionClient[] };
  /** REGISTRATION_ENUMERATION_PROTECTION: a sign-up with a registered email answers like a new one and emails the owner instead of a 409. */
  registrationEnumerationProtection: boolean;
  /** The role every new user gets. */
  defaultRole: string;
  mfa: {
    /** MFA_ENCRYPTION_KEY (32 bytes); null = generated once into DATA_DIR/keys outside production. */
    encryptionKey: Buffer | null;
    /** How recent a sign-in must be to enrol without the password again. */
    reauthSeconds: number;
    /** Wrong codes allowed per user per window before 429. */
    maxFailures: number;
    failureWindowSeconds: number;
    /** Lifetime of the mfa_token of a sign-in waiting for its code. */
    challengeSeconds: number;
  };
  /** Third-party sign-in (DESIGN §6); a provider is null unless configured. */
  social: SocialConfig;
  /** REDIS_URL (or CELERY_BROKER_URL); null = the server drains the outbox itself. */
  redisUrl: string | null;
  /** REDIS_RECONNECT_MAX_DELAY_MS: the longest wait between two attempts to reach Redis again (every connection). */
  redisReconnectMaxDelayMs: number;
  /** SESSION_CACHE_TTL_MS: how long a live session may be served from memory (needs Redis; 0 = off; docs/operations.md). */
  sessionCacheTtlMs: number;
  /** Request limits per endpoint and brute-force protection of sign-ins (docs/security.md). */
  rateLimits: RateLimitConfig;
  /** Product name shown in emails and pages. */
  appName: string;
  email: {
    /** null = write messages to DATA_DIR/mail (development only). */
    smtp: SmtpConfig | null;
    from: string;
    templatesDir: string | null;
    confirmTtlSeconds: number;
    passwordResetTtlSeconds: number;
    emailConfirmedRedirectUrl: string | null;
    passwordResetUrl: string | null;
    /** Minimum time between two resend/forgot mails to one address. */
    resendIntervalSeconds: number;
    /** At most this many resend/forgot mails of one kind per address per hour. */
    hourlyLimit: number;
    maxAttempts: number;
    retryDelayMs: number;
    workerConcurrency: number;
    pollIntervalMs: number;
  };
}

/** Every endpoint is overridable (tests, company IdPs); defaults are the provider's public ones. */
export interface OidcProviderConfig {
  /** Path segment and identity key: `google`, `apple`, or the generic provider's name. */
  id: string;
  displayName: string;
  issuer: string;
  /** The first is the web client (used for redirects); all are accepted as `aud` of native ID tokens. */
  clientIds: string[];
  clientSecret: string | null;
  scopes: string;
  /** Endpoint overrides; null = from the issuer's discovery document. */
  authorizationUrl: string | null;
  tokenUrl: string | null;
  jwksUrl: string | null;
  userinfoUrl: string | null;
  /** Whether a verified email may link to an existing account (DESIGN §6). */
  emailLinking: boolean;
}

export interface AppleConfig extends OidcProviderConfig {
  teamId: string;
  keyId: string;
  /** The .p8 key (EC P-256, PEM) that signs the ES256 client-secret JWT. */
  privateKeyPem: string;
}

export interface OAuth2ProviderConfig {
  clientId: string;
  clientSecret: string;
  scopes: string;
  authorizationUrl: string;
  tokenUrl: string;
  /** GitHub: the REST API base (`/user`, `/user/emails`); Facebook: the Graph API base (`/me`, `/debug_token`). */
  apiUrl: string;
}

export interface SocialConfig {
  /** OAUTH_REDIRECT_ALLOWLIST: the exact URLs (scheme, host, port, path) the web flow may send its one-time code to. */
  redirectAllowlist: string[];
  /** Bounds every call to a provider. */
  httpTimeoutMs: number;
  google: OidcProviderConfig | null;
  apple: AppleConfig | null;
  github: OAuth2ProviderConfig | null;
  facebook: OAuth2ProviderConfig | null;
  /** OIDC_PROVIDERS: generic OpenID Connect providers, each with OIDC_<NAME>_* variables. */
  oidc: OidcProviderConfig[];
}

export interface SmtpConfig {
  host: string;
  port: number;
  /** TLS from the first byte (port 465); otherwise STARTTLS when the server offers it. */
  secure: boolean;
  username: string | null;
  password: string | null;
  /** Bounds each SMTP step (connect, greeting, idle socket). */
  timeoutMs: number;
}

/** At most `max` requests per `windowSeconds`; null = that limit is off. */
export interface Rate {
  max: number;
  windowSeconds: number;
}

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
} as const satisfies Record<string, readonly [string, string]>;

export type RateLimitName = keyof typeof RATE_LIMITS;

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

export interface IntrospectionClient {
  id: string;
  secret: string;
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

type Env = Record<string, string | undefined>;

/** The units of a duration (`duration`, and the window of a `rate`): none or `s`, `m`, `h`, `d`. */
const UNIT_SECONDS = { '': 1, s: 1, m: 60, h: 3600, d: 86400 } as const;
const unitSeconds = (unit: string | undefined) => UNIT_SECONDS[(unit ?? '').toLowerCase() as keyof typeof UNIT_SECONDS];

/** A comma-separated list, trimmed, without empty entries. */
const list = (v: string | undefined) => (v ?? '').split(',').map((s) => s.trim()).filter(Boolean);

/** Reads variables, collecting every problem instead of stopping at the first. */
class Reader {
  readonly problems: string[] = [];
  constructor(private readonly env: Env) {}

  raw(name: string): string | undefined {
    const v = this.env[name];
    return v === undefined || v.trim() === '' ? undefined : v.trim();
  }

  string(name: string, fallback: string): string {
    return this.raw(name) ?? fallback;
  }

  int(name: string, fallback: number, min: number, max: number): number {
    const v = this.raw(name);
    if (v === undefined) return fallback;
    const n = Number(v);
    if (!Number.isInteger(n) || n < min || n > max) {
      this.problems.push(`${name}: expected an integer between ${min} and ${max}, got "${v}"`);
      return fallback;
    }
    return n;
  }

  bool(name: string, fallback: boolean): boolean {
    const v = this.raw(name)?.toLowerCase();
    if (v === undefined) return fallback;
    if (['1', 'true', 'yes', 'on'].includes(v)) return true;
    if (['0', 'false', 'no', 'off'].includes(v)) return false;
    this.problems.push(`${name}: expected true or false, got "${v}"`);
    return fallback;
  }

  oneOf<T extends string>(name: string, allowed: readonly T[], fallback: T): T {
    const v = this.raw(name);
    if (v === undefined) return fallback;
    if (!(allowed as readonly string[]).includes(v)) {
      this.problems.push(`${name}: expected one of ${allowed.join(', ')}, got "${v}"`);
      return fallback;
    }
    return v as T;
  }

  url(name: string, fallback: string | null, protocols: string[]): string | null {
    const v = this.raw(name);
    if (v === undefined) return fallback;
    try {
      const u = new URL(v);
      if (!protocols.includes(u.protocol)) throw new Error('protocol');
      return v;
    } catch {
      this.problems.push(`${name}: expected a ${protocols.join(' or ')} URL, got "${redactUrl(v)}"`);
      return fallback;
    }
  }

  /** Seconds, given as a number of seconds or with a unit: `90`, `45s`, `30m`, `24h`, `7d`. */
  duration(name: string, fallback: number, min: number, max: number): number {
    const v = this.raw(name);
    if (v === undefined) return fallback;
    const m = /^(\d+)\s*([smhd]?)$/i.exec(v);
    const n = m ? Number(m[1]) * unitSeconds(m[2]) : NaN;
    if (!(n >= min && n <= max)) {
      this.problems.push(`${name}: expected a duration between ${min}s and ${max}s such as 90, 30m or 24h, got "${v}"`);
      return fallback;
    }
    return n;
  }

  /** A rate `count/duration` (`10/1m`, `30/5m`, `5/h`: the duration units of `duration`), or `off`. */
  rate(name: string, fallback: string): Rate | null {
    const v = this.raw(name);
    const parsed = parseRate(v ?? fallback);
    if (parsed !== undefined) return parsed;
    this.problems.push(`${name}: expected count/duration such as 10/1m, 30/5m or 5/1h (at most 7d), or off, got "${v}"`);
    return parseRate(fallback) ?? null;
  }

  /** A PEM given inline (real newlines or `\n` escapes) or as `${name}_FILE`. */
  pem(name: string): string | null {
    const inline = this.raw(name);
    const file = this.raw(`${name}_FILE`);
    if (inline && file) {
      this.problems.push(`${name} and ${name}_FILE are both set; set only one`);
      return null;
    }
    if (file) {
      try {
        return readFileSync(file, 'utf8');
      } catch (err) {
        this.problems.push(`${name}_FILE: cannot read "${file}" (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
        return null;
      }
    }
    if (!inline) return null;
    const pem = inline.replace(/\\n/g, '\n');
    if (!pem.includes('-----BEGIN')) {
      this.problems.push(`${name}: expected a PEM block ("-----BEGIN ...")`);
      return null;
    }
    return pem;
  }
}

/** `count/duration` → Rate; `off` → null; anything else → undefined. */
function parseRate(v: string): Rate | null | undefined {
  if (['off', 'false', '0'].includes(v.toLowerCase())) return null;
  const m = /^(\d+)\s*\/\s*(\d*)\s*([smhd]?)$/i.exec(v);
  if (!m) return undefined;
  const max = Number(m[1]);
  const windowSeconds = Number(m[2] || '1') * unitSeconds(m[3]);
  return max >= 1 && max <= 1_000_000 && windowSeconds >= 1 && windowSeconds <= 7 * 86400 ? { max, windowSeconds } : undefined;
}

/** Hides a URL's credentials: everything between the scheme and the last `@` (a password may hold `@`, `/` or `:`). */
function redactUrl(v: string): string {
  const at = v.lastIndexOf('@');
  if (at === -1) return v;
  const scheme = /^[a-z][a-z0-9+.-]*:\/\//i.exec(v)?.[0] ?? '';
  return `${scheme}***${v.slice(at)}`;
}

/** What Fastify's trustProxy (proxy-addr) accepts: an IP, an IP/prefix, or loopback/linklocal/uniquelocal. */
function isProxyAddress(s: string): boolean {
  if (['loopback', 'linklocal', 'uniquelocal'].includes(s)) return true;
  const [address = '', prefix, ...rest] = s.split('/');
  const family = isIP(address);
  if (family === 0 || rest.length > 0) return false;
  return prefix === undefined || (/^\d{1,3}$/.test(prefix) && Number(prefix) <= (family === 4 ? 32 : 128));
}

function parseTrustProxy(r: Reader): TrustProxy {
  const v = r.raw('TRUST_PROXY');
  if (v === undefined) return false;
  const lower = v.toLowerCase();
  if (['false', '0', 'no', 'off'].includes(lower)) return false;
  if (['true', 'yes', 'on'].includes(lower)) return true;
  if (/^\d+$/.test(v)) return Number(v);
  const proxies = list(v);
  if (!proxies.every(isProxyAddress)) r.problems.push(`TRUST_PROXY: expected true, false, a hop count or a list of addresses/CIDRs, got "${v}"`);
  return proxies;
}

/** Exact origins only: what a browser sends in `Origin` (no path, no default port, lower-case host); `*` is refused. */
function parseCorsOrigins(r: Reader): string[] {
  const origins = list(r.raw('CORS_ORIGINS'));
  for (const o of origins) {
    let origin: string | null = null;
    try {
      const u = new URL(o);
      if (u.protocol === 'http:' || u.protocol === 'https:') origin = u.origin;
    } catch {
      origin = null;
    }
    if (origin !== o) r.problems.push(`CORS_ORIGINS: "${o}" is not an origin; list exact origins like https://app.example.com or http://localhost:3000 (scheme://host[:port], lower-case, no path or trailing slash; "*" is not allowed)`);
  }
  return origins;
}

function databaseUrl(r: Reader): string | null {
  const url = r.url('DATABASE_URL', null, ['postgres:', 'postgresql:']);
  if (url) return url;
  const host = r.raw('DB_HOST');
  if (!host) return null;
  const port = r.int('DB_PORT', 5432, 1, 65535);
  const user = encodeURIComponent(r.string('DB_USER', 'postgres'));
  const password = r.raw('DB_PASSWORD');
  const name = encodeURIComponent(r.string('DB_NAME', 'tessera'));
  const auth = password === undefined ? user : `${user}:${encodeURIComponent(password)}`;
  return `postgresql://${auth}@${host}:${port}/${name}`;
}

/** 32 bytes, as base64 (44 characters) or hex (64). */
function mfaKey(r: Reader): Buffer | null {
  const v = r.raw('MFA_ENCRYPTION_KEY');
  if (v === undefined) return null;
  const key = /^[0-9a-f]{64}$/i.test(v) ? Buffer.from(v, 'hex') : Buffer.from(v, 'base64');
  if (key.length !== 32) {
    r.problems.push('MFA_ENCRYPTION_KEY: expected 32 bytes as base64 or hex; generate one with `openssl rand -base64 32`');
    return null;
  }
  return key;
}

function smtpConfig(r: Reader): SmtpConfig | null {
  const host = r.raw('SMTP_SERVER');
  if (!host) return null;
  const port = r.int('SMTP_PORT', 587, 1, 65535);
  return {
    host,
    port,
    secure: r.bool('SMTP_SECURE', port === 465),
    username: r.raw('SMTP_USERNAME') ?? null,
    password: r.raw('SMTP_PASSWORD') ?? null,
    timeoutMs: r.int('SMTP_TIMEOUT_MS', 20000, 100, 300000),
  };
}

const HTTPS = ['https:', 'http:'];

function oidcProvider(r: Reader, prefix: string, id: string, defaults: { displayName: string; issuer: string | null; scopes: string; emailLinking: boolean }): OidcProviderConfig | null {
  const clientId = r.raw(`${prefix}_CLIENT_ID`);
  if (!clientId) return null;
  const issuer = r.url(`${prefix}_ISSUER`, defaults.issuer, HTTPS);
  if (!issuer) r.problems.push(`${prefix}_ISSUER: required for the OpenID provider "${id}" (its discovery document is at <issuer>/.well-known/openid-configuration)`);
  return {
    id,
    displayName: r.string(`${prefix}_DISPLAY_NAME`, defaults.displayName),
    issuer: issuer ?? '',
    clientIds: [clientId, ...list(r.raw(`${prefix}_EXTRA_CLIENT_IDS`))],
    clientSecret: r.raw(`${prefix}_CLIENT_SECRET`) ?? null,
    scopes: r.string(`${prefix}_SCOPES`, defaults.scopes),
    authorizationUrl: r.url(`${prefix}_AUTHORIZATION_URL`, null, HTTPS),
    tokenUrl: r.url(`${prefix}_TOKEN_URL`, null, HTTPS),
    jwksUrl: r.url(`${prefix}_JWKS_URL`, null, HTTPS),
    userinfoUrl: r.url(`${prefix}_USERINFO_URL`, null, HTTPS),
    emailLinking: r.bool(`${prefix}_EMAIL_LINKING`, defaults.emailLinking),
  };
}

function oauth2Provider(r: Reader, prefix: string, defaults: { scopes: string; authorizationUrl: string; tokenUrl: string; apiUrl: string }): OAuth2ProviderConfig | null {
  const clientId = r.raw(`${prefix}_CLIENT_ID`);
  if (!clientId) return null;
  const clientSecret = r.raw(`${prefix}_CLIENT_SECRET`);
  if (!clientSecret) r.problems.push(`${prefix}_CLIENT_SECRET: required when ${prefix}_CLIENT_ID is set`);
  return {
    clientId,
    clientSecret: clientSecret ?? '',
    scopes: r.string(`${prefix}_SCOPES`, defaults.scopes),
    authorizationUrl: r.url(`${prefix}_AUTHORIZATION_URL`, defaults.authorizationUrl, HTTPS) ?? defaults.authorizationUrl,
    tokenUrl: r.url(`${prefix}_TOKEN_URL`, defaults.tokenUrl, HTTPS) ?? defaults.tokenUrl,
    apiUrl: (r.url(`${prefix}_API_URL`, defaults.apiUrl, HTTPS) ?? defaults.apiUrl).replace(/\/+$/, ''),
  };
}

/** Apple's .p8 keys are EC P-256 (they sign the ES256 client secret). */
function isP256PrivateKey(pem: string): boolean {
  try {
    return createPrivateKey(pem).asymmetricKeyDetails?.namedCurve === 'prime256v1';
  } catch {
    return false;
  }
}

const PROVIDER_NAME = /^[a-z][a-z0-9-]{0,31}$/;
const BUILT_IN_PROVIDERS = ['google', 'apple', 'github', 'facebook'];

function socialConfig(r: Reader): SocialConfig {
  const google = oidcProvider(r, 'GOOGLE', 'google', { displayName: 'Google', issuer: 'https://accounts.google.com', scopes: 'openid email profile', emailLinking: true });
  let apple: AppleConfig | null = null;
  const appleBase = oidcProvider(r, 'APPLE', 'apple', { displayName: 'Apple', issuer: 'https://appleid.apple.com', scopes: 'name email', emailLinking: true });
  if (appleBase) {
    const teamId = r.raw('APPLE_TEAM_ID');
    const keyId = r.raw('APPLE_KEY_ID');
    const privateKeyPem = r.pem('APPLE_PRIVATE_KEY');
    if (!teamId || !keyId || !privateKeyPem) r.problems.push('APPLE_TEAM_ID, APPLE_KEY_ID and APPLE_PRIVATE_KEY (or APPLE_PRIVATE_KEY_FILE): required when APPLE_CLIENT_ID is set');
    else if (!isP256PrivateKey(privateKeyPem)) r.problems.push('APPLE_PRIVATE_KEY: expected the .p8 key Apple gave you (an EC P-256 private key, PEM)');
    apple = { ...appleBase, teamId: teamId ?? '', keyId: keyId ?? '', privateKeyPem: privateKeyPem ?? '' };
  }
  const oidc: OidcProviderConfig[] = [];
  for (const name of list(r.raw('OIDC_PROVIDERS')).map((n) => n.toLowerCase())) {
    if (!PROVIDER_NAME.test(name) || BUILT_IN_PROVIDERS.includes(name)) {
      r.problems.push(`OIDC_PROVIDERS: "${name}" is not a usable name (lower-case letters, digits and -, not ${BUILT_IN_PROVIDERS.join('/')})`);
      continue;
    }
    const prefix = `OIDC_${name.toUpperCase().replace(/-/g, '_')}`;
    const p = oidcProvider(r, prefix, name, { displayName: name, issuer: null, scopes: 'openid email profile', emailLinking: false });
    if (!p) r.problems.push(`${prefix}_CLIENT_ID: required for the OpenID provider "${name}" named in OIDC_PROVIDERS`);
    else oidc.push(p);
  }
  const redirectAllowlist = list(r.raw('OAUTH_REDIRECT_ALLOWLIST'));
  for (const u of redirectAllowlist) {
    try {
      const parsed = new URL(u);
      if (parsed.hash || parsed.username || parsed.password) throw new Error('fragment or userinfo');
    } catch {
      r.problems.push(`OAUTH_REDIRECT_ALLOWLIST: "${u}" is not an absolute URL without fragment or user info`);
    }
  }
  return {
    redirectAllowlist,
    httpTimeoutMs: r.int('OAUTH_HTTP_TIMEOUT_MS', 10000, 100, 120000),
    google,
    apple,
    github: oauth2Provider(r, 'GITHUB', {
      scopes: 'read:user user:email',
      authorizationUrl: 'https://github.com/login/oauth/authorize',
      tokenUrl: 'https://github.com/login/oauth/access_token',
      apiUrl: 'https://api.github.com',
    }),
    facebook: oauth2Provider(r, 'FACEBOOK', {
      scopes: 'email public_profile',
      authorizationUrl: 'https://www.facebook.com/v21.0/dialog/oauth',
      tokenUrl: 'https://graph.facebook.com/v21.0/oauth/access_token',
      apiUrl: 'https://graph.facebook.com/v21.0',
    }),
    oidc,
  };
}

function rateLimitConfig(r: Reader): RateLimitConfig {
  const limits = Object.fromEntries(Object.entries(RATE_LIMITS).map(([key, [name, fallback]]) => [key, r.rate(name, fallback)])) as Record<RateLimitName, Rate | null>;
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

const CLIENT_ID = /^[A-Za-z0-9._~-]{1,64}$/;
export const MIN_CLIENT_SECRET_LENGTH = 32;

/**
 * INTROSPECTION_CLIENTS=`id:secret,id:secret` or INTROSPECTION_CLIENTS_FILE (one
 * `id:secret` per line, `#` comments). Secrets are never echoed in errors.
 */
function introspectionClients(r: Reader): IntrospectionClient[] {
  const inline = r.raw('INTROSPECTION_CLIENTS');
  const file = r.raw('INTROSPECTION_CLIENTS_FILE');
  if (inline && file) {
    r.problems.push('INTROSPECTION_CLIENTS and INTROSPECTION_CLIENTS_FILE are both set; set only one');
    return [];
  }
  let entries: string[] = [];
  let name = 'INTROSPECTION_CLIENTS';
  if (file) {
    name = 'INTROSPECTION_CLIENTS_FILE';
    try {
      entries = readFileSync(file, 'utf8').split(/\r?\n/).map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
    } catch (err) {
      r.problems.push(`INTROSPECTION_CLIENTS_FILE: cannot read "${file}" (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
      return [];
    }
  } else if (inline) {
    entries = list(inline);
  }
  const clients: IntrospectionClient[] = [];
  for (const [i, entry] of entries.entries()) {
    const colon = entry.indexOf(':');
    const id = colon === -1 ? entry : entry.slice(0, colon);
    const secret = colon === -1 ? '' : entry.slice(colon + 1);
    const label = CLIENT_ID.test(id) ? `client "${id}"` : `entry ${i + 1}`;
    if (!CLIENT_ID.test(id)) r.problems.push(`${name}: ${label}: expected id:secret with an id of letters, digits and . _ ~ - (at most 64)`);
    else if (secret.length < MIN_CLIENT_SECRET_LENGTH) {
      r.problems.push(`${name}: ${label}: the secret must be at least ${MIN_CLIENT_SECRET_LENGTH} characters (\`openssl rand -base64 32\`)`);
    } else if (clients.some((c) => c.id === id)) r.problems.push(`${name}: client "${id}" is listed twice`);
    else clients.push({ id, secret });
  }
  return clients;
}

/** Parses and validates the whole configuration; throws ConfigError listing every bad variable. */
export function loadConfig(env: Env = process.env): Config {
  const r = new Reader(env);
  const nodeEnv = r.oneOf('NODE_ENV', ['development', 'production', 'test'] as const, 'development');
  const port = r.int('SERVER_PORT', 8000, 0, 65535);
  const publicUrl = (r.url('PUBLIC_URL', `http://localhost:${port}`, ['http:', 'https:']) ?? '').replace(/\/+$/, '');
  const dataDir = path.resolve(r.string('DATA_DIR', './data'));
  const debug = r.bool('DEBUG', false);
  const workers = r.int('WORKERS', 1, 1, 64);

  const config: Config = {
    env: nodeEnv,
    debug,
    logLevel: r.oneOf('LOG_LEVEL', ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const, debug ? 'debug' : 'info'),
    // Development listens on loopback only, like the original (SERVER=127.0.0.1): set SERVER=0.0.0.0
    // to be reached from other machines or from outside a container. Production keeps every interface.
    host: r.string('SERVER', nodeEnv === 'production' ? '0.0.0.0' : '127.0.0.1'),
    port,
    workers,
    publicUrl,
    dataDir,
    trustProxy: parseTrustProxy(r),
    bodyLimit: r.int('BODY_LIMIT_BYTES', 65536, 1024, 10 * 1024 * 1024),
    maxHeaderBytes: r.int('MAX_HEADER_BYTES', 16384, 1024, 1024 * 1024),
    corsOrigins: parseCorsOrigins(r),
    shutdownTimeoutMs: r.duration('SHUTDOWN_TIMEOUT', 10, 1, 3600) * 1000,
    requestDeadlineMs: r.int('REQUEST_DEADLINE_MS', 10000, 100, 600000),
    workerCrashLimit: r.rate('WORKER_CRASH_LIMIT', '5/1m'),
    metricsToken: r.raw('METRICS_TOKEN') ?? null,
    metricsPublic: r.bool('METRICS_PUBLIC', false),
    database: {
      url: databaseUrl(r),
      poolMax: r.int('DB_POOL_MAX', 10, 1, 1000),
      connectTimeoutMs: r.int('DB_CONNECT_TIMEOUT_MS', 5000, 100, 120000),
      statementTimeoutMs: r.int('DB_STATEMENT_TIMEOUT_MS', 10000, 100, 600000),
    },
    migrateOnStart: r.bool('MIGRATE_ON_START', true),
    jwt: {
      algorithm: r.oneOf('JWT_ALGORITHM', JWT_ALGORITHMS, 'RS256'),
      issuer: r.string('JWT_ISSUER', publicUrl),
      audience: r.string('JWT_AUDIENCE', 'tessera'),
      accessTokenMinutes: r.int('ACCESS_TOKEN_EXPIRE_MINUTES', 15, 1, 24 * 60),
      refreshTokenDays: r.int('REFRESH_TOKEN_EXPIRE_DAYS', 30, 1, 3650),
      refreshReuseGraceSeconds: r.int('REFRESH_REUSE_GRACE_SECONDS', 10, 0, 300),
      privateKeyPem: r.pem('PRIVATE_KEY'),
      publicKeyPem: r.pem('PUBLIC_KEY'),
      previousPublicKeysPem: r.pem('PREVIOUS_PUBLIC_KEYS'),
      keysDir: r.raw('KEYS_DIR') ? path.resolve(r.string('KEYS_DIR', '')) : null,
      keysActivationDelaySeconds: r.duration('KEYS_ACTIVATION_DELAY', 600, 0, 30 * 86400),
      keysReloadIntervalSeconds: r.duration('KEYS_RELOAD_INTERVAL', 30, 0, 3600),
    },
    passwords: {
      bcryptRounds: r.int('BCRYPT_ROUNDS', 12, 4, 15),
      // Hashing threads per process: together, the processes of one machine use every core once.
      bcryptConcurrency: r.int('BCRYPT_CONCURRENCY', Math.max(1, Math.ceil(availableParallelism() / workers)), 1, 256),
      bcryptMaxQueue: r.int('BCRYPT_MAX_QUEUE', 1000, 1, 1_000_000),
      bcryptMaxWaitMs: r.int('BCRYPT_MAX_WAIT_MS', 5000, 100, 600_000),
      bcryptNice: r.int('BCRYPT_NICE', 0, 0, 19),
    },
    requireEmailVerification: r.bool('REQUIRE_EMAIL_VERIFICATION', true),
    introspection: { clients: introspectionClients(r) },
    registrationEnumerationProtection: r.bool('REGISTRATION_ENUMERATION_PROTECTION', false),
    defaultRole: r.string('DEFAULT_ROLE', 'user'),
    mfa: {
      encryptionKey: mfaKey(r),
      reauthSeconds: r.duration('MFA_REAUTH_WINDOW', 300, 0, 86400),
      maxFailures: r.int('MFA_MAX_FAILURES', 5, 1, 100),
      failureWindowSeconds: r.duration('MFA_FAILURE_WINDOW', 900, 60, 86400),
      challengeSeconds: r.duration('MFA_TOKEN_TTL', 300, 30, 3600),
    },
    social: socialConfig(r),
    redisUrl: r.url('REDIS_URL', null, ['redis:', 'rediss:']) ?? r.url('CELERY_BROKER_URL', null, ['redis:', 'rediss:']),
    redisReconnectMaxDelayMs: r.int('REDIS_RECONNECT_MAX_DELAY_MS', 500, 10, 60000),
    sessionCacheTtlMs: r.int('SESSION_CACHE_TTL_MS', 1000, 0, 2000),
    rateLimits: rateLimitConfig(r),
    appName: r.string('APP_NAME', 'Tessera'),
    email: {
      smtp: smtpConfig(r),
      from: r.string('SMTP_FROM', `${r.string('APP_NAME', 'Tessera')} <no-reply@${new URL(publicUrl || 'http://localhost').hostname}>`),
      templatesDir: r.raw('EMAIL_TEMPLATES_DIR') ? path.resolve(r.string('EMAIL_TEMPLATES_DIR', '')) : null,
      confirmTtlSeconds: r.duration('EMAIL_CONFIRM_TTL', 24 * 3600, 60, 30 * 86400),
      passwordResetTtlSeconds: r.duration('PASSWORD_RESET_TTL', 30 * 60, 60, 7 * 86400),
      emailConfirmedRedirectUrl: r.url('EMAIL_CONFIRMED_REDIRECT_URL', null, ['http:', 'https:']),
      passwordResetUrl: r.url('PASSWORD_RESET_URL', null, ['http:', 'https:']),
      resendIntervalSeconds: r.duration('EMAIL_RESEND_INTERVAL', 60, 0, 86400),
      hourlyLimit: r.int('EMAIL_HOURLY_LIMIT', 5, 1, 1000),
      maxAttempts: r.int('EMAIL_MAX_ATTEMPTS', 8, 1, 50),
      retryDelayMs: r.int('EMAIL_RETRY_DELAY_MS', 5000, 10, 3600000),
      workerConcurrency: r.int('WORKER_CONCURRENCY', 5, 1, 256),
      pollIntervalMs: r.int('OUTBOX_POLL_INTERVAL_MS', 1000, 10, 60000),
    },
  };

  if (config.jwt.keysDir && config.jwt.privateKeyPem) r.problems.push('KEYS_DIR and PRIVATE_KEY are both set; set only one (docs/key-rotation.md)');
  if (config.jwt.keysDir && config.jwt.publicKeyPem) r.problems.push('PUBLIC_KEY: only checked against PRIVATE_KEY; with KEYS_DIR leave it unset');
  if (config.jwt.previousPublicKeysPem && !config.jwt.privateKeyPem) {
    r.problems.push('PREVIOUS_PUBLIC_KEYS: only used with PRIVATE_KEY; with KEYS_DIR (or DATA_DIR/keys) earlier keys stay in the directory');
  }
  if (config.env === 'production') {
    if (!r.raw('PUBLIC_URL')) {
      r.problems.push('PUBLIC_URL: required when NODE_ENV=production (the public address of Tessera, e.g. https://auth.example.com); it is the token issuer and the base of every emailed link, which would otherwise point at http://localhost');
    }
    if (!config.jwt.privateKeyPem && !config.jwt.keysDir) {
      r.problems.push('PRIVATE_KEY (or PRIVATE_KEY_FILE, or a KEYS_DIR of keys): required when NODE_ENV=production; generate one with `npx tessera keys generate`, or `KEYS_DIR=… npx tessera keys rotate`');
    }
    if (!config.database.url) {
      r.problems.push('DATABASE_URL (or DB_HOST, DB_NAME, DB_USER, DB_PASSWORD): required when NODE_ENV=production; the embedded database is for development only');
    }
    if (!config.mfa.encryptionKey) r.problems.push('MFA_ENCRYPTION_KEY: required when NODE_ENV=production (32 bytes, base64 or hex: `openssl rand -base64 32`); it encrypts the TOTP secrets');
    if (!config.email.smtp) r.problems.push('SMTP_SERVER (with SMTP_PORT, SMTP_FROM, SMTP_USERNAME, SMTP_PASSWORD): required when NODE_ENV=production; without it mail is only written to files');
    if (config.bodyLimit > 1024 * 1024) r.problems.push('BODY_LIMIT_BYTES: keep it at most 1 MiB in production');
    if (!config.metricsToken && !config.metricsPublic) {
      r.problems.push('METRICS_TOKEN: required when NODE_ENV=production (`openssl rand -base64 32`; scrape with Authorization: Bearer <token>), or set METRICS_PUBLIC=true if only a private network reaches /metrics');
    }
  }
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
