import { beforeAll, describe, expect, it } from 'vitest';
import { createKeyRing, generateKeyPairPem, toSigningKey, type SigningKey } from '../../src/infra/keys.js';
import { createSecretBox } from '../../src/infra/secret-box.js';

/** `s` with the character at `i` replaced by another base64url character (every bit of a middle character is used). */
const flipChar = (s: string, i: number) => `${s.slice(0, i)}${s[i] === 'A' ? 'B' : 'A'}${s.slice(i + 1)}`;

/** The four dot-separated parts of a sealed value. */
function parts(sealed: string) {
  const [version, kid, iv, body] = sealed.split('.');
  return { version: version!, kid: kid!, iv: iv!, body: body! };
}
const join = (p: { version: string; kid: string; iv: string; body: string }) => `${p.version}.${p.kid}.${p.iv}.${p.body}`;

const newSigningKey = async (alg: 'ES256' | 'EdDSA' = 'EdDSA') => toSigningKey(generateKeyPairPem(alg).privateKey, alg, 'test');

let oldKey: SigningKey;
let newKey: SigningKey;
beforeAll(async () => {
  [oldKey, newKey] = await Promise.all([newSigningKey('EdDSA'), newSigningKey('ES256')]);
});

describe('createSecretBox', () => {
  it('round-trips a value, including empty and non-ASCII ones', () => {
    const box = createSecretBox(createKeyRing([oldKey]));
    for (const value of ['a-link-token_0123456789', '', 'émail ✉ 🔑', 'x'.repeat(5000)]) {
      const sealed = box.seal(value);
      expect(box.open(sealed)).toBe(value);
    }
  });

  it('names the current key and hides the value', () => {
    const box = createSecretBox(createKeyRing([oldKey]));
    const value = 'plain-token-value';
    const sealed = box.seal(value);
    const p = parts(sealed);
    expect(sealed.split('.')).toHaveLength(4);
    expect(p.version).toBe('v1');
    expect(p.kid).toBe(oldKey.kid);
    expect(Buffer.from(p.iv, 'base64url')).toHaveLength(12);
    // Ciphertext (as long as the value) plus a 16-byte tag.
    expect(Buffer.from(p.body, 'base64url')).toHaveLength(Buffer.byteLength(value) + 16);
    expect(sealed).not.toContain(value);
    expect(sealed).not.toContain(Buffer.from(value).toString('base64url'));
  });

  it('two seals of the same value differ (fresh IV) and both open', () => {
    const box = createSecretBox(createKeyRing([oldKey]));
    const a = box.seal('same');
    const b = box.seal('same');
    expect(a).not.toBe(b);
    expect(parts(a).iv).not.toBe(parts(b).iv);
    expect(parts(a).body).not.toBe(parts(b).body);
    expect(box.open(a)).toBe('same');
    expect(box.open(b)).toBe('same');
  });

  it('a tampered ciphertext, tag or IV does not open', () => {
    const box = createSecretBox(createKeyRing([oldKey]));
    const sealed = box.seal('a-link-token_0123456789');
    const p = parts(sealed);
    expect(box.open(join(p))).toBe('a-link-token_0123456789');

    const bodyChars = p.body.length;
    // Ciphertext bytes at the start, the tag near the end (the last character may carry unused bits).
    for (const i of [0, 5, bodyChars - 10, bodyChars - 3]) expect(box.open(join({ ...p, body: flipChar(p.body, i) })), `body[${i}]`).toBeNull();
    for (const i of [0, 7, p.iv.length - 1]) expect(box.open(join({ ...p, iv: flipChar(p.iv, i) })), `iv[${i}]`).toBeNull();

    // Truncated or extended bodies, a shorter IV, missing parts.
    expect(box.open(join({ ...p, body: p.body.slice(0, -4) }))).toBeNull();
    expect(box.open(join({ ...p, body: `${p.body}AAAA` }))).toBeNull();
    expect(box.open(join({ ...p, body: p.body.slice(0, 20) }))).toBeNull();
    expect(box.open(join({ ...p, iv: p.iv.slice(0, 8) }))).toBeNull();
    expect(box.open(join({ ...p, body: '' }))).toBeNull();
    expect(box.open(join({ ...p, iv: '' }))).toBeNull();
  });

  it('a tampered kid or version does not open', async () => {
    const other = await newSigningKey();
    const box = createSecretBox(createKeyRing([oldKey, other]));
    const p = parts(box.seal('token'));
    expect(box.open(join({ ...p, kid: flipChar(p.kid, 3) }))).toBeNull();
    expect(box.open(join({ ...p, kid: '' }))).toBeNull();
    // Another key of the same ring: wrong key and wrong associated data.
    expect(box.open(join({ ...p, kid: other.kid }))).toBeNull();
    expect(box.open(join({ ...p, version: 'v2' }))).toBeNull();
    expect(box.open(join({ ...p, version: '' }))).toBeNull();
  });

  it('garbage does not open and does not throw', () => {
    const box = createSecretBox(createKeyRing([oldKey]));
    for (const garbage of ['', '.', '...', 'v1', 'v1.x.y.z', `v1.${oldKey.kid}.!!!.???`, 'not a sealed value at all']) {
      expect(box.open(garbage), garbage).toBeNull();
    }
  });

  it('a box over a different key ring cannot open', async () => {
    const sealed = createSecretBox(createKeyRing([oldKey])).seal('token');
    expect(createSecretBox(createKeyRing([newKey])).open(sealed)).toBeNull();
    // Even when the foreign value is relabelled with the other ring's kid.
    expect(createSecretBox(createKeyRing([newKey])).open(join({ ...parts(sealed), kid: newKey.kid }))).toBeNull();
  });

  it('the same private key loaded again opens (the sealing key is derived, not random)', async () => {
    const pem = generateKeyPairPem('EdDSA').privateKey;
    const a = await toSigningKey(pem, 'EdDSA', 'first load');
    const b = await toSigningKey(pem, 'EdDSA', 'second load');
    const sealed = createSecretBox(createKeyRing([a])).seal('token');
    expect(createSecretBox(createKeyRing([b])).open(sealed)).toBe('token');
  });

  it('after a key rotation, values sealed under the previous key still open; new ones use the new key', () => {
    const before = createSecretBox(createKeyRing([oldKey])).seal('old-token');
    const rotated = createSecretBox(createKeyRing([newKey, oldKey]));
    expect(rotated.open(before)).toBe('old-token');

    const after = rotated.seal('new-token');
    expect(parts(after).kid).toBe(newKey.kid);
    expect(rotated.open(after)).toBe('new-token');
    // Once the old key is dropped, its values are gone; the new ones still open.
    const dropped = createSecretBox(createKeyRing([newKey]));
    expect(dropped.open(before)).toBeNull();
    expect(dropped.open(after)).toBe('new-token');
    // The old ring never knew the new key.
    expect(createSecretBox(createKeyRing([oldKey])).open(after)).toBeNull();
  });
});
