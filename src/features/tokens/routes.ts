import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { OAuthError } from '../../errors.js';
import { clientMeta } from '../../http/client-meta.js';
import { OAuthErrorBody, TokenResponseBody } from '../../http/schemas.js';
import type { AccountService } from '../accounts/service.js';
import { EMAIL_CODE_GRANT, type EmailSignInService } from '../email-sign-in/service.js';
import type { ClientMeta, IssuingClient, SessionService, TokenResponse } from '../sessions/service.js';
import type { ClientAuthenticator, TokenClient } from './token-client.js';
import { noStore } from '../../http/no-store.js';
import { MAX_TOKEN_LENGTH } from '../../limits.js';

export interface TokenRoutesOptions {
  accounts: AccountService;
  sessions: SessionService;
  /** `grant_type=authorization_code`: the one-time code of the third-party web sign-in (social/web-flow.ts). */
  socialCodes?: CodeExchange;
  /** The client registry (docs/clients.md): authenticates the client a token request names. */
  authenticateClient: ClientAuthenticator;
  /** `grant_type=authorization_code` with a registered client: the codes of the OpenID Provider's hosted flow (features/oidc). */
  clientCodes?: ClientCodeExchange;
  /** PASSWORD_GRANT_ENABLED: false refuses grant_type=password (and POST /auth/login) with unsupported_grant_type. */
  passwordGrant: boolean;
  /** `grant_type=urn:tessera:params:oauth:grant-type:email-code`: an emailed code (`email`, `code`) or link token (`token`). */
  emailCodes?: Pick<EmailSignInService, 'signInWithCode' | 'signInWithLink'>;
}

const TokenRequest = Type.Object({
  grant_type: Type.String({
    description:
      '`password`, `refresh_token`, `authorization_code` (third-party web sign-in) or `urn:tessera:params:oauth:grant-type:email-code` (an emailed code)',
  }),
  username: Type.Optional(Type.String({ maxLength: 320, description: 'The email (grant_type=password)' })),
  password: Type.Optional(Type.String({ maxLength: 1024 })),
  refresh_token: Type.Optional(Type.String({ maxLength: MAX_TOKEN_LENGTH })),
  code: Type.Optional(
    Type.String({ maxLength: 256, description: 'The one-time code from the redirect (grant_type=authorization_code), or the emailed code (email-code grant)' }),
  ),
  email: Type.Optional(Type.String({ maxLength: 320, description: 'The address the code was sent to (email-code grant)' })),
  token: Type.Optional(Type.String({ maxLength: 200, description: "The emailed link's token instead of email + code (email-code grant)" })),
  redirect_uri: Type.Optional(Type.String({ maxLength: 2048, description: 'The redirect_uri of the authorization request (grant_type=authorization_code)' })),
  code_verifier: Type.Optional(
    Type.String({
      maxLength: 256,
      description: 'The PKCE verifier of the code_challenge sent to /auth/oauth/:provider/authorize (required with grant_type=authorization_code)',
    }),
  ),
  scope: Type.Optional(Type.String({ maxLength: 1024 })),
  client_id: Type.Optional(
    Type.String({
      maxLength: 256,
      description: 'A registered client: with client_secret (client_secret_post), alone (a public client), or with client_assertion',
    }),
  ),
  client_secret: Type.Optional(Type.String({ maxLength: 1024, description: 'client_secret_post (or send HTTP Basic: client_secret_basic)' })),
  client_assertion: Type.Optional(Type.String({ maxLength: 8192, description: "private_key_jwt (RFC 7523): a JWT signed with the client's registered key" })),
  client_assertion_type: Type.Optional(
    Type.String({ maxLength: 128, description: '`urn:ietf:params:oauth:client-assertion-type:jwt-bearer` with client_assertion' }),
  ),
});

const LoginBody = Type.Object({ email: Type.String({ maxLength: 320 }), password: Type.String({ maxLength: 1024 }) });
const RefreshBody = Type.Object({ refresh_token: Type.String({ maxLength: MAX_TOKEN_LENGTH }) });

const tokenResponses = { 200: TokenResponseBody, 400: OAuthErrorBody, 401: OAuthErrorBody, 403: OAuthErrorBody };

function sendTokens(reply: FastifyReply, tokens: Omit<TokenResponse, 'refresh_token'> & { refresh_token?: string }) {
  return noStore(reply).send(tokens);
}

function required(value: string | undefined, name: string): string {
  if (value === undefined || value === '') throw new OAuthError('invalid_request', `Missing parameter: ${name}.`);
  return value;
}

/** The authorization_code grant: exchanges the one-time code of a web sign-in (the social feature's web flow). */
export interface CodeExchange {
  exchange(input: { code: string; redirectUri: string; codeVerifier: string | undefined }, meta: ClientMeta): Promise<TokenResponse>;
}

/** The authorization_code grant of a registered client (the OpenID Provider's codes): tokens, an ID token with `openid`, the granted scope. */
export interface ClientCodeExchange {
  exchange(
    input: { code: string; redirectUri: string | undefined; codeVerifier: string | undefined },
    client: IssuingClient & { firstParty: boolean },
    meta: ClientMeta,
  ): Promise<Omit<TokenResponse, 'refresh_token'> & { refresh_token?: string; id_token?: string; scope: string }>;
}

