import { readFileSync } from 'node:fs';
import type { ErrorCode } from '../../errors.js';

export const MIN_PASSWORD_CHARS = 8;
/** bcrypt reads only the first 72 bytes; longer passwords are refused, never truncated. */
export const MAX_PASSWORD_BYTES = 72;

// The most common leaked passwords that are long enough to pass the length rule
// (assets/README.md says where the list comes from). Same relative path from src/ and dist/.
const common = new Set(
  readFileSync(new URL('../../../assets/common-passwords.txt', import.meta.url), 'utf8')
    .split('\n')
    .filter(Boolean),
);

/** The catalogue code that refuses `password`, or null when it is acceptable. */
export function checkPassword(password: string): ErrorCode | null {
  if ([...password].length < MIN_PASSWORD_CHARS) return 'password_too_short';
  if (Buffer.byteLength(password, 'utf8') > MAX_PASSWORD_BYTES) return 'password_too_long';
  if (common.has(password.toLowerCase())) return 'password_too_common';
  return null;
}
