import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { escapeHtml } from '../../infra/html.js';

/** The built-in templates; EMAIL_TEMPLATES_DIR may override any of their files. */
export const defaultTemplatesDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../templates/email');

export const EMAIL_KINDS = [
  'confirm_email',
  'password_reset',
  'password_changed',
  'email_change_confirm',
  'email_change_notice',
  'mfa_enabled',
  'mfa_disabled',
  'mfa_recovery_codes_regenerated',
  'mfa_failed',
  'invite',
  'account_exists',
  'email_change_taken',
  'email_confirmed',
  'passkey_added',
  'passkey_removed',
  'email_sign_in',
] as const;
export type EmailKind = (typeof EMAIL_KINDS)[number];

/** The variables each kind's templates may use; anything else is refused when the templates load. */
const common = ['app_name', 'email', 'name'];
const variables: Record<EmailKind, readonly string[]> = {
  confirm_email: [...common, 'link', 'expires_in'],
  password_reset: [...common, 'link', 'expires_in'],
  password_changed: [...common, 'sign_in_methods'],
  email_change_confirm: [...common, 'link', 'expires_in'],
  email_change_notice: [...common, 'new_email'],
  mfa_enabled: common,
  mfa_disabled: common,
  mfa_recovery_codes_regenerated: common,
  mfa_failed: common,
  invite: [...common, 'link', 'expires_in'],
  account_exists: common,
  email_change_taken: common,
  email_confirmed: [...common, 'sign_in_methods'],
  passkey_added: [...common, 'passkey_name'],
  passkey_removed: [...common, 'passkey_name'],
  email_sign_in: [...common, 'code', 'link', 'expires_in'],
};

/** Anything shaped like a placeholder, so `{{ Link }}` or `{{link2}}` is caught as unknown, not sent as text. */
const PLACEHOLDER = /\{\{\s*([^{}\s]+)\s*\}\}/g;

export interface RenderedEmail {
  subject: string;
  text: string;
  html: string;
}

export class TemplateError extends Error {
  override name = 'TemplateError';
}

/** Replaces `{{name}}`; an unknown name is an error, so a typo in a template never ships a blank link. */
function fill(template: string, vars: Record<string, string>, escape: (s: string) => string, file: string): string {
  return template.replace(PLACEHOLDER, (_, name: string) => {
    const value = vars[name];
    if (value === undefined) throw new TemplateError(`${file}: unknown placeholder {{${name}}}`);
    return escape(value);
  });
}

/**
 * Loads every template once (an override first, else the built-in file), so a
 * missing or unreadable file, or an unknown placeholder, stops the process at
 * start, not at the first send.
 */
export function loadTemplates(overrideDir: string | null) {
  const parts = ['subject.txt', 'txt', 'html'] as const;
  const files = new Map<string, { source: string; file: string }>();
  for (const kind of EMAIL_KINDS) {
    for (const part of parts) {
      const name = `${kind}.${part}`;
      const candidates = overrideDir ? [path.join(overrideDir, name), path.join(defaultTemplatesDir, name)] : [path.join(defaultTemplatesDir, name)];
      let loaded: { source: string; file: string } | null = null;
      for (const file of candidates) {
        try {
          loaded = { source: readFileSync(file, 'utf8'), file };
          break;
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new TemplateError(`cannot read ${file}: ${(err as Error).message}`);
        }
      }
      if (!loaded) throw new TemplateError(`missing email template ${name}`);
      const allowed = variables[kind];
      for (const [, used = ''] of loaded.source.matchAll(PLACEHOLDER)) {
        if (!allowed.includes(used))
          throw new TemplateError(`${loaded.file}: unknown placeholder {{${used}}}; ${kind} templates can use ${allowed.map((v) => `{{${v}}}`).join(', ')}`);
      }
      files.set(name, loaded);
    }
  }
  const get = (name: string) => files.get(name) as { source: string; file: string };

  return {
    render(kind: EmailKind, vars: Record<string, string>): RenderedEmail {
      const subject = get(`${kind}.subject.txt`);
      const text = get(`${kind}.txt`);
      const html = get(`${kind}.html`);
      return {
        // One line: a newline in a subject would be a header injection.
        subject: fill(subject.source, vars, (s) => s, subject.file)
          .replace(/\s+/g, ' ')
          .trim(),
        text: fill(text.source, vars, (s) => s, text.file),
        html: fill(html.source, vars, escapeHtml, html.file),
      };
    },
  };
}

export type Templates = ReturnType<typeof loadTemplates>;
