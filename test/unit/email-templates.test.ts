import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ComposeError, createComposer } from '../../src/features/mail/compose.js';
import { EMAIL_KINDS, TemplateError, defaultTemplatesDir, loadTemplates, type EmailKind } from '../../src/features/mail/templates.js';
import type { OutboxRow } from '../../src/features/mail/tables.js';
import { createKeyRing, generateKeyPairPem, toSigningKey } from '../../src/infra/keys.js';
import { createSecretBox, type SecretBox } from '../../src/infra/secret-box.js';
import { testKeys } from '../helpers/keys.js';

/** The error `fn` throws, checked to be a `type`; fails the test when it returns or throws something else. */
function thrownBy<T extends Error>(fn: () => unknown, type: abstract new (...args: never[]) => T): T {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(type);
    return err as T;
  }
  throw new Error('did not throw');
}

const templateError = (fn: () => unknown) => thrownBy(fn, TemplateError);
const composeError = (fn: () => unknown) => thrownBy(fn, ComposeError);

// An `&` in the link: the HTML part must carry it as `&amp;`.
const LINK = 'https://auth.example.com/auth/confirm-email?token=abc-123&next=%2Fhome';
const ESCAPED_LINK = 'https://auth.example.com/auth/confirm-email?token=abc-123&amp;next=%2Fhome';

/** Every variable each kind's default templates use. */
const varsFor: Record<EmailKind, Record<string, string>> = {
  confirm_email: { name: 'Ada', email: 'ada@example.com', app_name: 'Tessera', link: LINK, expires_in: '24 hours' },
  password_reset: { name: 'Ada', email: 'ada@example.com', app_name: 'Tessera', link: LINK, expires_in: '30 minutes' },
  password_changed: { name: 'Ada', email: 'ada@example.com', app_name: 'Tessera', sign_in_methods: 'password, Google' },
  email_change_confirm: { name: 'Ada', email: 'ada.new@example.com', app_name: 'Tessera', link: LINK, expires_in: '24 hours' },
  email_change_notice: { name: 'Ada', email: 'ada@example.com', new_email: 'ada.new@example.com', app_name: 'Tessera' },
  mfa_enabled: { name: 'Ada', email: 'ada@example.com', app_name: 'Tessera' },
  mfa_disabled: { name: 'Ada', email: 'ada@example.com', app_name: 'Tessera' },
  mfa_recovery_codes_regenerated: { name: 'Ada', email: 'ada@example.com', app_name: 'Tessera' },
  mfa_failed: { name: 'Ada', email: 'ada@example.com', app_name: 'Tessera' },
  invite: { name: 'Ada', email: 'ada@example.com', app_name: 'Tessera', link: LINK, expires_in: '24 hours' },
  account_exists: { name: 'Ada', email: 'ada@example.com', app_name: 'Tessera' },
  email_change_taken: { name: 'Ada', email: 'ada@example.com', app_name: 'Tessera' },
  email_confirmed: { name: 'Ada', email: 'ada@example.com', app_name: 'Tessera', sign_in_methods: 'password, Google' },
  passkey_added: { name: 'Ada', email: 'ada@example.com', app_name: 'Tessera', passkey_name: 'Laptop' },
  passkey_removed: { name: 'Ada', email: 'ada@example.com', app_name: 'Tessera', passkey_name: 'Laptop' },
  email_sign_in: { name: 'Ada', email: 'ada@example.com', app_name: 'Tessera', code: '123456', link: LINK, expires_in: '10 minutes' },
};
const LINK_KINDS: EmailKind[] = ['confirm_email', 'password_reset', 'email_change_confirm'];

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'tessera-templates-'));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** A fresh override directory holding only `files`. */
function overrideDir(files: Record<string, string>): string {
  const d = mkdtempSync(path.join(dir, 'override-'));
  for (const [name, source] of Object.entries(files)) writeFileSync(path.join(d, name), source);
  return d;
}

