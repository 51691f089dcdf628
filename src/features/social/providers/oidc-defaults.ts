/**
 * The defaults of a generic OpenID Connect provider of OIDC_PROVIDERS (its
 * OIDC_<NAME>_* variables, read in src/config/social.ts): no issuer (it must be
 * configured), the display name is the provider's name, and its emails never
 * link to an existing account. Constants only: the configuration imports this file.
 */
export const genericOidcDefaults = {
  issuer: null,
  scopes: 'openid email profile',
  emailLinking: false,
} as const;
