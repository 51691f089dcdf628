import { AppError } from '../../errors.js';
import { canonicalEmail } from '../../email-address.js';

export { canonicalEmail } from '../../email-address.js';

/**
 * The key an address is looked up (and rate-limited) by: its canonical form, so
 * every spelling of one mailbox finds one account; an address that is not plain
 * (stored before the canonical form existed: `tessera users check-emails`) falls
 * back to the old trimmed, NFC, lower-cased form.
 */
export function normaliseEmail(raw: string): string {
  return canonicalEmail(raw) ?? raw.trim().normalize('NFC').toLowerCase();
}

/** The canonical form of a submitted address, or 422 `invalid_email` naming `field`. */
export function validEmailFrom(raw: string, field = 'email'): string {
  const email = canonicalEmail(raw);
  if (email === null) throw new AppError('invalid_email', undefined, [{ field, message: 'invalid' }]);
  return email;
}
