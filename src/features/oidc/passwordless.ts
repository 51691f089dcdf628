/**
 * The passwordless ways to sign in on the hosted pages (docs/openid-provider.md "Passkeys and
 * email codes"): a passkey, and an emailed code or link. Each reuses its feature's service (the
 * WebAuthn verification, the code's counting) and ends like the password form: the session it
 * opens becomes the SSO browser session and the authorization request goes on
 * (`OidcFlow.continueWith`). No HTTP here.
 */
import { createHash } from 'node:crypto';
import type { AuthenticationResponseJSON } from '@simplewebauthn/server';
import { AppError, OAuthError } from '../../errors.js';
import type { EmailSignInService } from '../email-sign-in/service.js';
import type { PasskeyService, SignInOptions } from '../passkeys/service.js';
import type { ClientMeta } from '../sessions/service.js';
import type { BrowserSession } from './browser-session.js';
import type { OidcFlow, Outcome } from './service.js';

/** What the email-code pages show (the code form after a request, again after a wrong code). */
export interface CodeForm {
  kind: 'code_form';
  handle: string;
  email: string;
  error?: string;
}

export interface PasswordlessDeps {
  flow: Pick<OidcFlow, 'view' | 'continueWith'>;
  passkeys: Pick<PasskeyService, 'signInOptions' | 'signIn'>;
  emailSignIn: Pick<EmailSignInService, 'enabled' | 'request' | 'signInWithCode' | 'signInWithLink' | 'linkIsLive'>;
}

/**
 * What a hosted-page passkey flow is bound to: the pending request and this browser's CSRF cookie.
 * The flow id finishes only a sign-in of the same request in the same browser.
 */
export const passkeyBinding = (handle: string, browserKey: string) =>
  createHash('sha256').update(`hosted-passkey\n${handle}\n${browserKey}`).digest('base64url');

const EXPIRED: Outcome = {
  kind: 'error',
  code: 'authorization_request_expired',
  message: 'This sign-in has expired, was already completed, or was started in another browser. Go back to the application and start again.',
};

const waitMessage = (err: AppError) => `Too many attempts: wait ${err.retryAfterSeconds ?? 60} seconds before trying again.`;

export type PasswordlessFlow = ReturnType<typeof createPasswordlessFlow>;

export function createPasswordlessFlow(deps: PasswordlessDeps) {
  const { flow, passkeys, emailSignIn } = deps;
  const signInError = (handle: string, message: string): Outcome => ({ kind: 'form_error', page: 'sign-in', handle, message });

  return {
    emailEnabled: () => emailSignIn.enabled(),

    /** The options of a passkey sign-in for this request in this browser; null when the request is not pending here. */
    async passkeyOptions(handle: string, browserKey: string | null, sso: BrowserSession | null): Promise<SignInOptions | null> {
      if (!browserKey || !(await flow.view(handle, browserKey, sso))) return null;
      return passkeys.signInOptions(undefined, passkeyBinding(handle, browserKey));
    },

    /** The assertion navigator.credentials.get() made for those options (its JSON, as the page's form posts it). */
    async passkeySignIn(
      handle: string,
      browserKey: string | null,
      sso: BrowserSession | null,
      flowId: string,
      credential: string,
      meta: ClientMeta,
    ): Promise<Outcome> {
      let response: AuthenticationResponseJSON;
      try {
        response = JSON.parse(credential) as AuthenticationResponseJSON;
      } catch {
        // Not JSON: no ceremony to verify.
        return signInError(handle, 'The passkey sign-in did not complete. Try again.');
      }
      if (
        typeof response !== 'object' ||
        response === null ||
        typeof response.response !== 'object' ||
        response.response === null ||
        typeof response.id !== 'string'
      )
        return signInError(handle, 'The passkey sign-in did not complete. Try again.');
      try {
        return await flow.continueWith(
          handle,
          browserKey,
          sso,
          () => passkeys.signIn(flowId, response, meta, null, passkeyBinding(handle, browserKey ?? '')),
          meta,
        );
      } catch (err) {
        if (err instanceof AppError && err.code.startsWith('passkey_')) return signInError(handle, err.message);
        if (err instanceof AppError && err.code === 'rate_limited') return signInError(handle, waitMessage(err));
        throw err;
      }
    },

    /**
     * "Email me a code": the email-sign-in service mails a code and a link (bound to this request) to
     * any well-formed address, and the code form follows, the same for an address without an account.
     */
    async requestCode(handle: string, browserKey: string | null, sso: BrowserSession | null, email: string): Promise<Outcome | CodeForm> {
      if (!browserKey || !(await flow.view(handle, browserKey, sso))) return EXPIRED;
      try {
        await emailSignIn.request(email, handle);
      } catch (err) {
        if (err instanceof AppError && err.code === 'invalid_email') return signInError(handle, 'Enter a valid email address to get a sign-in code.');
        throw err;
      }
      return { kind: 'code_form', handle, email };
    },

    /** The code from the email: counted and used once by the email-sign-in service. */
    async verifyCode(
      handle: string,
      browserKey: string | null,
      sso: BrowserSession | null,
      email: string,
      code: string,
      meta: ClientMeta,
    ): Promise<Outcome | CodeForm> {
      const again = (error: string): CodeForm => ({ kind: 'code_form', handle, email, error });
      try {
        return await flow.continueWith(handle, browserKey, sso, () => emailSignIn.signInWithCode(email, code, meta), meta);
      } catch (err) {
        if (err instanceof OAuthError && err.code === 'invalid_grant') return again(err.description);
        if (err instanceof AppError && (err.code === 'sign_in_throttled' || err.code === 'rate_limited')) return again(waitMessage(err));
        if (err instanceof AppError && err.code === 'invalid_email') return signInError(handle, 'Enter a valid email address to get a sign-in code.');
        throw err;
      }
    },

    /** Whether the emailed link can continue this request in this browser (its page's GET: changes nothing). */
    async linkContinues(handle: string, browserKey: string | null, sso: BrowserSession | null, token: string): Promise<boolean> {
      if (!browserKey || !emailSignIn.enabled() || !(await flow.view(handle, browserKey, sso))) return false;
      return emailSignIn.linkIsLive(token);
    },

    /** The link page's POST: the link used once, then the request goes on in this browser. */
    async linkSignIn(handle: string, browserKey: string | null, sso: BrowserSession | null, token: string, meta: ClientMeta): Promise<Outcome> {
      try {
        return await flow.continueWith(handle, browserKey, sso, () => emailSignIn.signInWithLink(token, meta), meta);
      } catch (err) {
        if (err instanceof AppError && err.code === 'email_token_invalid') return { kind: 'error', code: err.code, message: err.message };
        if (err instanceof OAuthError && err.code === 'invalid_grant') return { kind: 'error', code: 'email_token_invalid', message: err.description };
        throw err;
      }
    },
  };
}
