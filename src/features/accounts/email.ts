import { AppError } from '../../errors.js';

/** The one canonical form of an email: trimmed, NFC-normalised, lower-cased. */
export function normaliseEmail(raw: string): string {
  return raw.trim().normalize('NFC').toLowerCase();
}

// Deliberately simple: one @, a non-empty local part, a dotted domain, no spaces or
// control characters. Deliverability is proven by the confirmation email, not a regex.
const EMAIL_RE = /^[^\s@\p{C}]+@[^\s@\p{C}]+\.[^\s@\p{C}]+$/u;

export function isValidEmail(email: string): boolean {
  return email.length <= 254 && EMAIL_RE.test(email) && !email.includes('..') && (email.split('@')[0]?.length ?? 0) <= 64;
}

/** The canonical form of a submitted address, or 422 `invalid_email` naming `field`. */
export function validEmailFrom(raw: string, field = 'email'): string {
  const email = normaliseEmail(raw);
  if (!isValidEmail(email)) throw new AppError('invalid_email', undefined, [{ field, message: 'invalid' }]);
  return email;
}
