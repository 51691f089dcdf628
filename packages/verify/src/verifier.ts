import { createRemoteJWKSet, customFetch, errors, jwtVerify, type JWTHeaderParameters, type FlattenedJWSInput } from 'jose';
import type { AccessTokenClaims } from './claims.js';
import { VerifyError } from './errors.js';

/** Signature algorithms a verifier may accept. Symmetric (HS*) and `none` are never accepted. */
export type Algorithm = 'RS256' | 'RS384' | 'RS512' | 'PS256' | 'PS384' | 'PS512' | 'ES256' | 'ES384' | 'ES512' | 'EdDSA' | 'Ed25519';

const ASYMMETRIC = new Set<string>(['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519']);

export const ACCESS_TOKEN_TYP = 'at+jwt';

export interface VerifierOptions {
  /** Tessera's issuer: its JWT_ISSUER, which defaults to its PUBLIC_URL (e.g. 'https://auth.example.com'). */
  issuer: string;
  /** Tessera's JWT_AUDIENCE (or several accepted audiences). */
  audience: string | string[];
  /** The JWK Set URL. Default: `${issuer}/.well-known/jwks.json` (a trailing slash on the issuer is ignored). */
  jwksUri?: string;
  /**
   * The algorithms to accept: pin what your Tessera signs with (its JWT_ALGORITHM). Default ['RS256'],
   * Tessera's default. A key is also only used for the `alg` its JWK declares.
   */
  algorithms?: Algorithm[];
  /**
   * Leeway for `exp`/`nbf` against clock skew between servers. Default 0. A token whose `iat` is
   * more than MAX_IAT_SKEW_SECONDS (30) plus this leeway in the future is refused.
   */
  clockToleranceSeconds?: number;
  /** Don't refetch the JWKS for an unknown `kid` within this long after the last fetch. Default 30 000 ms. */
  jwksCooldownMs?: number;
  /** Refetch the JWKS on the next verification once the cached set is this old. Default 600 000 ms (10 min). */
  jwksCacheMaxAgeMs?: number;
  /** Abort a JWKS fetch after this long. Default 5 000 ms. */
  jwksTimeoutMs?: number;
  /** Extra headers for the JWKS request. */
  jwksHeaders?: Record<string, string>;
  /** The fetch used for the JWKS (e.g. to go through a proxy). Default: globalThis.fetch. */
  fetch?: (url: string, init: RequestInit) => Promise<Response>;
  /** The current time (tests; servers with a mocked clock). Default: the system clock. */
  now?: () => Date | number;
}

export interface Verifier {
  /** The claims of a valid Tessera access token; throws a VerifyError otherwise. */
  verify(token: string): Promise<AccessTokenClaims>;
  /** Like verify, but null instead of throwing for an invalid or expired token (still throws `jwks_unavailable`). */
  verifyOrNull(token: string): Promise<AccessTokenClaims | null>;
  readonly issuer: string;
  readonly jwksUri: string;
  readonly algorithms: readonly Algorithm[];
}

/**
 * How far in the future `iat` may be (seconds, on top of `clockToleranceSeconds`). jose checks a
 * future `iat` only together with maxTokenAge; a token "issued" later than this is refused.
 */
export const MAX_IAT_SKEW_SECONDS = 30;

const COMPACT_JWS_RE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

const isStringArray = (v: unknown): v is string[] => Array.isArray(v) && v.every((x) => typeof x === 'string');

/** A string-array claim: absent → [], anything but an array of strings → invalid. */
function stringArray(p: Record<string, unknown>, name: string): string[] {
  const v = p[name];
  if (v === undefined) return [];
  if (!isStringArray(v)) throw new VerifyError('invalid_token', `The "${name}" claim is not an array of strings.`);
  return v;
}

function requireString(p: Record<string, unknown>, name: string): string {
  const v = p[name];
  if (typeof v !== 'string' || v === '') throw new VerifyError('invalid_token', `The "${name}" claim is missing or not a string.`);
  return v;
}

/** Errors of the JWKS lookup that say "no key for this token" (the token's fault), not "no key set". */
const isKeySelectionError = (err: unknown) =>
  err instanceof errors.JWKSNoMatchingKey || err instanceof errors.JWKSMultipleMatchingKeys || err instanceof errors.JOSENotSupported;

function toVerifyError(err: unknown): VerifyError {
  if (err instanceof VerifyError) return err;
  if (err instanceof errors.JWTExpired) return new VerifyError('token_expired', 'The access token has expired.', { cause: err });
  if (err instanceof errors.JWKSNoMatchingKey)
    return new VerifyError('invalid_token', 'The access token is not signed by a key of the issuer (unknown kid).', { cause: err });
  if (err instanceof errors.JOSEAlgNotAllowed)
    return new VerifyError('invalid_token', 'The access token is signed with an algorithm that is not accepted.', { cause: err });
  if (err instanceof errors.JWSSignatureVerificationFailed) return new VerifyError('invalid_token', 'The access token signature is invalid.', { cause: err });
  if (err instanceof errors.JWTClaimValidationFailed)
    return new VerifyError('invalid_token', `The access token is not valid here: ${err.message}`, { cause: err });
  return new VerifyError('invalid_token', 'The access token is malformed or invalid.', { cause: err });
}

