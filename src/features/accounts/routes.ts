import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { authenticate, caller } from '../sessions/authenticate.js';
import { clientMeta } from '../../http/client-meta.js';
import { NoContent, errorResponses, secured } from '../../http/schemas.js';
import type { SessionService } from '../sessions/service.js';
import { ChangePasswordBody, DeleteAccountBody, RegisterBody, UpdateProfileBody, UserBody, toUserBody, toUserBodyOfSession } from './schemas.js';
import type { AccountService } from './service.js';

export interface AccountRoutesOptions {
  accounts: AccountService;
  sessions: SessionService;
}

export const accountRoutes: FastifyPluginAsyncTypebox<AccountRoutesOptions> = async (app, { accounts, sessions }) => {
  const auth = authenticate(sessions);

  app.post(
    '/auth/register',
    {
      schema: {
        tags: ['auth'],
        summary: 'Create an account with email and password',
        body: RegisterBody,
        response: { 201: UserBody, ...errorResponses(409, 422) },
      },
    },
    async (request, reply) => {
      const { email, password, first_name, last_name } = request.body;
      const user = await accounts.register({ email, password, firstName: first_name, lastName: last_name });
      return reply.status(201).send(toUserBody(user));
    },
  );

  app.get(
    '/users/me',
    {
      preHandler: [auth],
      schema: { tags: ['users'], summary: 'The signed-in user', security: secured, response: { 200: UserBody, ...errorResponses(401) } },
    },
    async (request) => toUserBodyOfSession(caller(request).session),
  );

  app.patch(
    '/users/me',
    {
      preHandler: [auth],
      schema: {
        tags: ['users'],
        summary: 'Update your profile (names only; other fields are ignored)',
        security: secured,
        body: UpdateProfileBody,
        response: { 200: UserBody, ...errorResponses(401, 422) },
      },
    },
    async (request) => {
      const { first_name, last_name } = request.body;
      return toUserBody(await accounts.updateProfile(caller(request).token.sub, { firstName: first_name, lastName: last_name }));
    },
  );

  app.delete(
    '/users/me',
    {
      preHandler: [auth],
      schema: {
        tags: ['users'],
        summary: 'Delete your account (needs your password)',
        security: secured,
        body: DeleteAccountBody,
        response: { 204: NoContent, ...errorResponses(401, 403, 409, 422, 429) },
      },
    },
    async (request, reply) => {
      await accounts.deleteAccount(caller(request).token.sub, request.body.password, clientMeta(request));
      return reply.status(204).send(null);
    },
  );

  app.post(
    '/users/me/password',
    {
      preHandler: [auth],
      schema: {
        tags: ['users'],
        summary: 'Change your password; signs out your other sessions',
        security: secured,
        body: ChangePasswordBody,
        response: { 204: NoContent, ...errorResponses(401, 403, 422, 429) },
      },
    },
    async (request, reply) => {
      const { token } = caller(request);
      await accounts.changePassword(token.sub, token.sid, request.body.current_password, request.body.new_password, clientMeta(request));
      return reply.status(204).send(null);
    },
  );
};
