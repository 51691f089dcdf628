import { createHash, randomBytes } from 'node:crypto';

/** A secret handed to a user (emailed links, the mfa_token): 256 random bits, base64url (43 characters). */
export const newOpaqueToken = () => randomBytes(32).toString('base64url');

/** What is stored instead of such a secret: its SHA-256, hex. */
export const sha256Hex = (value: string) => createHash('sha256').update(value).digest('hex');
