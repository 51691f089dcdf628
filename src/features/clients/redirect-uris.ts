/**
 * Redirect URIs of registered clients (issue 16; docs/clients.md "Redirect URIs").
 * Registered exactly and compared exactly, with one exception from RFC 8252 §7.3:
 * a loopback IP literal (`http://127.0.0.1/…`, `http://[::1]/…`) matches on any
 * port, because a native app listens on whatever port the system gives it.
 *
 * Accepted:
 * - `https://host/path?query` (no user info, no fragment, no wildcard);
 * - `http://127.0.0.1[:port]/path` and `http://[::1][:port]/path` (RFC 8252 §7.3);
 * - private-use schemes of native apps, a reverse domain name with a dot
 *   (`com.example.app:/callback`, RFC 8252 §7.1).
 * Refused: `http://localhost` (RFC 8252 §8.3: a name can be re-pointed; use the
 * IP literal), plain http to any other host, fragments, wildcards, user info, and
 * scheme names without a dot (`javascript:`, `data:`, `file:`…).
 */

export const MAX_REDIRECT_URI_LENGTH = 2048;

const LOOPBACK_HOSTS = new Set(['127.0.0.1', '[::1]']);
/** RFC 3986 scheme, and for a private-use scheme at least one dot (a reverse domain name). */
const PRIVATE_SCHEME = /^[a-z][a-z0-9+.-]*\.[a-z0-9+.-]*[a-z0-9]$/;
const SPECIAL_SCHEMES = new Set(['http', 'https', 'ws', 'wss', 'ftp', 'file']);

/** Why `uri` cannot be registered as a redirect URI, or null when it can. */
export function redirectUriProblem(uri: string): string | null {
  if (uri.length === 0) return 'is empty';
  if (uri.length > MAX_REDIRECT_URI_LENGTH) return `is longer than ${MAX_REDIRECT_URI_LENGTH} characters`;
  if (uri.includes('#')) return 'has a fragment (#): redirect URIs must not have one (RFC 6749 §3.1.2)';
  if (uri.includes('*')) return 'has a wildcard (*): redirect URIs are registered exactly';
  // Control characters, spaces and backslashes: browsers repair them, an exact comparison would not.
  // eslint-disable-next-line no-control-regex -- control characters are what this refuses
  if (/[\s\\\u0000-\u001f\u007f]/.test(uri)) return 'has whitespace, a backslash or a control character';
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    return 'is not an absolute URI';
  }
  const scheme = url.protocol.slice(0, -1);
  if (url.username || url.password) return 'has user info (user:password@)';
  // The registered string must be the one a browser would send back, character for character.
  if (scheme === 'https') {
    if (!url.hostname) return 'has no host';
    return url.href === uri ? null : `is not in canonical form (write it as ${url.href})`;
  }
  if (scheme === 'http') {
    if (url.hostname === 'localhost')
      return 'uses http://localhost: register the loopback IP literal http://127.0.0.1:{port}/… or http://[::1]:{port}/… instead (RFC 8252 §8.3)';
    if (!LOOPBACK_HOSTS.has(url.hostname))
      return 'uses plain http: only https, a loopback IP literal (http://127.0.0.1/…) or an app scheme (com.example.app:/…) are accepted';
    return url.href === uri ? null : `is not in canonical form (write it as ${url.href})`;
  }
  if (SPECIAL_SCHEMES.has(scheme)) return `uses the scheme ${scheme}:`;
  if (!PRIVATE_SCHEME.test(scheme))
    return `uses the scheme ${scheme}: an app's own scheme must be a reverse domain name with a dot, such as com.example.app:/callback (RFC 8252 §7.1)`;
  return null;
}

/** A loopback redirect URI without its port: `http://127.0.0.1/cb` for `http://127.0.0.1:50123/cb`; null for any other URI. */
function withoutLoopbackPort(uri: string): string | null {
  if (!uri.startsWith('http://')) return null;
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    return null;
  }
  // Only a canonical URI (as registered ones are): `/a/../cb` or `%7e` must not match by normalisation.
  if (url.href !== uri || !LOOPBACK_HOSTS.has(url.hostname) || url.username || url.password || uri.includes('#')) return null;
  url.port = '';
  return url.href;
}

/**
 * Whether `presented` (from an authorization or logout request) is one of `registered`:
 * an exact string comparison, except that a loopback IP literal matches on any port.
 */
export function redirectUriMatches(registered: readonly string[], presented: string): boolean {
  if (registered.includes(presented)) return true;
  const bare = withoutLoopbackPort(presented);
  if (bare === null) return false;
  return registered.some((r) => withoutLoopbackPort(r) === bare);
}
