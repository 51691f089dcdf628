import { dictionary } from '@zxcvbn-ts/language-common';
import type { ErrorCode } from '../../errors.js';

export const MIN_PASSWORD_CHARS = 8;
/** bcrypt reads only the first 72 bytes; longer passwords are refused, never truncated. */
export const MAX_PASSWORD_BYTES = 72;

// zxcvbn-ts' list of the most common leaked passwords (~49k, lower-case); only those
// long enough to pass the length rule matter.
const common = new Set(
  (dictionary['passwords-common']).filter((p) => [...p].length >= MIN_PASSWORD_CHARS),
);

/** The catalogue code that refuses `password`, or null when it is acceptable. */
export function checkPassword(password: string): ErrorCode | null {
  if ([...password].length < MIN_PASSWORD_CHARS) return 'password_too_short';
  if (Buffer.byteLength(password, 'utf8') > MAX_PASSWORD_BYTES) return 'password_too_long';
  if (common.has(password.toLowerCase())) return 'password_too_common';
  return null;
}
