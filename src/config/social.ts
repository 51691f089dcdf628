/**
 * Third-party sign-in: Google, Apple, GitHub, Facebook and generic OpenID
 * Connect providers (OIDC_PROVIDERS), the redirect allow-list of the web flow,
 * and the bound on every call to a provider. Each provider's public defaults
 * (issuer, endpoints, API version) live next to it in
 * src/features/social/providers/*-defaults.ts (constants only).
 */
import { createPrivateKey } from 'node:crypto';
import { appleDefaults } from '../features/social/providers/apple-defaults.js';
import { facebookDefaults } from '../features/social/providers/facebook-defaults.js';
import { githubDefaults } from '../features/social/providers/github-defaults.js';
import { googleDefaults } from '../features/social/providers/google-defaults.js';
import { genericOidcDefaults } from '../features/social/providers/oidc-defaults.js';
import { list, type Reader } from './reader.js';

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
  /** Whether a verified email may link to an existing account (docs/social-sign-in.md, "Accounts and linking"). */
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

const HTTPS = ['https:', 'http:'];
const PROVIDER_NAME = /^[a-z][a-z0-9-]{0,31}$/;
const BUILT_IN_PROVIDERS = ['google', 'apple', 'github', 'facebook'];

export function socialConfig(r: Reader): SocialConfig {
  const google = oidcProvider(r, 'GOOGLE', 'google', googleDefaults);
  let apple: AppleConfig | null = null;
  const appleBase = oidcProvider(r, 'APPLE', 'apple', appleDefaults);
  if (appleBase) {
    const teamId = r.raw('APPLE_TEAM_ID');
    const keyId = r.raw('APPLE_KEY_ID');
    const privateKeyPem = r.pem('APPLE_PRIVATE_KEY');
    if (!teamId || !keyId || !privateKeyPem)
      r.problems.push('APPLE_TEAM_ID, APPLE_KEY_ID and APPLE_PRIVATE_KEY (or APPLE_PRIVATE_KEY_FILE): required when APPLE_CLIENT_ID is set');
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
    const p = oidcProvider(r, prefix, name, { ...genericOidcDefaults, displayName: name });
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
    github: oauth2Provider(r, 'GITHUB', githubDefaults),
    facebook: oauth2Provider(r, 'FACEBOOK', facebookDefaults),
    oidc,
  };
}

function oidcProvider(
  r: Reader,
  prefix: string,
  id: string,
  defaults: { displayName: string; issuer: string | null; scopes: string; emailLinking: boolean },
): OidcProviderConfig | null {
  const clientId = r.raw(`${prefix}_CLIENT_ID`);
  if (!clientId) return null;
  const issuer = r.url(`${prefix}_ISSUER`, defaults.issuer, HTTPS);
  if (!issuer)
    r.problems.push(`${prefix}_ISSUER: required for the OpenID provider "${id}" (its discovery document is at <issuer>/.well-known/openid-configuration)`);
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

function oauth2Provider(
  r: Reader,
  prefix: string,
  defaults: { scopes: string; authorizationUrl: string; tokenUrl: string; apiUrl: string },
): OAuth2ProviderConfig | null {
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
    // unreadable PEM: the caller reports the key as not a P-256 key
    return false;
  }
}
