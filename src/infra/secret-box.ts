import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import type { KeyRing } from './keys.js';

/**
 * Encrypts short secrets (an email link's token while its message waits in the
 * outbox) with AES-256-GCM under a key derived from the signing key. The sealed
 * form names the key (`kid`), so it opens after a key rotation too.
 */
export interface SecretBox {
  seal(plaintext: string): string;
  /** null when the sealed value is damaged or its key is gone. */
  open(sealed: string): string | null;
}

export function createSecretBox(keys: KeyRing): SecretBox {
  return {
    seal(plaintext) {
      const key = keys.current;
      const iv = randomBytes(12);
      const cipher = createCipheriv('aes-256-gcm', key.sealSecret, iv);
      cipher.setAAD(Buffer.from(key.kid));
      const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final(), cipher.getAuthTag()]);
      return `v1.${key.kid}.${iv.toString('base64url')}.${body.toString('base64url')}`;
    },
    open(sealed) {
      const parts = sealed.split('.');
      const [version, kid, ivText, bodyText] = parts;
      const key = kid ? keys.byKid(kid) : undefined;
      if (parts.length !== 4 || version !== 'v1' || !key || !ivText || !bodyText) return null;
      const iv = Buffer.from(ivText, 'base64url');
      const body = Buffer.from(bodyText, 'base64url');
      if (iv.length !== 12 || body.length < 16) return null;
      try {
        const decipher = createDecipheriv('aes-256-gcm', key.sealSecret, iv);
        decipher.setAAD(Buffer.from(kid ?? ''));
        decipher.setAuthTag(body.subarray(body.length - 16));
        return Buffer.concat([decipher.update(body.subarray(0, body.length - 16)), decipher.final()]).toString('utf8');
      } catch {
        return null;
      }
    },
  };
}
