import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyReply } from 'fastify';
import { Type } from 'typebox';
import { OAuthError } from '../../errors.js';
import { clientMeta } from '../../http/client-meta.js';
import { OAuthErrorBody, TokenResponseBody } from '../../http/schemas.js';
import type { AccountService } from '../accounts/service.js';
import type { SessionService, TokenResponse } from '../sessions/service.js';
import type { WebFlow } from '../social/web-flow.js';
import { noStore } from '../../http/no-store.js';
import { MAX_TOKEN_LENGTH } from '../../limits.js';

export interface TokenRoutesOptions {
  accounts: AccountService;
  sessions: SessionService;
  /** `grant_type=authorization_code`: the one-time code of the third-party web sign-in (social/web-flow.ts). */
  socialCodes?: Pick<WebFlow, 'exchange'>;
}

const TokenRequest = Type.Object({
  grant_type: Type.String({ description: '`password`, `refresh_token` or `authorization_code` (third-party web sign-in)' }),
  username: Type.Optional(Type.String({ maxLength: 320, description: 'The email (grant_type=password)' })),
  password: Type.Optional(Type.String({ maxLength: 1024 })),
  refresh_token: Type.Optional(Type.String({ maxLength: MAX_TOKEN_LENGTH })),
  code: Type.Optional(Type.String({ maxLength: 256, description: 'The one-time code from the redirect (grant_type=authorization_code)' })),
  redirect_uri: Type.Optional(Type.String({ maxLength: 2048, description: 'The redirect_uri of the authorization request (grant_type=authorization_code)' })),
  code_verifier: Type.Optional(Type.String({ maxLength: 256, description: 'The PKCE verifier of the code_challenge sent to /auth/oauth/:provider/authorize (required with grant_type=authorization_code)' })),
  scope: Type.Optional(Type.String({ maxLength: 1024 })),
  client_id: Type.Optional(Type.String({ maxLength: 256 })),
});

const LoginBody = Type.Object({ email: Type.String({ maxLength: 320 }), password: Type.String({ maxLength: 1024 }) });
const RefreshBody = Type.Object({ refresh_token: Type.String({ maxLength: MAX_TOKEN_LENGTH }) });

const tokenResponses = { 200: TokenResponseBody, 400: OAuthErrorBody, 401: OAuthErrorBody, 403: OAuthErrorBody };

function sendTokens(reply: FastifyReply, tokens: TokenResponse) {
  return noStore(reply).send(tokens);
}

function required(value: string | undefined, name: string): string {
  if (value === undefined || value === '') throw new OAuthError('invalid_request', `Missing parameter: ${name}.`);
  return value;
}

export const tokenRoutes: FastifyPluginAsyncTypebox<TokenRoutesOptions> = async (app, { accounts, sessions, socialCodes }) => {
  app.post('/auth/token', {
    config: { oauthErrors: true },
    schema: {
      tags: ['auth'],
      summary: 'OAuth2 token endpoint (RFC 6749): password, refresh_token and authorization_code grants',
      description: 'Accepts `application/x-www-form-urlencoded` (as OAuth2 clients and Swagger UI send it) or JSON.',
      consumes: ['application/x-www-form-urlencoded', 'application/json'],
      body: TokenRequest,
      response: tokenResponses,
    },
  }, async (request, reply) => {
    const body = request.body;
    switch (body.grant_type) {
      case 'password':
        return sendTokens(reply, await accounts.signInWithPassword(required(body.username, 'username'), required(body.password, 'password'), clientMeta(request)));
      case 'refresh_token':
        return sendTokens(reply, await sessions.refresh(required(body.refresh_token, 'refresh_token')));
      case 'authorization_code':
        if (!socialCodes) break;
        return sendTokens(
          reply,
          await socialCodes.exchange({ code: required(body.code, 'code'), redirectUri: required(body.redirect_uri, 'redirect_uri'), codeVerifier: body.code_verifier }, clientMeta(request)),
        );
    }
    throw new OAuthError('unsupported_grant_type', `Supported grant types: password, refresh_token${socialCodes ? ', authorization_code' : ''}.`);
  });

  app.post('/auth/login', {
    config: { oauthErrors: true },
    schema: { tags: ['auth'], summary: 'Sign in with email and password (JSON)', body: LoginBody, response: tokenResponses },
  }, async (request, reply) => sendTokens(reply, await accounts.signInWithPassword(request.body.email, request.body.password, clientMeta(request))));

  app.post('/auth/refresh', {
    config: { oauthErrors: true },
    schema: { tags: ['auth'], summary: 'Exchange a refresh token for new tokens (JSON)', body: RefreshBody, response: tokenResponses },
  }, async (request, reply) => sendTokens(reply, await sessions.refresh(request.body.refresh_token)));
};
