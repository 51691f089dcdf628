import { generateSecret } from 'otplib';
import { sha256Hex } from '../../infra/opaque-token.js';

/** A recovery code: 24 base32 characters (120 random bits), shown in groups of four. */
export const newRecoveryCode = (): string =>
  generateSecret({ length: 15 })
    .toLowerCase()
    .replace(/.{4}(?!$)/g, '$&-');

/** Case, spaces and dashes do not matter when a code is typed back. */
const normaliseRecoveryCode = (code: string) => code.toLowerCase().replace(/[\s-]/g, '');

export const hashRecoveryCode = (code: string) => sha256Hex(normaliseRecoveryCode(code));

/** Six digits: a TOTP code; anything else is taken as a recovery code. */
export const isTotpCode = (code: string) => /^\d{6}$/.test(code.replace(/\s/g, ''));
