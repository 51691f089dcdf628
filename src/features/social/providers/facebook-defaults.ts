/**
 * Facebook Login's public endpoints, pinned to one Graph API version: the
 * defaults of the FACEBOOK_* variables (read in src/config/social.ts).
 * Constants only: the configuration imports this file.
 */
const GRAPH_API_VERSION = 'v21.0';

export const facebookDefaults = {
  scopes: 'email public_profile',
  authorizationUrl: `https://www.facebook.com/${GRAPH_API_VERSION}/dialog/oauth`,
  tokenUrl: `https://graph.facebook.com/${GRAPH_API_VERSION}/oauth/access_token`,
  apiUrl: `https://graph.facebook.com/${GRAPH_API_VERSION}`,
} as const;
