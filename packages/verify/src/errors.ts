/**
 * Why a token was not accepted. Codes are stable (match on `code`, not on `message`):
 *
 * - `invalid_token`: malformed, not signed by a key in the JWKS, wrong algorithm, issuer,
 *   audience or `typ`, a required claim missing or of the wrong type.
 * - `token_expired`: a valid token whose `exp` has passed (the client should refresh).
 * - `jwks_unavailable`: the key set could not be fetched or read (network, timeout, non-200,
 *   not a JWK Set). Not the token's fault: the middleware answers 503, not 401.
 */
export type VerifyErrorCode = 'invalid_token' | 'token_expired' | 'jwks_unavailable';

export class VerifyError extends Error {
  override name = 'VerifyError';
  readonly code: VerifyErrorCode;

  constructor(code: VerifyErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

export const isVerifyError = (err: unknown): err is VerifyError => err instanceof VerifyError;
