/**
 * Google (OpenID Connect). Defaults: issuer https://accounts.google.com, scopes
 * `openid email profile` (google-defaults.ts). Google's ID tokens name their issuer
 * `https://accounts.google.com` or `accounts.google.com`: both are accepted.
 * The email counts as verified only when `email_verified` is the boolean true
 * (the OpenID Connect default of oidc.ts).
 */
import type { OidcProviderConfig } from '../../../config/index.js';
import type { Clock } from '../../../infra/clock.js';
import type { Provider } from '../provider.js';
import type { HttpOptions } from './oauth2-http.js';
import { googleDefaults } from './google-defaults.js';
import { createOidcProvider } from './oidc.js';

export function createGoogleProvider(config: OidcProviderConfig, http: HttpOptions, clock: Clock): Provider {
  const aliases = config.issuer === googleDefaults.issuer ? [googleDefaults.issuerAlias] : [];
  return createOidcProvider(config, http, clock, { issuerAliases: aliases });
}