/**
 * A verifier of Tessera access tokens: fetches the issuer's JWK Set (jose's createRemoteJWKSet),
 * keeps it in memory, and refetches it when a token names a `kid` it does not have (key rotation),
 * at most once per `jwksCooldownMs`. Create one per process and reuse it: the cache lives in it.
 *
 * Keys come only from `jwksUri`: the token's `jku`, `jwk`, `x5u` and `x5c` headers are never used.
 * Required: `typ: at+jwt` (so a refresh token or another JWT is refused), an accepted algorithm,
 * the issuer, the audience, and the claims exp, iat, sub, sid and jti.
 */
export function createVerifier(opts: VerifierOptions): Verifier {
  if (!opts.issuer) throw new TypeError('createVerifier: `issuer` is required.');
  const audiences = Array.isArray(opts.audience) ? opts.audience : [opts.audience];
  if (!audiences.length || audiences.some((a) => typeof a !== 'string' || !a)) throw new TypeError('createVerifier: `audience` is required.');
  const algorithms = opts.algorithms ?? ['RS256'];
  if (!algorithms.length) throw new TypeError('createVerifier: `algorithms` must not be empty.');
  for (const alg of algorithms) {
    if (!ASYMMETRIC.has(alg)) throw new TypeError(`createVerifier: algorithm ${String(alg)} is not accepted (asymmetric algorithms only).`);
  }
  const issuer = opts.issuer;
  const jwksUri = opts.jwksUri ?? `${issuer.replace(/\/+$/, '')}/.well-known/jwks.json`;
  const clockTolerance = opts.clockToleranceSeconds ?? 0;

  const remote = createRemoteJWKSet(new URL(jwksUri), {
    cooldownDuration: opts.jwksCooldownMs ?? 30_000,
    cacheMaxAge: opts.jwksCacheMaxAgeMs ?? 600_000,
    timeoutDuration: opts.jwksTimeoutMs ?? 5_000,
    ...(opts.jwksHeaders ? { headers: opts.jwksHeaders } : {}),
    ...(opts.fetch ? { [customFetch]: opts.fetch } : {}),
  });

  // Failures to get the key set become `jwks_unavailable`; "no key for this token" stays jose's error.
  const keys = async (header: JWTHeaderParameters, token: FlattenedJWSInput) => {
    try {
      return await remote(header, token);
    } catch (err) {
      if (isKeySelectionError(err)) throw err;
      throw new VerifyError('jwks_unavailable', `Could not get the signing keys from ${jwksUri}.`, { cause: err });
    }
  };

  const currentDate = () => {
    if (!opts.now) return undefined;
    const n = opts.now();
    return n instanceof Date ? n : new Date(n);
  };

  async function verify(token: string): Promise<AccessTokenClaims> {
    if (typeof token !== 'string' || !token) throw new VerifyError('invalid_token', 'No access token.');
    // RFC 7515 compact form only: three unpadded base64url segments (no padding, whitespace or other alphabets).
    if (!COMPACT_JWS_RE.test(token)) throw new VerifyError('invalid_token', 'The access token is not a compact JWS (three base64url segments).');
    let payload: Record<string, unknown>;
    try {
      const now = currentDate();
      const result = await jwtVerify(token, keys, {
        algorithms,
        issuer,
        audience: audiences,
        typ: ACCESS_TOKEN_TYP,
        requiredClaims: ['exp', 'iat', 'sub', 'sid', 'jti'],
        clockTolerance,
        ...(now ? { currentDate: now } : {}),
      });
      payload = result.payload;
    } catch (err) {
      throw toVerifyError(err);
    }
    if (typeof payload.iat !== 'number' || typeof payload.exp !== 'number') throw new VerifyError('invalid_token', 'The iat/exp claims are not numbers.');
    const nowSeconds = (currentDate() ?? new Date()).getTime() / 1000;
    if (payload.iat > nowSeconds + clockTolerance + MAX_IAT_SKEW_SECONDS)
      throw new VerifyError('invalid_token', 'The access token is not valid here: its "iat" is in the future.');
    return {
      iss: payload.iss as string,
      aud: payload.aud as string | string[],
      sub: requireString(payload, 'sub'),
      sid: requireString(payload, 'sid'),
      iat: payload.iat,
      exp: payload.exp,
      jti: requireString(payload, 'jti'),
      email: typeof payload.email === 'string' ? payload.email : '',
      email_verified: payload.email_verified === true,
      roles: stringArray(payload, 'roles'),
      permissions: stringArray(payload, 'permissions'),
      amr: stringArray(payload, 'amr'),
    };
  }

  return {
    verify,
    async verifyOrNull(token) {
      try {
        return await verify(token);
      } catch (err) {
        if (err instanceof VerifyError && err.code !== 'jwks_unavailable') return null;
        throw err;
      }
    },
    issuer,
    jwksUri,
    algorithms,
  };
}
