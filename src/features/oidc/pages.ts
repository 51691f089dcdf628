/** The hosted pages of the OpenID Provider (docs/openid-provider.md "Hosted pages"): server-rendered; the one script is the passkey button's (passwordless-pages.ts). */
import { escapeHtml } from '../../infra/html.js';
import { renderPage, templatesOf, type PageTheme } from '../../http/page-layout.js';
import { emailAutocomplete, emailCodeButton, passkeySection, type PasswordlessButtons } from './passwordless-pages.js';
import { SCOPE_DESCRIPTIONS } from './scopes.js';
import type { PageView } from './service.js';

const e = escapeHtml;

/** A text block of the page templates (UI_TEMPLATES_DIR), on its own line(s). */
const block = (html: string) => (html ? `${html}\n` : '');

function hidden(fields: Record<string, string>): string {
  return Object.entries(fields)
    .map(([k, v]) => `<input type="hidden" name="${e(k)}" value="${e(v)}">`)
    .join('\n');
}

const alert = (message: string | undefined, id: string) => (message ? `<p id="${id}" class="error" role="alert">${e(message)}</p>\n` : '');

/** A third-party provider of the sign-in page's buttons. */
export interface ProviderButton {
  id: string;
  name: string;
}

export function signInPage(
  theme: PageTheme,
  view: PageView,
  csrf: string,
  error?: string,
  providers: ProviderButton[] = [],
  passwordless?: PasswordlessButtons,
): string {
  const invalid = error ? ' aria-invalid="true" aria-describedby="sign-in-error"' : '';
  const request = e(encodeURIComponent(view.handle));
  const buttons = providers.length
    ? `\n<div class="actions providers">\n${providers
        .map((p) => `<a class="button secondary" href="/auth/ui/social/${e(encodeURIComponent(p.id))}?request=${request}">Continue with ${e(p.name)}</a>`)
        .join('\n')}\n</div>`
    : '';
  return renderPage(
    theme,
    `Sign in to ${view.client.name}`,
    `${block(templatesOf(theme).render('sign_in_intro', { app_name: theme.appName, client_name: view.client.name }))}${alert(error, 'sign-in-error')}<form method="post" action="/auth/ui/sign-in">
${hidden({ csrf, request: view.handle })}
<label for="email">Email address</label>
<input id="email" name="email" type="email" autocomplete="${emailAutocomplete(passwordless)}" required maxlength="320" value="${e(view.loginHint ?? '')}"${view.loginHint ? '' : ' autofocus'}${invalid}>
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required maxlength="1024"${view.loginHint ? ' autofocus' : ''}${invalid}>
<button type="submit">Sign in</button>${emailCodeButton(passwordless)}
</form>${passkeySection(view, csrf, passwordless)}
<p><a href="/auth/password/forgot">Forgot your password?</a></p>
<p>New here? <a href="/auth/ui/sign-up?request=${request}">Create an account</a></p>${buttons}`,
  );
}

export function signUpPage(theme: PageTheme, view: PageView, csrf: string, error?: string): string {
  const invalid = error ? ' aria-describedby="sign-up-error"' : '';
  return renderPage(
    theme,
    `Create your ${theme.appName} account`,
    `${block(templatesOf(theme).render('sign_up_intro', { app_name: theme.appName, client_name: view.client.name }))}${alert(error, 'sign-up-error')}<form method="post" action="/auth/ui/sign-up">
${hidden({ csrf, request: view.handle })}
<label for="email">Email address</label>
<input id="email" name="email" type="email" autocomplete="email" required maxlength="320" value="${e(view.loginHint ?? '')}"${invalid}>
<label for="first_name">First name (optional)</label>
<input id="first_name" name="first_name" type="text" autocomplete="given-name" maxlength="100">
<label for="last_name">Last name (optional)</label>
<input id="last_name" name="last_name" type="text" autocomplete="family-name" maxlength="100">
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="new-password" required minlength="8" maxlength="1024" aria-describedby="password-hint">
<p id="password-hint" class="hint">At least 8 characters. A long phrase is easy to remember and hard to guess.</p>
<button type="submit">Create account</button>
</form>
<p>Already have an account? <a href="/auth/ui/sign-in?request=${e(encodeURIComponent(view.handle))}">Sign in</a></p>`,
  );
}

export function messagePage(theme: PageTheme, title: string, message: string, handle: string): string {
  return renderPage(theme, title, `<p>${e(message)}</p>\n<p><a href="/auth/ui/sign-in?request=${e(encodeURIComponent(handle))}">Sign in</a></p>`);
}

