import { randomBytes } from 'node:crypto';
import { sha256Hex } from '../../infra/opaque-token.js';

const ALPHABET = 'abcdefghijklmnopqrstuvwxyz234567';

/** A recovery code: 24 base32 characters (120 random bits), shown in groups of four. */
export function newRecoveryCode(): string {
  const bytes = randomBytes(15);
  let bits = 0;
  let value = 0;
  let out = '';
  for (const b of bytes) {
    value = (value << 8) | b;
    bits += 8;
    while (bits >= 5) {
      out += ALPHABET[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  return out.match(/.{4}/g)?.join('-') ?? out;
}

/** Case, spaces and dashes do not matter when a code is typed back. */
export const normaliseRecoveryCode = (code: string) => code.toLowerCase().replace(/[\s-]/g, '');

export const hashRecoveryCode = (code: string) => sha256Hex(normaliseRecoveryCode(code));


/** Six digits: a TOTP code; anything else is taken as a recovery code. */
export const isTotpCode = (code: string) => /^\d{6}$/.test(code.replace(/\s/g, ''));
