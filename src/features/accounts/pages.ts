/** The few HTML pages Tessera serves itself: results of emailed links, and the password reset form. */

import { escapeHtml } from '../../infra/html.js';
import { renderPage, type PageTheme } from '../../http/page-layout.js';

const page = (theme: PageTheme, title: string, body: string) => renderPage(theme, title, body);

export function messagePage(theme: PageTheme, title: string, message: string): string {
  return page(theme, title, `<p>${escapeHtml(message)}</p>`);
}

/** Where an error page sends the reader to fix it (a new link): a plain link, so following it changes nothing. */
export interface NextStep {
  href: string;
  label: string;
}

/** An error page that names the stable code, so support and apps can tell errors apart, and links to the fix. */
export function errorPage(theme: PageTheme, title: string, message: string, code: string, next?: NextStep): string {
  const fix = next ? `\n<p><a href="${escapeHtml(next.href)}">${escapeHtml(next.label)}</a></p>` : '';
  return page(theme, title, `<p class="error" role="alert">${escapeHtml(message)}</p>${fix}\n<p class="code">Error code: <code>${escapeHtml(code)}</code></p>`);
}

const requests = {
  confirm: {
    title: 'Send a new confirmation email',
    intro: 'Enter the address you signed up with: if its account is not confirmed yet, a new link is on its way.',
    hint: 'Changing the address of your account? Sign in and change it again: that sends a new link to the new address.',
    action: 'resend',
  },
  reset: {
    title: 'Send a new password reset email',
    intro: 'Enter the address of your account: a new link to choose a password is on its way.',
    hint: 'A new link replaces the ones sent before.',
    action: 'forgot',
  },
} as const;

/**
 * The page an error page links to: one address field whose form POSTs to
 * /auth/confirm-email/resend or /auth/password/forgot (relative, like the other forms).
 */
export function requestLinkPage(theme: PageTheme, kind: keyof typeof requests): string {
  const r = requests[kind];
  return page(
    theme,
    r.title,
    `<p>${escapeHtml(r.intro)}</p>
<form method="post" action="${r.action}">
<label for="email">Email address</label>
<input id="email" name="email" type="email" autocomplete="email" required maxlength="320" aria-describedby="email-hint">
<p id="email-hint" class="hint">${escapeHtml(r.hint)}</p>
<button type="submit">${escapeHtml(r.title)}</button>
</form>`,
  );
}

/**
 * The page an emailed confirmation link opens: one button that POSTs the token.
 * Opening the link (GET, or the HEAD of a link scanner or preview) changes nothing.
 */
export function confirmFormPage(theme: PageTheme, opts: { token: string; email: string; change: boolean }): string {
  const what = opts.change
    ? `Confirm that <strong>${escapeHtml(opts.email)}</strong> should become the email address of your ${escapeHtml(theme.appName)} account.`
    : `Confirm that <strong>${escapeHtml(opts.email)}</strong> is your email address for ${escapeHtml(theme.appName)}.`;
  return page(
    theme,
    opts.change ? 'Confirm your new email address' : 'Confirm your email address',
    `<p>${what}</p>
<form method="post" action="confirm-email">
<input type="hidden" name="token" value="${escapeHtml(opts.token)}">
<button type="submit">Confirm email address</button>
</form>`,
  );
}

export function resetFormPage(theme: PageTheme, opts: { token: string; email: string; error?: string }): string {
  const error = opts.error ? `<p id="password-error" class="error" role="alert">${escapeHtml(opts.error)}</p>` : '';
  const describedBy = opts.error ? 'password-hint password-error' : 'password-hint';
  return page(
    theme,
    'Choose a new password',
    `<p>For <strong>${escapeHtml(opts.email)}</strong>. Every device signed in to this account will be signed out.</p>
<form method="post" action="reset">
<input type="hidden" name="token" value="${escapeHtml(opts.token)}">
<input type="text" name="username" value="${escapeHtml(opts.email)}" autocomplete="username" hidden>
<label for="password">New password</label>
<input id="password" name="password" type="password" autocomplete="new-password" required minlength="8" aria-describedby="${describedBy}"${opts.error ? ' aria-invalid="true" autofocus' : ''}>
<p id="password-hint" class="hint">At least 8 characters. A long phrase is easy to remember and hard to guess.</p>
${error}
<button type="submit">Set new password</button>
</form>`,
  );
}

/**
 * The page an emailed sign-in link opens: one button that POSTs the token (relative action, like the
 * other forms). Opening the link (GET, or the HEAD of a link scanner or preview) signs nobody in.
 */
export function emailSignInPage(theme: PageTheme, token: string): string {
  return page(
    theme,
    `Sign in to ${theme.appName}`,
    `<p>Continue to sign in with the link we emailed you. It works once.</p>
<form method="post" action="link">
<input type="hidden" name="token" value="${escapeHtml(token)}">
<button type="submit">Sign in</button>
</form>`,
  );
}
