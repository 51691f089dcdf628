/** The scopes of the OpenID Provider (docs/openid-provider.md "Authorization code flow"); the standard ones are clients/service.ts's STANDARD_SCOPES. */

/** What the consent page says each standard scope gives; a client's own scopes are shown by name. */
export const SCOPE_DESCRIPTIONS: Record<string, string> = {
  openid: 'Know who you are (your account id)',
  profile: 'Your name',
  email: 'Your email address and whether it is confirmed',
  offline_access: 'Stay signed in when you are not using it',
};

const SCOPE_TOKEN = /^[\x21\x23-\x5b\x5d-\x7e]{1,100}$/;

/** The client may ask for a scope it registered, and `offline_access` when it may use refresh tokens. */
export function allowedScope(client: { scopes: string[]; grantTypes: string[] }, scope: string): boolean {
  if (client.scopes.includes(scope)) return true;
  return scope === 'offline_access' && client.grantTypes.includes('refresh_token');
}

/**
 * The scopes of an authorization request, deduplicated in the order asked; a string naming
 * the first one the client may not have otherwise. Absent: `openid` when the client has it.
 */
export function grantedScopes(client: { scopes: string[]; grantTypes: string[] }, requested: string | undefined): string[] | { refused: string } {
  const asked = requested === undefined ? (client.scopes.includes('openid') ? ['openid'] : []) : requested.split(' ').filter(Boolean);
  const out: string[] = [];
  for (const s of asked) {
    if (!SCOPE_TOKEN.test(s) || !allowedScope(client, s)) return { refused: s.slice(0, 100) };
    if (!out.includes(s)) out.push(s);
  }
  if (out.length === 0) return { refused: '' };
  return out;
}
