import type { OutgoingMail } from './transport.js';
import type { SecretBox } from '../../infra/secret-box.js';
import { canonicalEmail } from '../../email-address.js';
import type { OutboxRow } from './tables.js';
import { EMAIL_KINDS, type EmailKind, type Templates } from './templates.js';

/** Where each kind's link points. Links are built from PUBLIC_URL only, never from a request. */
const linkPaths: Partial<Record<EmailKind, string>> = {
  confirm_email: '/auth/confirm-email',
  email_change_confirm: '/auth/confirm-email',
  password_reset: '/auth/password/reset',
  invite: '/auth/password/reset',
  email_sign_in: '/auth/email-code/link',
};

/**
 * The secret of an `email_sign_in` message: the code and the link token, sealed together (email-sign-in/service.ts),
 * and the hosted page's request when the code was asked for there (its link then continues that sign-in).
 */
export const signInSecret = (code: string, token: string, request: string | null = null) => `${code}.${token}${request ? `.${request}` : ''}`;

/** The page of a hosted-page request's sign-in link (features/oidc/passwordless-routes.ts). */
const HOSTED_SIGN_IN_LINK = '/auth/ui/email-link';

/** Variables added to a kind after release: a row queued before still renders, with this value. */
const addedLater: Partial<Record<EmailKind, Record<string, string>>> = {
  // Every password_changed notice before the list existed followed a password being set.
  password_changed: { sign_in_methods: 'password' },
};

export class ComposeError extends Error {
  override name = 'ComposeError';
}

export interface ComposerOptions {
  templates: Templates;
  box: SecretBox;
  publicUrl: string;
  appName: string;
  from: string;
}

/** Turns an outbox row into a message: the link (from the sealed token), then the templates. */
export function createComposer(opts: ComposerOptions) {
  const domain = new URL(opts.publicUrl).hostname || 'tessera.local';
  return (row: OutboxRow): OutgoingMail => {
    if (!(EMAIL_KINDS as readonly string[]).includes(row.kind)) throw new ComposeError(`unknown email kind "${row.kind}"`);
    // nodemailer reads display names, quotes and lists out of a string: it only ever gets a
    // canonical address, for which what it reads is the stored string itself.
    if (canonicalEmail(row.recipient) !== row.recipient) throw new ComposeError('the recipient is not a canonical address (`tessera users check-emails`)');
    const kind = row.kind as EmailKind;
    const vars: Record<string, string> = { ...addedLater[kind], ...row.payload, app_name: opts.appName, email: row.recipient };
    const path = linkPaths[kind];
    if (path) {
      const token = row.sealedSecret ? opts.box.open(row.sealedSecret) : null;
      if (!token) throw new ComposeError('the link token cannot be decrypted (was the signing key replaced?)');
      const [code, linkToken, request] = kind === 'email_sign_in' ? token.split('.', 3) : [undefined, token];
      if (code !== undefined) vars.code = code;
      vars.link = request
        ? `${opts.publicUrl}${HOSTED_SIGN_IN_LINK}?token=${encodeURIComponent(linkToken ?? '')}&request=${encodeURIComponent(request)}`
        : `${opts.publicUrl}${path}?token=${encodeURIComponent(linkToken ?? '')}`;
    }
    const rendered = opts.templates.render(kind, vars);
    return {
      id: row.id,
      // Stable across retries, so a receiving system can recognise a duplicate.
      messageId: `<${row.id}@${domain}>`,
      from: opts.from,
      to: row.recipient,
      ...rendered,
    };
  };
}

export type Composer = ReturnType<typeof createComposer>;
