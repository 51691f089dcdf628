/**
 * OAUTH_REDIRECT_ALLOWLIST matching: the one-time code goes only to a URL that
 * is exactly an allow-listed one. Both sides are parsed as URLs and compared
 * whole (`href`): same scheme, host, port, path and query. Parsing lower-cases
 * the scheme and host (host names are case-insensitive) and drops a default
 * port; everything else must match character for character (a trailing slash,
 * a path suffix or another port is another URL). User info (`user@`), a
 * fragment (`#`), whitespace, control characters and backslashes are refused
 * outright, so no two parsers can disagree about where the code goes.
 */

const MAX_LENGTH = 2048;

/** The canonical form of `candidate` when it is on the allow-list, else null. */
export function allowedRedirectUri(candidate: string, allowlist: readonly string[]): string | null {
  if (candidate.length === 0 || candidate.length > MAX_LENGTH) return null;
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u0020\u007f\\#]/.test(candidate)) return null;
  let url: URL;
  try {
    url = new URL(candidate);
  } catch {
    // not a URL: not allowed
    return null;
  }
  if (url.username || url.password) return null;
  for (const entry of allowlist) {
    try {
      if (new URL(entry).href === url.href) return url.href;
    } catch {
      // config/social.ts refuses unparseable entries at boot
    }
  }
  return null;
}
