import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { OAuthError } from '../../errors.js';
import { noStore } from '../../http/no-store.js';
import { OAuthErrorBody } from '../../http/schemas.js';
import type { ClientAuthenticator } from '../tokens/token-client.js';
import type { PushedRequests } from './pushed-requests.js';

export interface PushedRequestRoutesOptions {
  pushed: PushedRequests;
  authenticateClient: ClientAuthenticator;
}

const PushedBody = Type.Record(Type.String({ maxLength: 64 }), Type.String({ maxLength: 8192 }), { maxProperties: 40 });

/** POST /auth/par (RFC 9126). */
export const pushedRequestRoutes: FastifyPluginAsyncTypebox<PushedRequestRoutesOptions> = async (app, { pushed, authenticateClient }) => {
  app.post(
    '/auth/par',
    {
      config: { oauthErrors: true },
      schema: {
        tags: ['openid'],
        summary: 'Pushed authorization request (RFC 9126): the authorization request, sent by the client; answers a request_uri for /auth/authorize',
        description:
          'The client authenticates as at the token endpoint (a public client sends its `client_id`). The parameters are those of ' +
          '`/auth/authorize`, checked the same way; the answer is 201 `{request_uri, expires_in: 60}`. Then send the browser to ' +
          '`/auth/authorize?client_id=…&request_uri=…`: it works once, within 60 seconds, for this client only. docs/openid-provider.md',
        consumes: ['application/x-www-form-urlencoded'],
        body: PushedBody,
        response: {
          201: Type.Object({ request_uri: Type.String(), expires_in: Type.Integer() }),
          400: OAuthErrorBody,
          401: OAuthErrorBody,
        },
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
      if (!client) {
        reply.header('www-authenticate', 'Basic realm="tessera", charset="UTF-8"');
        throw new OAuthError('invalid_client', 'A pushed authorization request needs a registered client: client_id, and its authentication.');
      }
      return noStore(reply)
        .status(201)
        .send(await pushed.push(client.clientId, body));
    },
  );
};