describe('default templates', () => {
  const templates = loadTemplates(null);

  it('cover every kind', () => {
    expect([...EMAIL_KINDS].sort()).toEqual([
      'account_exists',
      'confirm_email',
      'email_change_confirm',
      'email_change_notice',
      'email_change_taken',
      'email_confirmed',
      'email_sign_in',
      'invite',
      'mfa_disabled',
      'mfa_enabled',
      'mfa_failed',
      'mfa_recovery_codes_regenerated',
      'passkey_added',
      'passkey_removed',
      'password_changed',
      'password_reset',
    ]);
    expect(path.isAbsolute(defaultTemplatesDir)).toBe(true);
  });

  it.each(EMAIL_KINDS)('%s renders: one-line subject, every placeholder filled', (kind) => {
    const { subject, text, html } = templates.render(kind, varsFor[kind]);
    expect(subject.length).toBeGreaterThan(0);
    expect(subject).not.toMatch(/[\r\n]/);
    expect(subject).toBe(subject.trim());
    expect(subject).toContain('Tessera');
    for (const part of [subject, text, html]) {
      expect(part).not.toContain('{{');
      expect(part).not.toContain('}}');
    }
    expect(text).toContain('Hello Ada,');
    expect(html).toContain('Hello Ada,');
    expect(html).toMatch(/^<!doctype html>/i);
    expect(text).toContain(varsFor[kind].email);
    expect(html).toContain(varsFor[kind].email);
  });

  it.each(LINK_KINDS)('%s: the text has the link as is, the HTML has it escaped, and both say when it expires', (kind) => {
    const { subject, text, html } = templates.render(kind, varsFor[kind]);
    expect(text).toContain(LINK);
    expect(html).toContain(`href="${ESCAPED_LINK}"`);
    expect(html).not.toContain(LINK);
    expect(subject).not.toContain(LINK);
    expect(text).toContain(varsFor[kind].expires_in);
    expect(html).toContain(varsFor[kind].expires_in);
  });

  it('email_change_notice names both addresses', () => {
    const { text, html } = templates.render('email_change_notice', varsFor.email_change_notice);
    for (const part of [text, html]) {
      expect(part).toContain('ada@example.com');
      expect(part).toContain('ada.new@example.com');
    }
  });

  it('a link kind rendered without its link is a TemplateError naming the file, not a blank link', () => {
    const vars = { ...varsFor.password_reset };
    delete vars.link;
    const err = templateError(() => templates.render('password_reset', vars));
    expect(err.message).toContain('{{link}}');
    expect(err.message).toContain(path.join(defaultTemplatesDir, 'password_reset'));
  });

  it('escapes HTML in the HTML part only', () => {
    const nasty = `<script>&"'`;
    const { subject, text, html } = templates.render('confirm_email', { ...varsFor.confirm_email, name: nasty, app_name: nasty });
    expect(html).toContain('Hello &lt;script&gt;&amp;&quot;&#39;,');
    expect(html).not.toContain('<script>');
    expect(text).toContain(`Hello ${nasty},`);
    // The subject is a header, not HTML: it is not escaped.
    expect(subject).toBe(`Confirm your email address for ${nasty}`);
  });

  it('takes values literally: no $-patterns, no placeholders inside values', () => {
    const { text, html } = templates.render('password_changed', { ...varsFor.password_changed, name: "$& $1 $$ $' {{email}}" });
    expect(text).toContain("Hello $& $1 $$ $' {{email}},");
    expect(html).toContain('Hello $&amp; $1 $$ $&#39; {{email}},');
  });
});

