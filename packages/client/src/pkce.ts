/**
 * PKCE (RFC 7636, S256) with Web Crypto only: browsers, Node 20+, and React Native
 * with a Web Crypto polyfill (`crypto.getRandomValues` and `crypto.subtle.digest`).
 */

interface WebCrypto {
  getRandomValues<T extends ArrayBufferView>(array: T): T;
  subtle: { digest(algorithm: string, data: ArrayBufferView | ArrayBuffer): Promise<ArrayBuffer> };
}

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

/** base64url without padding, by hand: neither Buffer nor btoa exists everywhere the SDK runs. */
export function base64url(bytes: Uint8Array): string {
  let out = '';
  for (let i = 0; i < bytes.length; i += 3) {
    const n = ((bytes[i] ?? 0) << 16) | ((bytes[i + 1] ?? 0) << 8) | (bytes[i + 2] ?? 0);
    const chars = [18, 12, 6, 0].map((shift) => ALPHABET[(n >> shift) & 63]);
    out += chars.slice(0, Math.min(4, bytes.length - i + 1)).join('');
  }
  return out;
}

function webCrypto(): WebCrypto {
  const c = (globalThis as { crypto?: Partial<WebCrypto> }).crypto;
  if (!c?.getRandomValues || !c.subtle?.digest) {
    throw new Error('Web Crypto (crypto.getRandomValues and crypto.subtle.digest) is not available; in React Native, install a Web Crypto polyfill.');
  }
  return c as WebCrypto;
}

/** `bytes` random bytes, base64url: for `state` and `nonce`. */
export function randomToken(bytes = 32): string {
  return base64url(webCrypto().getRandomValues(new Uint8Array(bytes)));
}

/** A new verifier (32 random bytes: 43 base64url characters) and its S256 challenge. */
export async function createPkce(): Promise<{ verifier: string; challenge: string }> {
  const crypto = webCrypto();
  const verifier = base64url(crypto.getRandomValues(new Uint8Array(32)));
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier));
  return { verifier, challenge: base64url(new Uint8Array(digest)) };
}
