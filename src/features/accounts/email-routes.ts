import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { AppError } from '../../errors.js';
import { authenticate, caller } from '../sessions/authenticate.js';
import { clientMeta } from '../../http/client-meta.js';
import type { PageTheme } from '../../http/page-layout.js';
import { NoContent, errorResponses, secured } from '../../http/schemas.js';
import type { SessionService } from '../sessions/service.js';
import type { EmailFlows } from './email-flows.js';
import { confirmFormPage, errorPage, messagePage, requestLinkPage, resetFormPage, type NextStep } from './pages.js';
import { Password, UserBody, toUserBody } from './schemas.js';
import type { AccountService } from './service.js';

export interface EmailRoutesOptions {
  accounts: AccountService;
  flows: EmailFlows;
  sessions: SessionService;
  /** The pages' theme (APP_NAME, logo, page templates). */
  theme: PageTheme;
  /** Where the confirmation page's form post sends the browser instead of showing a result page. */
  emailConfirmedRedirectUrl: string | null;
  /** Where GET /auth/password/reset sends the browser (with the token) instead of showing the form. */
  passwordResetUrl: string | null;
}

const Token = Type.String({ maxLength: 200, description: 'The token from the emailed link' });
const EmailBody = Type.Object({ email: Type.String({ maxLength: 320 }) }, { additionalProperties: false });
const Accepted = Type.Object({ message: Type.String() }, { description: 'Accepted' });
const HtmlPage = Type.String({ description: 'An HTML page' });

/** The errors of a link that a new link fixes. */
const spentLink = new Set(['email_token_invalid', 'email_token_expired', 'email_token_used']);

const linkTitles: Record<string, string> = {
  email_token_invalid: 'This link is not valid',
  email_token_expired: 'This link has expired',
  email_token_used: 'This link was already used',
  email_already_registered: 'This address is already in use',
};

/** One query parameter as a string ("" when absent or repeated): pages answer with a page, never a JSON error. */
const queryToken = (query: unknown): string => {
  const v = (query as Record<string, unknown> | undefined)?.token;
  return typeof v === 'string' ? v : '';
};

function html(reply: FastifyReply, status: number, body: string) {
  return reply.status(status).header('cache-control', 'no-store').type('text/html; charset=utf-8').send(body);
}

const fromForm = (request: FastifyRequest) => (request.headers['content-type'] ?? '').startsWith('application/x-www-form-urlencoded');

/** Adds `error=<code>` to an app URL. */
function withParams(url: string, params: Record<string, string>): string {
  const u = new URL(url);
  for (const [k, v] of Object.entries(params)) u.searchParams.set(k, v);
  return u.toString();
}