describe('EMAIL_TEMPLATES_DIR overrides', () => {
  it('replaces only the files it holds; the others stay the defaults', () => {
    const defaults = loadTemplates(null);
    const d = overrideDir({ 'confirm_email.subject.txt': 'Welcome to {{app_name}}, {{name}}!\n' });
    const templates = loadTemplates(d);

    const rendered = templates.render('confirm_email', varsFor.confirm_email);
    const original = defaults.render('confirm_email', varsFor.confirm_email);
    expect(rendered.subject).toBe('Welcome to Tessera, Ada!');
    expect(rendered.text).toBe(original.text);
    expect(rendered.html).toBe(original.html);
    for (const kind of EMAIL_KINDS.filter((k) => k !== 'confirm_email')) {
      expect(templates.render(kind, varsFor[kind])).toEqual(defaults.render(kind, varsFor[kind]));
    }
  });

  it('overrides a body part, with `{{ name }}` spacing allowed', () => {
    const d = overrideDir({ 'password_reset.txt': 'Hi {{ name }}: {{link}}', 'password_reset.html': '<a href="{{ link }}">{{name}}</a>' });
    const { subject, text, html } = loadTemplates(d).render('password_reset', varsFor.password_reset);
    expect(text).toBe(`Hi Ada: ${LINK}`);
    expect(html).toBe(`<a href="${ESCAPED_LINK}">Ada</a>`);
    expect(subject).toBe('Reset your Tessera password');
  });

  it('an unknown placeholder stops loading with a TemplateError naming the file and the allowed ones', () => {
    for (const [file, bad] of [
      ['password_reset.html', '<p>{{name}} {{nope}}</p>'],
      ['password_reset.txt', 'Open {{ Link }} now'],
      ['password_reset.subject.txt', 'Reset {{link2}}'],
      // A link in a notice that has none would render blank.
      ['password_changed.txt', 'Go to {{link}}'],
    ] as const) {
      const d = overrideDir({ [file]: bad });
      const err = templateError(() => loadTemplates(d));
      expect(err.name).toBe('TemplateError');
      expect(err.message).toContain(path.join(d, file));
      expect(err.message).toMatch(/unknown placeholder \{\{\S+\}\}/);
      expect(err.message).toContain('{{app_name}}');
    }
  });

  it('a value shaped like a placeholder is rendered as text, never expanded', () => {
    const templates = loadTemplates(null);
    expect(templates.render('password_changed', { app_name: 'A', email: 'e@x.io', name: '{{email}}', sign_in_methods: 'password' }).text).toContain(
      'Hello {{email}},',
    );
  });

  it('an override that is not a readable file stops loading with a TemplateError', () => {
    const d = overrideDir({});
    // A directory where a file should be: EISDIR, not ENOENT, so no silent fallback to the default.
    mkdirSync(path.join(d, 'confirm_email.txt'));
    const err = templateError(() => loadTemplates(d));
    expect(err.message).toContain(`cannot read ${path.join(d, 'confirm_email.txt')}`);
  });

  it('a missing override directory falls back to the defaults', () => {
    const templates = loadTemplates(path.join(dir, 'does-not-exist'));
    expect(templates.render('password_changed', varsFor.password_changed)).toEqual(loadTemplates(null).render('password_changed', varsFor.password_changed));
  });
});

describe('subjects are one line', () => {
  it('a newline in a value cannot add a header', () => {
    const d = overrideDir({ 'password_changed.subject.txt': 'Password changed for {{name}}\n\n' });
    const { subject } = loadTemplates(d).render('password_changed', {
      ...varsFor.password_changed,
      name: 'Ada\r\nBcc: victim@example.com\nX-Evil:  yes\t',
    });
    expect(subject).not.toMatch(/[\r\n]/);
    expect(subject).toBe('Password changed for Ada Bcc: victim@example.com X-Evil: yes');
  });

  it('a template spread over several lines becomes one line', () => {
    const d = overrideDir({ 'password_changed.subject.txt': '  Your {{app_name}}\r\n   password\n\nwas changed  \n' });
    expect(loadTemplates(d).render('password_changed', varsFor.password_changed).subject).toBe('Your Tessera password was changed');
  });
});

