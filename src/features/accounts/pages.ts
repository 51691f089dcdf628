/** The few HTML pages Tessera serves itself: results of emailed links, and the password reset form. */

import { escapeHtml } from '../../infra/html.js';

const STYLE = `
  body{margin:0;font:16px/1.5 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;background:#f4f5f7;color:#1f2328}
  main{max-width:28rem;margin:3rem auto;background:#fff;border-radius:8px;padding:2rem;box-shadow:0 1px 3px rgba(0,0,0,.1)}
  h1{font-size:1.4rem;margin:0 0 1rem}
  label{display:block;font-weight:600;margin:1rem 0 .25rem}
  input[type=password],input[type=email]{box-sizing:border-box;width:100%;padding:.6rem;font-size:1rem;border:1px solid #8c959f;border-radius:6px}
  input:focus,button:focus{outline:3px solid #0969da;outline-offset:2px}
  button{margin-top:1.25rem;padding:.7rem 1.2rem;font-size:1rem;font-weight:600;color:#fff;background:#0969da;border:0;border-radius:6px;cursor:pointer}
  .hint{color:#57606a;font-size:.9rem;margin:.25rem 0 0}
  .error{color:#a40e26;font-weight:600}
  .code{color:#57606a;font-size:.85rem}`;

function page(appName: string, title: string, body: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<link rel="icon" href="/favicon.ico">
<title>${escapeHtml(title)} · ${escapeHtml(appName)}</title>
<style>${STYLE}</style>
</head>
<body>
<main>
<h1>${escapeHtml(title)}</h1>
${body}
</main>
</body>
</html>
`;
}

export function messagePage(appName: string, title: string, message: string): string {
  return page(appName, title, `<p>${escapeHtml(message)}</p>`);
}

/** Where an error page sends the reader to fix it (a new link): a plain link, so following it changes nothing. */
export interface NextStep {
  href: string;
  label: string;
}

/** An error page that names the stable code, so support and apps can tell errors apart, and links to the fix. */
export function errorPage(appName: string, title: string, message: string, code: string, next?: NextStep): string {
  const fix = next ? `\n<p><a href="${escapeHtml(next.href)}">${escapeHtml(next.label)}</a></p>` : '';
  return page(
    appName,
    title,
    `<p class="error" role="alert">${escapeHtml(message)}</p>${fix}\n<p class="code">Error code: <code>${escapeHtml(code)}</code></p>`,
  );
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
export function requestLinkPage(appName: string, kind: keyof typeof requests): string {
  const r = requests[kind];
  return page(
    appName,
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
export function confirmFormPage(appName: string, opts: { token: string; email: string; change: boolean }): string {
  const what = opts.change
    ? `Confirm that <strong>${escapeHtml(opts.email)}</strong> should become the email address of your ${escapeHtml(appName)} account.`
    : `Confirm that <strong>${escapeHtml(opts.email)}</strong> is your email address for ${escapeHtml(appName)}.`;
  return page(
    appName,
    opts.change ? 'Confirm your new email address' : 'Confirm your email address',
    `<p>${what}</p>
<form method="post" action="confirm-email">
<input type="hidden" name="token" value="${escapeHtml(opts.token)}">
<button type="submit">Confirm email address</button>
</form>`,
  );
}

export function resetFormPage(appName: string, opts: { token: string; email: string; error?: string }): string {
  const error = opts.error ? `<p id="password-error" class="error" role="alert">${escapeHtml(opts.error)}</p>` : '';
  const describedBy = opts.error ? 'password-hint password-error' : 'password-hint';
  return page(
    appName,
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
export function emailSignInPage(appName: string, token: string): string {
  return page(
    appName,
    `Sign in to ${appName}`,
    `<p>Continue to sign in with the link we emailed you. It works once.</p>
<form method="post" action="link">
<input type="hidden" name="token" value="${escapeHtml(token)}">
<button type="submit">Sign in</button>
</form>`,
  );
}