export const emailRoutes: FastifyPluginAsyncTypebox<EmailRoutesOptions> = async (app, opts) => {
  const { accounts, flows, theme } = opts;
  const auth = authenticate(opts.sessions);

  // "Request a new one", as a link: relative like the forms (a proxy may mount Tessera under a path);
  // the reset one goes to the app's own page when PASSWORD_RESET_URL is set (emailed reset links go there too).
  const newConfirmation: NextStep = { href: 'confirm-email/resend', label: 'Send a new confirmation email' };
  const newReset: NextStep = { href: opts.passwordResetUrl ?? 'forgot', label: 'Send a new password reset email' };

  /** A token error as a page (400) with a link to request a new one or, for the other errors, the normal JSON error. */
  function linkError(reply: FastifyReply, err: unknown, next: NextStep) {
    if (!(err instanceof AppError) || !(err.code in linkTitles)) throw err;
    return html(reply, err.status, errorPage(theme, linkTitles[err.code] ?? 'Error', err.message, err.code, spentLink.has(err.code) ? next : undefined));
  }

  // The emailed link opens a page whose button POSTs the token: link scanners and previews
  // (Outlook Safe Links, chat unfurls) fetch links with GET and HEAD, and must not confirm anything.
  app.get(
    '/auth/confirm-email',
    {
      // A malformed query (a repeated token) gets the error page below, not a JSON 422.
      attachValidation: true,
      schema: {
        tags: ['email'],
        summary: 'Open an emailed confirmation (or email-change) link: a page whose button confirms; changes nothing itself',
        description:
          'A live token gets a page with a "Confirm email address" button (a form POST to /auth/confirm-email). ' +
          'A bad token gets an error page (or, with EMAIL_CONFIRMED_REDIRECT_URL, a redirect there with `?error=<code>`). GET and HEAD never confirm.',
        querystring: Type.Object({ token: Type.Optional(Type.String()) }),
        produces: ['text/html'],
        response: { 200: HtmlPage, 303: Type.Null({ description: 'Redirect to EMAIL_CONFIRMED_REDIRECT_URL?error=<code>' }), 400: HtmlPage },
      },
    },
    async (request, reply) => {
      const token = queryToken(request.query);
      // The URL carries a token: the answer (page or redirect) is never cached (Referrer-Policy: no-referrer comes from helmet).
      reply.header('cache-control', 'no-store');
      try {
        const { email, change } = await flows.checkConfirmToken(token);
        return html(reply, 200, confirmFormPage(theme, { token, email, change }));
      } catch (err) {
        const redirect = opts.emailConfirmedRedirectUrl;
        if (redirect && err instanceof AppError && err.code in linkTitles) return reply.redirect(withParams(redirect, { error: err.code }), 303);
        return linkError(reply, err, newConfirmation);
      }
    },
  );

  app.post(
    '/auth/confirm-email',
    {
      schema: {
        tags: ['email'],
        summary: 'Confirm an email address with the emailed token',
        description:
          'Confirms the address of a new account, or completes an email change. JSON (for apps): returns the user. ' +
          'The form of GET /auth/confirm-email posts here form-encoded and gets a page back (or, with EMAIL_CONFIRMED_REDIRECT_URL, a 303 there with `?email_confirmed=true` or `?error=<code>`).',
        consumes: ['application/json', 'application/x-www-form-urlencoded'],
        body: Type.Object({ token: Token }, { additionalProperties: false }),
        response: { 200: UserBody, 303: Type.Null({ description: 'Form post: redirect to EMAIL_CONFIRMED_REDIRECT_URL' }), ...errorResponses(400, 409, 422) },
      },
    },
    async (request, reply) => {
      if (!fromForm(request)) return toUserBody(await flows.confirmEmail(request.body.token));
      const redirect = opts.emailConfirmedRedirectUrl;
      reply.header('cache-control', 'no-store');
      try {
        const user = await flows.confirmEmail(request.body.token);
        if (redirect) return reply.redirect(withParams(redirect, { email_confirmed: 'true' }), 303);
        return html(reply, 200, messagePage(theme, 'Email address confirmed', `${user.email} is confirmed. You can close this page and sign in.`));
      } catch (err) {
        if (redirect && err instanceof AppError && err.code in linkTitles) return reply.redirect(withParams(redirect, { error: err.code }), 303);
        return linkError(reply, err, newConfirmation);
      }
    },
  );

  // The pages the error pages link to: an address field whose form POSTs below. Reading them changes nothing.
  app.get(
    '/auth/confirm-email/resend',
    {
      schema: {
        tags: ['email'],
        summary: 'A page to request a new confirmation email (its form POSTs to /auth/confirm-email/resend)',
        produces: ['text/html'],
        response: { 200: HtmlPage },
      },
    },
    async (_request, reply) => html(reply, 200, requestLinkPage(theme, 'confirm')),
  );

  app.get(
    '/auth/password/forgot',
    {
      schema: {
        tags: ['email'],
        summary: 'A page to request a new password reset email (its form POSTs to /auth/password/forgot)',
        produces: ['text/html'],
        response: { 200: HtmlPage },
      },
    },
    async (_request, reply) => html(reply, 200, requestLinkPage(theme, 'reset')),
  );

  app.post(
    '/auth/confirm-email/resend',
    {
      schema: {
        tags: ['email'],
        summary: 'Send the confirmation email again',
        description:
          'Always 202 with the same body, whether or not the account exists or is confirmed. At most one mail per address per EMAIL_RESEND_INTERVAL and EMAIL_HOURLY_LIMIT per hour; extra requests are silently dropped. ' +
          'The form of GET /auth/confirm-email/resend posts here form-encoded and gets the same answer as a page.',
        consumes: ['application/json', 'application/x-www-form-urlencoded'],
        body: EmailBody,
        response: { 202: Accepted, ...errorResponses(422) },
      },
    },
    async (request, reply) => {
      await flows.resendConfirmation(request.body.email);
      const message = 'If this address belongs to an account that is not confirmed yet, a new confirmation email is on its way.';
      if (fromForm(request)) return html(reply, 202, messagePage(theme, 'Check your inbox', message));
      return reply.status(202).send({ message });
    },
  );

  app.post(
    '/auth/password/forgot',
    {
      schema: {
        tags: ['email'],
        summary: 'Email a password reset link',
        description:
          'Always 202 with the same body, whether or not the account exists. A newer link replaces older ones. Capped per address like the confirmation resend. ' +
          'The form of GET /auth/password/forgot posts here form-encoded and gets the same answer as a page.',
        consumes: ['application/json', 'application/x-www-form-urlencoded'],
        body: EmailBody,
        response: { 202: Accepted, ...errorResponses(422) },
      },
    },
    async (request, reply) => {
      await flows.requestPasswordReset(request.body.email);
      const message = 'If this address belongs to an account, a password reset email is on its way.';
      if (fromForm(request)) return html(reply, 202, messagePage(theme, 'Check your inbox', message));
      return reply.status(202).send({ message });
    },
  );

  app.get(
    '/auth/password/reset',
    {
      attachValidation: true,
      schema: {
        tags: ['email'],
        summary: 'Open an emailed reset link: the new-password form (or a redirect to PASSWORD_RESET_URL with the token)',
        querystring: Type.Object({ token: Type.Optional(Type.String()) }),
        produces: ['text/html'],
        response: { 200: HtmlPage, 302: Type.Null({ description: 'Redirect to PASSWORD_RESET_URL?token=…' }), 400: HtmlPage },
      },
    },
    async (request, reply) => {
      const token = queryToken(request.query);
      reply.header('cache-control', 'no-store');
      if (opts.passwordResetUrl) return reply.redirect(withParams(opts.passwordResetUrl, { token }), 302);
      try {
        const { email } = await flows.checkResetToken(token);
        return html(reply, 200, resetFormPage(theme, { token, email }));
      } catch (err) {
        return linkError(reply, err, newReset);
      }
    },
  );

  app.post(
    '/auth/password/reset',
    {
      schema: {
        tags: ['email'],
        summary: 'Set a new password with the emailed token; ends every session of the account',
        description: 'JSON for apps (204). The HTML form of GET /auth/password/reset posts here form-encoded and gets a page back.',
        consumes: ['application/json', 'application/x-www-form-urlencoded'],
        body: Type.Object({ token: Token, password: Password }),
        response: { 204: NoContent, 200: HtmlPage, ...errorResponses(400, 422) },
      },
    },
    async (request, reply) => {
      const { token, password } = request.body;
      if (!fromForm(request)) {
        await flows.resetPassword(token, password);
        return reply.status(204).send(null);
      }
      try {
        await flows.resetPassword(token, password);
        return html(
          reply,
          200,
          messagePage(theme, 'Password changed', 'Your new password is set and every device was signed out. You can now sign in with it.'),
        );
      } catch (err) {
        if (err instanceof AppError && err.status === 422) {
          // The address only labels the form again: a link that just expired leaves it blank; anything else (the database) is an error.
          const { email } = await flows.checkResetToken(token).catch((e: unknown) => {
            if (e instanceof AppError) return { email: '' };
            throw e;
          });
          return html(reply, 422, resetFormPage(theme, { token, email, error: err.message }));
        }
        return linkError(reply, err, newReset);
      }
    },
  );

  app.post(
    '/users/me/email',
    {
      preHandler: [auth],
      schema: {
        tags: ['users'],
        summary: 'Change your email address (needs your password)',
        description: 'Sends a confirmation link to the new address and a notice to the current one. The address changes only when the link is opened.',
        security: secured,
        body: Type.Object({ new_email: Type.String({ maxLength: 320 }), password: Type.String({ maxLength: 1024 }) }, { additionalProperties: false }),
        response: { 202: Accepted, ...errorResponses(401, 403, 409, 422, 429) },
      },
    },
    async (request, reply) => {
      await accounts.requestEmailChange(caller(request).token.sub, request.body.new_email, request.body.password, clientMeta(request));
      return reply.status(202).send({ message: 'Open the link we sent to the new address to finish the change.' });
    },
  );
};