export function mfaPage(theme: PageTheme, view: PageView, csrf: string, error?: string): string {
  const invalid = error ? ' aria-invalid="true" aria-describedby="code-hint code-error"' : ' aria-describedby="code-hint"';
  return renderPage(
    theme,
    'Two-step verification',
    `${alert(error, 'code-error')}<form method="post" action="/auth/ui/mfa">
${hidden({ csrf, request: view.handle })}
<label for="code">Code from your authenticator app</label>
<input id="code" name="code" type="text" inputmode="numeric" autocomplete="one-time-code" required maxlength="64" autofocus${invalid}>
<p id="code-hint" class="hint">Lost your phone? Enter one of your recovery codes instead.</p>
<button type="submit">Verify</button>
</form>`,
  );
}

export function consentPage(theme: PageTheme, view: PageView, csrf: string): string {
  const items = view.scopes.map((s) => `<li>${e(SCOPE_DESCRIPTIONS[s] ?? s)}</li>`).join('\n');
  const t = templatesOf(theme);
  const names = { app_name: theme.appName, client_name: view.client.name };
  return renderPage(
    theme,
    `Allow ${view.client.name}?`,
    `${block(t.render('consent_intro', { ...names, email: view.email }))}<ul class="scopes">
${items}
</ul>
<form method="post" action="/auth/ui/consent">
${hidden({ csrf, request: view.handle })}
<div class="actions">
<button type="submit" name="decision" value="allow">Allow</button>
<button type="submit" name="decision" value="deny" class="secondary">Cancel</button>
</div>
</form>
${block(t.render('consent_note', names))}`,
  );
}

export function selectAccountPage(theme: PageTheme, view: PageView, csrf: string): string {
  return renderPage(
    theme,
    `Continue to ${view.client.name}`,
    `<p>You are signed in as <strong>${e(view.email ?? '')}</strong>.</p>
<form method="post" action="/auth/ui/select-account">
${hidden({ csrf, request: view.handle })}
<div class="actions">
<button type="submit" name="choice" value="continue">Continue as ${e(view.email ?? '')}</button>
<button type="submit" name="choice" value="another" class="secondary">Use another account</button>
</div>
</form>`,
  );
}

export function endSessionPage(theme: PageTheme, csrf: string, f: { email: string | null; clientName: string | null; fields: Record<string, string> }): string {
  const who = f.email ? ` (<strong>${e(f.email)}</strong>)` : '';
  return renderPage(
    theme,
    'Sign out?',
    `<p>Sign out of ${e(theme.appName)}${who}${f.clientName ? ` and of the applications you signed in to here, such as <strong>${e(f.clientName)}</strong>` : ' and of the applications you signed in to here'}?</p>
<form method="post" action="/auth/end-session">
${hidden({ csrf, ...f.fields })}
<div class="actions">
<button type="submit" name="confirm" value="yes">Sign out</button>
</div>
</form>`,
  );
}

export function signedOutPage(theme: PageTheme): string {
  return renderPage(theme, 'You are signed out', block(templatesOf(theme).render('signed_out', { app_name: theme.appName })));
}

export function hostedErrorPage(theme: PageTheme, code: string, message: string): string {
  return renderPage(
    theme,
    'Something is not right',
    `<p class="error" role="alert">${e(message)}</p>\n${block(templatesOf(theme).render('error_help', { app_name: theme.appName, code }))}<p class="code">Error code: <code>${e(code)}</code></p>`,
  );
}

/** A hosted page's 429 (a rate limit of /auth/ui/*): when to try again, and the way back to the sign-in. */
export function tooManyRequestsPage(theme: PageTheme, code: string, retryAfterSeconds: number, handle: string | null): string {
  const wait = retryAfterSeconds < 120 ? `${retryAfterSeconds} seconds` : `${Math.ceil(retryAfterSeconds / 60)} minutes`;
  const back = handle ? `\n<p><a href="/auth/ui/sign-in?request=${e(encodeURIComponent(handle))}">Back to the sign-in</a></p>` : '';
  return renderPage(
    theme,
    'Too many attempts',
    `<p class="error" role="alert">Too many attempts from this network. Wait ${e(wait)}, then try again.</p>${back}
${block(templatesOf(theme).render('error_help', { app_name: theme.appName, code }))}<p class="code">Error code: <code>${e(code)}</code></p>`,
  );
}
