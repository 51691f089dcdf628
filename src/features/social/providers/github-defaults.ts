/**
 * GitHub's public OAuth2 endpoints and REST API version: the defaults of the
 * GITHUB_* variables (read in src/config/social.ts). Constants only: the
 * configuration imports this file.
 */
export const githubDefaults = {
  scopes: 'read:user user:email',
  authorizationUrl: 'https://github.com/login/oauth/authorize',
  tokenUrl: 'https://github.com/login/oauth/access_token',
  apiUrl: 'https://api.github.com',
  /** Sent as `X-GitHub-Api-Version` on every REST API call. */
  apiVersion: '2022-11-28',
} as const;
