/**
 * The hosted pages' passwordless parts (docs/openid-provider.md "Passkeys and email codes"): the
 * passkey button and its script, the "Email me a code" button, the code form and the emailed
 * link's page. The one script is an external, same-origin file (the pages' CSP allows scripts
 * from 'self' only, never inline); without it, the password form and the email code still work.
 */
import { escapeHtml } from '../../infra/html.js';
import { renderPage, type PageTheme } from '../../http/page-layout.js';
import type { PageView } from './service.js';

const e = escapeHtml;

export const PASSKEY_SCRIPT_PATH = '/auth/ui/passkey.js';

/** Which passwordless ways the sign-in page offers. */
export interface PasswordlessButtons {
  passkeys: boolean;
  emailCode: boolean;
}

function hidden(fields: Record<string, string>): string {
  return Object.entries(fields)
    .map(([k, v]) => `<input type="hidden" name="${e(k)}" value="${e(v)}">`)
    .join('\n');
}

/** The sign-in page's email field: offered passkeys in its autofill (conditional UI) too when passkeys are on. */
export const emailAutocomplete = (b: PasswordlessButtons | undefined) => (b?.passkeys ? 'username webauthn' : 'username');

/** In the password form: the same email field, sent to /auth/ui/email-code instead (no password needed). */
export const emailCodeButton = (b: PasswordlessButtons | undefined) =>
  b?.emailCode ? '\n<button type="submit" class="secondary" formaction="/auth/ui/email-code" formnovalidate>Email me a code</button>' : '';

/**
 * After the password form: the passkey button, in a form the script fills and posts. Hidden (and the
 * button disabled) until the script finds WebAuthn in the browser: without JavaScript, or in a
 * browser without `PublicKeyCredential`, nothing shows.
 */
export function passkeySection(view: PageView, csrf: string, b: PasswordlessButtons | undefined): string {
  if (!b?.passkeys) return '';
  return `
<form id="passkey-form" method="post" action="/auth/ui/passkey" hidden>
${hidden({ csrf, request: view.handle, flow: '', credential: '' })}
<button type="button" id="passkey-button" class="secondary" disabled>Sign in with a passkey</button>
<p id="passkey-status" class="hint" role="status" aria-live="polite"></p>
</form>
<script src="${PASSKEY_SCRIPT_PATH}" defer></script>`;
}

/** After "Email me a code": the code form (the same page whether or not the address has an account). */
export function emailCodePage(theme: PageTheme, view: PageView, csrf: string, email: string, error?: string): string {
  const invalid = error ? ' aria-invalid="true" aria-describedby="email-code-hint email-code-error"' : ' aria-describedby="email-code-hint"';
  return renderPage(
    theme,
    'Check your email',
    `<p>We sent a sign-in code to <strong>${e(email)}</strong>. It works once, for a few minutes.</p>
${error ? `<p id="email-code-error" class="error" role="alert">${e(error)}</p>\n` : ''}<form method="post" action="/auth/ui/email-code/verify">
${hidden({ csrf, request: view.handle, email })}
<label for="code">Sign-in code</label>
<input id="code" name="code" type="text" inputmode="numeric" autocomplete="one-time-code" required maxlength="16" autofocus${invalid}>
<p id="email-code-hint" class="hint">Or open the link in the email, in this browser.</p>
<button type="submit">Continue</button>
</form>
<p><a href="/auth/ui/sign-in?request=${e(encodeURIComponent(view.handle))}">Use another way to sign in</a></p>`,
  );
}

/** The emailed link's page, when its request is pending in this browser: the button (a POST) signs in and goes on. */
export function emailLinkPage(theme: PageTheme, view: PageView, csrf: string, token: string): string {
  return renderPage(
    theme,
    `Sign in to ${view.client.name}`,
    `<p>Continue to sign in with the link we emailed you. It works once.</p>
<form method="post" action="/auth/ui/email-link">
${hidden({ csrf, request: view.handle, token })}
<button type="submit">Continue</button>
</form>`,
  );
}