const issuing = (c: TokenClient): IssuingClient => ({ clientId: c.clientId, accessTokenSeconds: c.accessTokenSeconds, refreshTokenDays: c.refreshTokenDays });

function allow(client: TokenClient | null, grant: string): void {
  if (client && !client.grantTypes.includes(grant)) throw new OAuthError('unauthorized_client', `This client may not use the ${grant} grant.`);
}

const passwordGrantOff = () => new OAuthError('unsupported_grant_type', 'The password grant is turned off on this server (PASSWORD_GRANT_ENABLED=false).');

export const tokenRoutes: FastifyPluginAsyncTypebox<TokenRoutesOptions> = async (
  app,
  { accounts, sessions, socialCodes, clientCodes, authenticateClient: authenticate, passwordGrant, emailCodes },
) => {
  /** The registered client of the request (null: none named); every failure is 401 invalid_client with a Basic challenge. */
  async function authenticateClient(request: FastifyRequest, reply: FastifyReply, body: Parameters<ClientAuthenticator>[1]): Promise<TokenClient | null> {
    try {
      return await authenticate(request, body);
    } catch (err) {
      // A 401 names its scheme (RFC 9110 §11.6.1; RFC 6749 §5.2), whichever method was tried.
      if (err instanceof OAuthError && err.code === 'invalid_client') reply.header('www-authenticate', 'Basic realm="tessera", charset="UTF-8"');
      throw err;
    }
  }

  app.post(
    '/auth/token',
    {
      config: { oauthErrors: true },
      schema: {
        tags: ['auth'],
        summary: 'OAuth2 token endpoint (RFC 6749): password, refresh_token and authorization_code grants',
        description: 'Accepts `application/x-www-form-urlencoded` (as OAuth2 clients and Swagger UI send it) or JSON.',
        consumes: ['application/x-www-form-urlencoded', 'application/json'],
        body: TokenRequest,
        response: tokenResponses,
      },
    },
    async (request, reply) => {
      const body = request.body;
      const client = await authenticateClient(request, reply, body);
      switch (body.grant_type) {
        case 'password':
          if (!passwordGrant) throw passwordGrantOff();
          allow(client, 'password');
          // RFC 9700 §2.4: only a first-party client may collect passwords (also checked at registration).
          if (client && !client.firstParty) throw new OAuthError('unauthorized_client', 'Only a first-party client may use the password grant.');
          return sendTokens(
            reply,
            await accounts.signInWithPassword(
              required(body.username, 'username'),
              required(body.password, 'password'),
              clientMeta(request),
              client ? issuing(client) : null,
            ),
          );
        case 'refresh_token':
          allow(client, 'refresh_token');
          return sendTokens(reply, await sessions.refresh(required(body.refresh_token, 'refresh_token'), client ? issuing(client) : null));
        case 'authorization_code':
          if (client) {
            allow(client, 'authorization_code');
            // The codes of the third-party web sign-in belong to the implicit client; a registered client's come from /auth/authorize.
            if (!clientCodes) throw new OAuthError('invalid_grant', 'The authorization code is invalid, expired, or was not issued to this client.');
            return sendTokens(
              reply,
              await clientCodes.exchange(
                { code: required(body.code, 'code'), redirectUri: body.redirect_uri, codeVerifier: body.code_verifier },
                { ...issuing(client), firstParty: client.firstParty },
                clientMeta(request),
              ),
            );
          }
          if (!socialCodes) break;
          return sendTokens(
            reply,
            await socialCodes.exchange(
              { code: required(body.code, 'code'), redirectUri: required(body.redirect_uri, 'redirect_uri'), codeVerifier: body.code_verifier },
              clientMeta(request),
            ),
          );
        case EMAIL_CODE_GRANT: {
          if (!emailCodes) break;
          allow(client, EMAIL_CODE_GRANT);
          const issuedTo = client ? issuing(client) : null;
          if (body.token !== undefined) return sendTokens(reply, await emailCodes.signInWithLink(body.token, clientMeta(request), issuedTo, true));
          const email = required(body.email, 'email');
          return sendTokens(reply, await emailCodes.signInWithCode(email, required(body.code, 'code'), clientMeta(request), issuedTo));
        }
      }
      throw new OAuthError('unsupported_grant_type', `Supported grant types: password, refresh_token${socialCodes ? ', authorization_code' : ''}.`);
    },
  );

  app.post(
    '/auth/login',
    {
      config: { oauthErrors: true },
      schema: { tags: ['auth'], summary: 'Sign in with email and password (JSON)', body: LoginBody, response: tokenResponses },
    },
    async (request, reply) => {
      if (!passwordGrant) throw passwordGrantOff();
      return sendTokens(reply, await accounts.signInWithPassword(request.body.email, request.body.password, clientMeta(request)));
    },
  );

  app.post(
    '/auth/refresh',
    {
      config: { oauthErrors: true },
      schema: { tags: ['auth'], summary: 'Exchange a refresh token for new tokens (JSON)', body: RefreshBody, response: tokenResponses },
    },
    async (request, reply) => sendTokens(reply, await sessions.refresh(request.body.refresh_token)),
  );
};
