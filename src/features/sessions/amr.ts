/**
 * What a session's `amr` (RFC 8176) proves about its sign-in. One definition for the guards
 * (`requireAmr('otp')`), the hosted pages' `acr_values=mfa` and the ID token's `acr`.
 */

/**
 * A sign-in with more than one factor: a code of the authenticator app (`otp`, after the first
 * factor), or a passkey with user verification (`hwk`/`swk` + `user`: something you have, and
 * something you are or know that the authenticator checked).
 */
export const multiFactorAmr = (amr: readonly string[]): boolean =>
  amr.includes('otp') || (amr.includes('user') && (amr.includes('hwk') || amr.includes('swk')));
