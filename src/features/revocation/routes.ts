import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { OAuthError } from '../../errors.js';
import { clientMeta } from '../../http/client-meta.js';
import { noStore } from '../../http/no-store.js';
import { OAuthErrorBody } from '../../http/schemas.js';
import type { SessionService } from '../sessions/service.js';
import type { ClientAuthenticator } from '../tokens/token-client.js';

export interface RevocationRoutesOptions {
  sessions: Pick<SessionService, 'revokeToken'>;
  /** The token endpoint's client authentication (clients/client-auth.ts): the same methods and the same 401. */
  authenticateClient: ClientAuthenticator;
}

const RevokeRequest = Type.Object({
  token: Type.Optional(Type.String({ maxLength: 8192, description: 'The refresh or access token to revoke' })),
  token_type_hint: Type.Optional(Type.String({ maxLength: 64, description: '`refresh_token` or `access_token` (optional; only orders the search)' })),
  client_id: Type.Optional(Type.String({ maxLength: 256 })),
  client_secret: Type.Optional(Type.String({ maxLength: 1024 })),
  client_assertion: Type.Optional(Type.String({ maxLength: 8192 })),
  client_assertion_type: Type.Optional(Type.String({ maxLength: 128 })),
});

/** POST /auth/revoke (RFC 7009). */
export const revocationRoutes: FastifyPluginAsyncTypebox<RevocationRoutesOptions> = async (app, { sessions, authenticateClient }) => {
  app.post(
    '/auth/revoke',
    {
      config: { oauthErrors: true },
      schema: {
        tags: ['auth'],
        summary: 'Token revocation (RFC 7009): end the session of a refresh or access token',
        description:
          'The client authenticates as at the token endpoint (or names none: the implicit first-party client). A token of that client ends its ' +
          'session: the refresh token stops at once, and so do its access tokens wherever Tessera checks them; services verifying the JWT locally ' +
          'see the end only at its `exp`. An invalid, expired or unknown token is 200 all the same (§2.2); a valid token of another client is 400 ' +
          '`unauthorized_client` and nothing is revoked. Form-encoded or JSON.',
        consumes: ['application/x-www-form-urlencoded', 'application/json'],
        body: RevokeRequest,
        response: { 200: Type.Null({ description: 'Revoked, or nothing to revoke (empty body)' }), 400: OAuthErrorBody, 401: OAuthErrorBody },
      },
    },
    async (request, reply) => {
      const body = request.body;
      let client;
      try {
        client = await authenticateClient(request, body);
      } catch (err) {
        if (err instanceof OAuthError && err.code === 'invalid_client') reply.header('www-authenticate', 'Basic realm="tessera", charset="UTF-8"');
        throw err;
      }
      if (!body.token) throw new OAuthError('invalid_request', 'Missing parameter: token.');
      const outcome = await sessions.revokeToken(body.token, body.token_type_hint, client?.clientId ?? null, clientMeta(request));
      if (outcome === 'not_this_client') throw new OAuthError('unauthorized_client', 'The token was not issued to this client; nothing was revoked.');
      if (outcome === 'unsupported_token_type') throw new OAuthError('unsupported_token_type', 'Only refresh and access tokens can be revoked.');
      return noStore(reply).status(200).send();
    },
  );
};
