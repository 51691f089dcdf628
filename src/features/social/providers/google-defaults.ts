/**
 * Google's public OpenID Connect settings: the defaults of the GOOGLE_* variables
 * (read in src/config/social.ts). Constants only: the configuration imports this file.
 */
export const googleDefaults = {
  displayName: 'Google',
  issuer: 'https://accounts.google.com',
  /** Google's ID tokens may also name their issuer without the scheme. */
  issuerAlias: 'accounts.google.com',
  scopes: 'openid email profile',
  emailLinking: true,
} as const;