/**
 * The passkey script. Shows the button when the browser has WebAuthn; asks the options of a flow
 * bound to this page's request and this browser's CSRF value; runs navigator.credentials.get (on a
 * click, and as conditional UI in the email field's autofill where the browser offers it); puts the
 * assertion in the form and submits it, so the answer is an ordinary navigation (the next page, or
 * the redirect to the application).
 */
export const PASSKEY_SCRIPT = `'use strict';
(function () {
  var form = document.getElementById('passkey-form');
  var C = window.PublicKeyCredential;
  if (!form || !C || !navigator.credentials || typeof navigator.credentials.get !== 'function') return;
  var button = document.getElementById('passkey-button');
  var status = document.getElementById('passkey-status');
  function field(name) { return form.querySelector('input[name="' + name + '"]'); }
  function decode(s) {
    var b = atob(s.replace(/-/g, '+').replace(/_/g, '/') + '==='.slice((s.length + 3) % 4));
    var out = new Uint8Array(b.length);
    for (var i = 0; i < b.length; i++) out[i] = b.charCodeAt(i);
    return out.buffer;
  }
  function encode(buf) {
    var bytes = new Uint8Array(buf), s = '';
    for (var i = 0; i < bytes.length; i++) s += String.fromCharCode(bytes[i]);
    return btoa(s).replace(/\\+/g, '-').replace(/\\//g, '_').replace(/=+$/, '');
  }
  function requestOptions(json) {
    if (typeof C.parseRequestOptionsFromJSON === 'function') return C.parseRequestOptionsFromJSON(json);
    var o = Object.assign({}, json, { challenge: decode(json.challenge) });
    if (json.allowCredentials) o.allowCredentials = json.allowCredentials.map(function (c) { return Object.assign({}, c, { id: decode(c.id) }); });
    return o;
  }
  function credentialJSON(c) {
    if (typeof c.toJSON === 'function') return c.toJSON();
    var r = c.response;
    var json = {
      id: c.id, rawId: encode(c.rawId), type: c.type,
      response: { clientDataJSON: encode(r.clientDataJSON), authenticatorData: encode(r.authenticatorData), signature: encode(r.signature) },
      clientExtensionResults: c.getClientExtensionResults()
    };
    if (r.userHandle) json.response.userHandle = encode(r.userHandle);
    if (c.authenticatorAttachment) json.authenticatorAttachment = c.authenticatorAttachment;
    return json;
  }
  function options() {
    return fetch('/auth/ui/passkey/options', {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ csrf: field('csrf').value, request: field('request').value })
    }).then(function (res) {
      if (!res.ok) throw new Error('options ' + res.status);
      return res.json();
    });
  }
  var pending = null;
  function run(mediation, signal) {
    return options().then(function (o) {
      var publicKey = requestOptions(o.options);
      return navigator.credentials.get(signal ? { publicKey: publicKey, mediation: mediation, signal: signal } : { publicKey: publicKey, mediation: mediation })
        .then(function (cred) {
          if (!cred) return;
          field('flow').value = o.flow_id;
          field('credential').value = JSON.stringify(credentialJSON(cred));
          form.submit();
        });
    });
  }
  form.hidden = false;
  button.disabled = false;
  button.addEventListener('click', function () {
    if (pending) { pending.abort(); pending = null; }
    status.textContent = '';
    button.disabled = true;
    run('optional', null).catch(function (err) {
      button.disabled = false;
      status.textContent = err && err.name === 'NotAllowedError'
        ? 'The passkey sign-in was cancelled or timed out. Try again, or use your password.'
        : 'The passkey sign-in did not work. Try again, or use your password.';
    });
  });
  if (typeof C.isConditionalMediationAvailable === 'function' && typeof AbortController === 'function') {
    C.isConditionalMediationAvailable().then(function (available) {
      if (!available || pending || button.disabled) return;
      pending = new AbortController();
      run('conditional', pending.signal).catch(function () { /* aborted by the button, or dismissed: the button still works */ });
    }, function () { /* no conditional UI: the button still works */ });
  }
})();
`;
