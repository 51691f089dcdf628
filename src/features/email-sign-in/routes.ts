import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { AppError } from '../../errors.js';
import { clientMeta } from '../../http/client-meta.js';
import { noStore } from '../../http/no-store.js';
import type { PageTheme } from '../../http/page-layout.js';
import { TokenResponseBody, errorResponses } from '../../http/schemas.js';
import { emailSignInPage, errorPage } from '../accounts/pages.js';
import type { EmailSignInService } from './service.js';

export interface EmailSignInRoutesOptions {
  emailSignIn: EmailSignInService;
  /** The pages' theme (APP_NAME, logo, page templates). */
  theme: PageTheme;
}

const Token = Type.String({ maxLength: 200, description: 'The token of the emailed link' });
const ACCEPTED = { message: 'Check your inbox: a sign-in code and link are on their way. They work once, for a few minutes.' };

export const emailSignInRoutes: FastifyPluginAsyncTypebox<EmailSignInRoutesOptions> = async (app, { emailSignIn, theme }) => {
  app.post(
    '/auth/email-code',
    {
      schema: {
        tags: ['auth'],
        summary: 'Email me a sign-in code and link (EMAIL_SIGN_IN_ENABLED)',
        description:
          'Always 202 with the same body, whether or not the address has an account (the first sign-in creates it). ' +
          'A new request replaces the previous code. Exchange the code at POST /auth/token (grant_type=urn:tessera:params:oauth:grant-type:email-code).',
        body: Type.Object({ email: Type.String({ maxLength: 320 }) }, { additionalProperties: false }),
        response: { 202: Type.Object({ message: Type.String() }), ...errorResponses(403, 422, 429) },
      },
    },
    async (request, reply) => {
      await emailSignIn.request(request.body.email);
      return reply.status(202).send(ACCEPTED);
    },
  );

  app.get(
    '/auth/email-code/link',
    {
      attachValidation: true,
      schema: {
        tags: ['auth'],
        summary: 'Open an emailed sign-in link: a page whose button signs in; changes nothing itself',
        querystring: Type.Object({ token: Type.Optional(Type.String()) }),
        produces: ['text/html'],
        response: { 200: Type.String(), 400: Type.String(), 403: Type.String() },
      },
    },
    async (request, reply) => {
      const query = request.query as { token?: unknown };
      const token = typeof query.token === 'string' ? query.token : '';
      reply.header('cache-control', 'no-store').type('text/html; charset=utf-8');
      if (!emailSignIn.enabled()) {
        const err = new AppError('email_sign_in_disabled');
        return reply.status(403).send(errorPage(theme, 'Sign-in by email is off', err.message, err.code));
      }
      if (!(await emailSignIn.linkIsLive(token))) {
        const err = new AppError('email_token_invalid', 'This sign-in link is not valid: it expired, was used, or a newer one replaced it. Ask for a new one.');
        return reply.status(400).send(errorPage(theme, 'This link is not valid', err.message, err.code));
      }
      return reply.status(200).send(emailSignInPage(theme, token));
    },
  );

  app.post(
    '/auth/email-code/link',
    {
      schema: {
        tags: ['auth'],
        summary: 'Sign in with the token of an emailed link (the page of GET /auth/email-code/link posts here) → tokens',
        consumes: ['application/json', 'application/x-www-form-urlencoded'],
        body: Type.Object({ token: Token }, { additionalProperties: false }),
        response: { 200: TokenResponseBody, ...errorResponses(400, 403) },
      },
    },
    async (request, reply) => noStore(reply).send(await emailSignIn.signInWithLink(request.body.token, clientMeta(request))),
  );
};
