import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import type { KeyRing } from './keys.js';

/**
 * Encrypts short secrets with AES-256-GCM. The sealed form names its key
 * (`v1.<key id>.<iv>.<ciphertext+tag>`, the key id authenticated too), so values
 * sealed under an older key still open while that key is known.
 */
export interface SecretBox {
  seal(plaintext: string): string;
  /** null when the sealed value is damaged or its key is gone. */
  open(sealed: string): string | null;
}

function boxOf(current: () => { id: string; key: Buffer }, byId: (id: string) => Buffer | undefined): SecretBox {
  return {
    seal(plaintext) {
      const { id, key } = current();
      const iv = randomBytes(12);
      const cipher = createCipheriv('aes-256-gcm', key, iv);
      cipher.setAAD(Buffer.from(id));
      const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final(), cipher.getAuthTag()]);
      return `v1.${id}.${iv.toString('base64url')}.${body.toString('base64url')}`;
    },
    open(sealed) {
      const parts = sealed.split('.');
      const [version, id, ivText, bodyText] = parts;
      const key = id ? byId(id) : undefined;
      if (parts.length !== 4 || version !== 'v1' || !id || !key || !ivText || !bodyText) return null;
      const iv = Buffer.from(ivText, 'base64url');
      const body = Buffer.from(bodyText, 'base64url');
      if (iv.length !== 12 || body.length < 16) return null;
      try {
        const decipher = createDecipheriv('aes-256-gcm', key, iv);
        decipher.setAAD(Buffer.from(id));
        decipher.setAuthTag(body.subarray(body.length - 16));
        return Buffer.concat([decipher.update(body.subarray(0, body.length - 16)), decipher.final()]).toString('utf8');
      } catch {
        // a wrong tag (tampered, or sealed under another key): not ours to open
        return null;
      }
    },
  };
}

/** Under a key derived from the signing key (email links waiting in the outbox); follows key rotation. */
export function createSecretBox(keys: KeyRing): SecretBox {
  return boxOf(
    () => {
      // Read once: the signing key may change between two reads (a pending key activating, a reload).
      const { kid, sealSecret } = keys.current;
      return { id: kid, key: sealSecret };
    },
    (kid) => keys.privateByKid(kid)?.sealSecret,
  );
}

/** Under one configured 32-byte key (MFA_ENCRYPTION_KEY), named `id` in the sealed form. */
export function createStaticBox(key: Buffer, id: string): SecretBox {
  if (key.length !== 32) throw new Error('an AES-256 key is 32 bytes');
  return boxOf(
    () => ({ id, key }),
    (given) => (given === id ? key : undefined),
  );
}
