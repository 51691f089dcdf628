/**
 * Sign in with Apple's public settings: the defaults of the APPLE_* variables
 * (read in src/config/social.ts). Constants only: the configuration imports this file.
 */
export const appleDefaults = {
  displayName: 'Apple',
  issuer: 'https://appleid.apple.com',
  scopes: 'name email',
  emailLinking: true,
} as const;