describe('createComposer', () => {
  const publicUrl = 'https://auth.example.com';
  const from = 'Tessera <no-reply@auth.example.com>';
  const templates = loadTemplates(null);
  let box: SecretBox;
  beforeAll(async () => {
    box = createSecretBox((await testKeys('EdDSA')).ring);
  });
  const composer = (appName = 'Tessera', url = publicUrl) => createComposer({ templates, box, publicUrl: url, appName, from });

  function row(over: Partial<OutboxRow>): OutboxRow {
    const now = new Date('2030-01-01T00:00:00Z');
    return {
      id: '6f1c2a44-2f0e-4c43-9d0b-0d6b1e4f7a10',
      kind: 'confirm_email',
      recipient: 'ada@example.com',
      payload: { name: 'Ada', expires_in: '24 hours' },
      sealedSecret: null,
      status: 'sending',
      attempts: 1,
      lastError: null,
      availableAt: now,
      lockedUntil: null,
      createdAt: now,
      queuedAt: null,
      sentAt: null,
      messageId: null,
      ...over,
    };
  }

  const expectedPath: Array<[EmailKind, string]> = [
    ['confirm_email', '/auth/confirm-email'],
    ['email_change_confirm', '/auth/confirm-email'],
    ['password_reset', '/auth/password/reset'],
  ];

  it.each(expectedPath)('%s: the link is PUBLIC_URL + %s + the unsealed token', (kind, linkPath) => {
    const compose = composer('Acme');
    const token = 'tok+/=&?x';
    const mail = compose(row({ kind, sealedSecret: box.seal(token) }));
    const link = `${publicUrl}${linkPath}?token=${encodeURIComponent(token)}`;
    expect(link).toContain('tok%2B%2F%3D%26%3Fx');
    expect(mail.text).toContain(link);
    expect(mail.html).toContain(`href="${link}"`);
    expect(mail.to).toBe('ada@example.com');
    expect(mail.from).toBe(from);
    expect(mail.id).toBe('6f1c2a44-2f0e-4c43-9d0b-0d6b1e4f7a10');
    expect(mail.subject).toContain('Acme');
    expect(mail.text).toContain('ada@example.com');
    // The raw token appears nowhere unencoded.
    expect(mail.text).not.toContain(token);
  });

  it('the Message-ID is <row id@PUBLIC_URL host>, the same on every attempt', () => {
    const compose = composer('Tessera', 'https://auth.example.com:8443');
    const r = row({ kind: 'password_changed' });
    const first = compose(r);
    const again = compose({ ...r, attempts: 2 });
    expect(first.messageId).toBe('<6f1c2a44-2f0e-4c43-9d0b-0d6b1e4f7a10@auth.example.com>');
    expect(again.messageId).toBe(first.messageId);
    expect(compose(row({ id: '00000000-0000-4000-8000-000000000001', kind: 'password_changed' })).messageId).toBe(
      '<00000000-0000-4000-8000-000000000001@auth.example.com>',
    );
  });

  it('the recipient is {{email}} and APP_NAME is {{app_name}}, whatever the payload says', () => {
    const compose = composer('Acme');
    const mail = compose(row({ kind: 'password_changed', payload: { name: 'Ada', email: 'other@example.com', app_name: 'Evil' } }));
    expect(mail.text).toContain('(ada@example.com)');
    expect(mail.text).not.toContain('other@example.com');
    expect(mail.subject).toBe('Your Acme password was changed');
  });

  it('a password_changed row queued before it listed the sign-in methods still renders; a new one lists them', () => {
    const compose = composer();
    expect(compose(row({ kind: 'password_changed', payload: { name: 'Ada' } })).text).toContain('Ways to sign in to your account now: password.');
    expect(compose(row({ kind: 'password_changed', payload: { name: 'Ada', sign_in_methods: 'password, GitHub' } })).text).toContain(
      'Ways to sign in to your account now: password, GitHub.',
    );
  });

  it('kinds without a link need no secret', () => {
    const compose = composer();
    const mail = compose(row({ kind: 'email_change_notice', payload: { name: 'Ada', new_email: 'new@example.com' } }));
    expect(mail.text).toContain('new@example.com');
    expect(mail.text).not.toContain('http');
  });

  it('a recipient that is not a canonical address is a ComposeError: nodemailer never re-reads a stored string', () => {
    const compose = composer();
    for (const recipient of ['y<ada@example.com>', '"ada"@example.com', 'ada@example.com,', 'ada@example.com.', 'Ada@Example.com', 'ada@bücher.example']) {
      expect(composeError(() => compose(row({ kind: 'password_changed', recipient }))).message, recipient).toContain('not a canonical address');
    }
    expect(compose(row({ kind: 'password_changed', recipient: 'ada@xn--bcher-kva.example' })).to).toBe('ada@xn--bcher-kva.example');
  });

  it('an unknown kind is a ComposeError', () => {
    const compose = composer();
    const err = composeError(() => compose(row({ kind: 'newsletter' })));
    expect(err.message).toContain('newsletter');
    composeError(() => compose(row({ kind: 'toString' })));
  });

  it('a missing, damaged or foreign sealed secret is a ComposeError', async () => {
    const compose = composer();
    const otherKey = await toSigningKey(generateKeyPairPem('EdDSA').privateKey, 'EdDSA', 'other');
    const foreign = createSecretBox(createKeyRing([otherKey])).seal('tok');
    const sealed = box.seal('tok');
    // The ciphertext with one character changed (not the last one, which may carry unused bits).
    const i = sealed.length - 10;
    const damaged = `${sealed.slice(0, i)}${sealed[i] === 'A' ? 'B' : 'A'}${sealed.slice(i + 1)}`;
    for (const sealedSecret of [null, '', 'garbage', foreign, damaged]) {
      const err = composeError(() => compose(row({ kind: 'password_reset', sealedSecret })));
      expect(err.message).toContain('cannot be decrypted');
    }
    // The intact one composes.
    expect(compose(row({ kind: 'password_reset', sealedSecret: sealed })).text).toContain('?token=tok');
  });
});
