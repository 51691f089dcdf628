import { describe, expect, it } from 'vitest';
import { canonicalEmail, scriptsOf } from '../../src/email-address.js';

// The one parser every address goes through (register, sign-in, forgot, resend, email
// change, admin and CLI users, social profiles): plain local@domain only, the domain
// through UTS-46, stored as the ASCII form the SMTP envelope carries.

describe('canonicalEmail', () => {
  it('keeps a plain address, lower-cased and trimmed', () => {
    expect(canonicalEmail('x@example.test')).toBe('x@example.test');
    expect(canonicalEmail('  First.Last+Tag@Sub.Example.COM \n')).toBe('first.last+tag@sub.example.com');
    expect(canonicalEmail("o'brien!#$%&*+/=?^_`{|}~-@example.test")).toBe("o'brien!#$%&*+/=?^_`{|}~-@example.test");
    expect(canonicalEmail(`${'a'.repeat(64)}@example.com`)).toBe(`${'a'.repeat(64)}@example.com`);
  });

  it.each([
    ['"x"@example.test', 'a quoted local part'],
    ['x@example.test.', 'a trailing dot'],
    ['x@example.test\u3002', 'a trailing ideographic full stop (UTS-46 maps it to a dot)'],
    ['y<x@example.test>', 'a display name'],
    ['Y <x@example.test>', 'a display name with a space'],
    ['x@example.test,', 'a trailing separator'],
    ['x@example.test;', 'a trailing semicolon'],
    ['x@example.test, z@example.test', 'two addresses'],
    ['x(comment)@example.test', 'a comment'],
    ['x@(comment)example.test', 'a comment in the domain'],
    ['x@[127.0.0.1]', 'an address literal'],
    ['x@127.0.0.1', 'an IP address'],
    ['x@1.2.3.4', 'an IP address'],
    ['x\\y@example.test', 'a backslash'],
    ['x:y@example.test', 'a colon'],
    ['.x@example.test', 'a leading dot'],
    ['x.@example.test', 'a trailing dot in the local part'],
    ['x..y@example.test', 'a double dot'],
    ['x@example..test', 'an empty label'],
    ['x@.example.test', 'a leading dot in the domain'],
    ['x@-example.test', 'a label starting with a hyphen'],
    ['x@example-.test', 'a label ending with a hyphen'],
    ['x@exa_mple.test', 'an underscore in the domain'],
    ['x@ex%41mple.test', 'a percent sign in the domain (UTS-46 would decode it)'],
    ['x@localhost', 'a single label'],
    ['x@xn--zz.test', 'invalid punycode'],
    ['x@@example.test', 'two @'],
    ['x@y@example.test', 'two @'],
    ['@example.test', 'no local part'],
    ['x@', 'no domain'],
    ['x y@example.test', 'a space'],
    ['x\u00a0y@example.test', 'a no-break space'],
    ['x\u200by@example.test', 'a zero-width space'],
    ['x@exam\u00adple.test', 'a soft hyphen'],
    ['x\u202e@example.test', 'a bidi override'],
    ['x\u0007@example.test', 'a control character'],
    ['x@\u{1F4A9}.example', 'an emoji label'],
    ['x@ex\u2044ample.test', 'a symbol in the domain'],
    [`${'a'.repeat(65)}@example.com`, 'a local part over 64 bytes'],
    [`${'é'.repeat(33)}@example.com`, 'a local part over 64 UTF-8 bytes'],
    [`x@${'d'.repeat(64)}.com`, 'a label over 63'],
    [`x@${'d.'.repeat(127)}com`, 'a domain over 253'],
  ])('%j is refused (%s)', (raw) => {
    expect(canonicalEmail(raw)).toBeNull();
  });

  it('folds fullwidth and other compatibility forms to one address', () => {
    expect(canonicalEmail('x@\uff45\uff58\uff41\uff4d\uff50\uff4c\uff45.test')).toBe('x@example.test'); // ｅｘａｍｐｌｅ
    expect(canonicalEmail('x@EXAMPLE\uff0etest')).toBe('x@example.test'); // fullwidth full stop between labels
    expect(canonicalEmail('\uff38@example.test')).toBe('x@example.test'); // fullwidth Ｘ in the local part
    expect(canonicalEmail('\ufb01le@example.test')).toBe('file@example.test'); // the ﬁ ligature
    expect(canonicalEmail('x@\u24d4xample.test')).toBe('x@example.test'); // circled ⓔ
  });

  it('stores an internationalised domain as its ASCII (punycode) form; both spellings are one address', () => {
    expect(canonicalEmail('x@Bücher.example')).toBe('x@xn--bcher-kva.example');
    expect(canonicalEmail('x@xn--bcher-kva.example')).toBe('x@xn--bcher-kva.example');
    expect(canonicalEmail('x@XN--BCHER-KVA.example')).toBe('x@xn--bcher-kva.example');
    expect(canonicalEmail('x@bu\u0308cher.example')).toBe('x@xn--bcher-kva.example'); // NFD
    expect(canonicalEmail('x@例え.テスト')).toBe('x@xn--r8jz45g.xn--zckzah');
    expect(canonicalEmail('x@пример.рф')).toBe('x@xn--e1afmkfd.xn--p1ai');
    expect(canonicalEmail('x@faß.de')).toBe('x@xn--fa-hia.de'); // UTS-46 nontransitional: ß is kept
  });

  it('refuses a label that mixes scripts (a lookalike), in its Unicode or punycode form', () => {
    expect(canonicalEmail('x@\u0430pple.com')).toBeNull(); // Cyrillic а + Latin
    expect(canonicalEmail('x@xn--pple-43d.com')).toBeNull(); // the same label as punycode
    expect(canonicalEmail('x@g\u03bfogle.com')).toBeNull(); // Greek ο + Latin
    expect(canonicalEmail('p\u0430ypal@example.com')).toBeNull(); // a mixed local part
    // One script per label; a Latin top-level domain after a Cyrillic label is fine.
    expect(canonicalEmail('x@\u043f\u0440\u0438\u043c\u0435\u0440.com')).toBe('x@xn--e1afmkfd.com');
    // Japanese mixes Han, Hiragana, Katakana and Latin.
    expect(canonicalEmail('x@日本語とカナabc.jp')).not.toBeNull();
  });

  it('accepts a Unicode local part of one script (NFKC, lower-cased); it stays Unicode', () => {
    expect(canonicalEmail('JOSE\u0301@example.com')).toBe('jos\u00e9@example.com');
    expect(canonicalEmail('ПОЧТА@example.com')).toBe('почта@example.com');
  });

  it('is a fixed point', () => {
    for (const raw of ['X@Bücher.example', ' Ｘ@ｅｘａｍｐｌｅ.test', 'JOSE\u0301@example.com', 'x@例え.テスト']) {
      const once = canonicalEmail(raw);
      expect(once).not.toBeNull();
      expect(canonicalEmail(once!)).toBe(once);
    }
  });
});

describe('scriptsOf', () => {
  it('names the scripts of the letters, leaving out digits, hyphens and combining marks', () => {
    expect([...scriptsOf('abc-123')]).toEqual(['Latin']);
    expect([...scriptsOf('\u0430pple')].sort()).toEqual(['Cyrillic', 'Latin']);
    expect([...scriptsOf('e\u0301')]).toEqual(['Latin']);
    expect([...scriptsOf('日本とカナ')].sort()).toEqual(['Han', 'Hiragana', 'Katakana']);
  });
});
