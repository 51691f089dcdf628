/** Field-level detail of a validation error: `{field, message}`. */
export interface ErrorDetail {
  field: string;
  message: string;
}

/**
 * An error answered by Tessera. `code` is the server's stable `error` code
 * (`invalid_grant`, `invalid_mfa_code`, `session_revoked`, …; see docs/errors.md):
 * match on it, never on the message. The SDK adds codes of its own:
 * `not_signed_in` (a call that needs a session, without one; status 0),
 * `pkce_verifier_missing` (`exchangeSocialCode` without the verifier of
 * `socialAuthorizeUrl`; status 0), `unexpected_response` (a body that is
 * not Tessera's JSON), and those of the redirect flow (status 0):
 * `issuer_mismatch`, `state_mismatch`, `redirect_uri_mismatch`,
 * `authorization_request_missing`, `id_token_invalid`, `invalid_callback`.
 */
export class TesseraError extends Error {
  override readonly name = 'TesseraError';
  /** The server's stable error code. */
  readonly code: string;
  /** HTTP status (0 for errors raised by the SDK itself). */
  readonly status: number;
  /** The human-readable text (`error_description` or `message`); may be reworded between releases. */
  readonly description: string;
  readonly details: ErrorDetail[] | undefined;
  /** The parsed response body, when there was one. */
  readonly body: unknown;

  constructor(code: string, status: number, description: string, details?: ErrorDetail[], body?: unknown) {
    super(description || code);
    this.code = code;
    this.status = status;
    this.description = description;
    this.details = details;
    this.body = body;
  }
}

/** `fetch` itself failed (offline, DNS, connection refused, CORS, aborted): no answer from the server. Tokens are kept. */
export class TesseraNetworkError extends Error {
  override readonly name = 'TesseraNetworkError';
  override readonly cause: unknown;

  constructor(message: string, cause: unknown) {
    super(message);
    this.cause = cause;
  }
}

/** Builds a TesseraError from either of Tessera's two error shapes. */
export function errorFromBody(status: number, body: unknown): TesseraError {
  if (body && typeof body === 'object' && typeof (body as { error?: unknown }).error === 'string') {
    const b = body as { error: string; error_description?: unknown; message?: unknown; details?: unknown };
    const description = typeof b.error_description === 'string' ? b.error_description : typeof b.message === 'string' ? b.message : '';
    const details = Array.isArray(b.details) ? (b.details as ErrorDetail[]) : undefined;
    return new TesseraError(b.error, status, description, details, body);
  }
  return new TesseraError('unexpected_response', status, `Unexpected response (HTTP ${status}).`, undefined, body);
}
