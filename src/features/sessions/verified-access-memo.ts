import type { Clock } from '../../infra/clock.js';
import type { VerifiedAccessToken } from './claims.js';
import type { TokenVerifier } from './token-verifier.js';

/**
 * Remembers, for at most `ttlMs`, the claims of access tokens that verified, keyed by
 * the exact token string, so that a client's repeated requests with the same token
 * pay for one RS256/ES256 verification (the largest share of a session check's CPU)
 * instead of one each. The memo changes nothing a verification would decide:
 * - only tokens that verified are kept; an invalid token is verified every time;
 * - `exp` is checked against the clock on every use, exactly as jose checks it;
 * - a key removed from the ring (KEYS_RELOAD_INTERVAL) stops verifying its tokens
 *   within `ttlMs` (SESSION_CACHE_TTL_MS, ≤ 2 s), far within the reload interval itself;
 * - the session behind the token is still checked on every request (the session cache
 *   has its own rules), so revocation is untouched.
 * The claims are frozen: every request shares the object.
 */
export function memoizeAccessTokens(verifier: TokenVerifier, clock: Clock, opts: { ttlMs: number; maxEntries?: number; now?: () => number }): TokenVerifier {
  if (opts.ttlMs <= 0) return verifier;
  const maxEntries = opts.maxEntries ?? 10_000;
  const now = opts.now ?? (() => performance.now());
  const memo = new Map<string, { claims: VerifiedAccessToken; until: number }>();
  return {
    ...verifier,
    async verifyAccess(token) {
      const hit = memo.get(token);
      if (hit) {
        if (hit.until > now() && hit.claims.exp > clock.now().getTime() / 1000) return hit.claims;
        memo.delete(token);
      }
      const started = now();
      const claims = await verifier.verifyAccess(token);
      if (!claims) return null;
      const frozen = Object.freeze({
        ...claims,
        roles: Object.freeze([...claims.roles]),
        permissions: Object.freeze([...claims.permissions]),
        amr: Object.freeze([...claims.amr]),
      }) as unknown as VerifiedAccessToken;
      if (memo.size >= maxEntries) {
        const oldest = memo.keys().next().value;
        if (oldest !== undefined) memo.delete(oldest);
      }
      memo.set(token, { claims: frozen, until: started + opts.ttlMs });
      return frozen;
    },
  };
}
