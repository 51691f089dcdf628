import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyRequest } from 'fastify';
import { Type, type Static } from 'typebox';
import { OAuthError } from '../../errors.js';
import { OAuthErrorBody } from '../../http/schemas.js';
import type { Introspector, IntrospectionService } from './service.js';
import { noStore } from '../../http/no-store.js';
import type { ClientAuthenticator } from '../tokens/token-client.js';

export interface IntrospectionRoutesOptions {
  introspection: IntrospectionService;
  /** Registered clients authenticate as at the token endpoint (clients/client-auth.ts). */
  authenticateClient: ClientAuthenticator;
}

const IntrospectRequest = Type.Object({
  token: Type.Optional(Type.String({ maxLength: 8192, description: 'The token to check' })),
  token_type_hint: Type.Optional(Type.String({ maxLength: 64, description: '`access_token` or `refresh_token` (optional)' })),
  client_id: Type.Optional(Type.String({ maxLength: 256, description: 'client_secret_post (instead of HTTP Basic)' })),
  client_secret: Type.Optional(Type.String({ maxLength: 1024, description: 'client_secret_post (instead of HTTP Basic)' })),
  client_assertion: Type.Optional(Type.String({ maxLength: 8192, description: 'A registered client with private_key_jwt (RFC 7523)' })),
  client_assertion_type: Type.Optional(Type.String({ maxLength: 128 })),
});

const IntrospectResponse = Type.Object(
  {
    active: Type.Boolean({ description: 'Whether the token may be used now; when false, no other member is sent' }),
    token_type: Type.Optional(Type.String({ description: '`access_token` or `refresh_token`' })),
    sub: Type.Optional(Type.String()),
    sid: Type.Optional(Type.String({ description: 'The session id' })),
    iss: Type.Optional(Type.String()),
    aud: Type.Optional(Type.Union([Type.String(), Type.Array(Type.String())])),
    exp: Type.Optional(Type.Integer()),
    iat: Type.Optional(Type.Integer()),
    jti: Type.Optional(Type.String()),
    client_id: Type.Optional(Type.String({ description: 'The registered client the token was issued to' })),
    scope: Type.Optional(Type.String({ description: 'Access tokens: the granted scopes, space-separated' })),
    email: Type.Optional(Type.String()),
    email_verified: Type.Optional(Type.Boolean()),
    roles: Type.Optional(Type.Array(Type.String())),
    permissions: Type.Optional(Type.Array(Type.String())),
    amr: Type.Optional(Type.Array(Type.String())),
  },
  { description: 'Token introspection response (RFC 7662 §2.2)' },
);

/** The client of an introspection request: HTTP Basic (client_secret_basic) or client_secret_post. */
function clientCredentials(request: FastifyRequest, body: { client_id?: string; client_secret?: string }): { id: string; secret: string } | null {
  const header = request.headers.authorization;
  const posted = body.client_id !== undefined || body.client_secret !== undefined;
  if (header !== undefined) {
    if (posted) throw new OAuthError('invalid_request', 'Authenticate the client one way: the Authorization header or client_id/client_secret in the body.');
    // RFC 6749 §2.3.1: id and secret are form-urlencoded, then joined by ":" and base64-encoded.
    const match = /^Basic\s+([A-Za-z0-9+/]+={0,2})\s*$/i.exec(header);
    if (!match?.[1]) return null;
    const decoded = Buffer.from(match[1], 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon === -1) return null;
    try {
      const formDecode = (s: string) => decodeURIComponent(s.replace(/\+/g, ' '));
      return { id: formDecode(decoded.slice(0, colon)), secret: formDecode(decoded.slice(colon + 1)) };
    } catch {
      // a malformed %-escape (URIError): no credentials, so 401 like any unknown client
      return null;
    }
  }
  if (body.client_id === undefined || body.client_secret === undefined) return null;
  return { id: body.client_id, secret: body.client_secret };
}

const invalidClient = () => new OAuthError('invalid_client', 'Client authentication failed.');

/** POST /auth/introspect (RFC 7662): the resource servers of INTROSPECTION_CLIENTS, and registered confidential clients. */
export const introspectionRoutes: FastifyPluginAsyncTypebox<IntrospectionRoutesOptions> = async (app, { introspection, authenticateClient }) => {
  /** Who asks; every failure is the same 401. */
  async function introspector(request: FastifyRequest, body: Static<typeof IntrospectRequest>): Promise<Introspector> {
    const configured = clientCredentials(request, body);
    if (configured && introspection.isConfigured(configured.id)) {
      if (!introspection.authenticateClient(configured.id, configured.secret)) throw invalidClient();
      return { kind: 'resource_server' };
    }
    // A registered client must prove itself with a secret or an assertion: a public client (client_id alone) may not introspect.
    if (request.headers.authorization === undefined && body.client_secret === undefined && body.client_assertion === undefined) throw invalidClient();
    const client = await authenticateClient(request, body);
    if (!client) throw invalidClient();
    return { kind: 'client', clientId: client.clientId };
  }

  app.post(
    '/auth/introspect',
    {
      config: { oauthErrors: true },
      schema: {
        tags: ['auth'],
        summary: 'Token introspection (RFC 7662): is this token active now?',
        description:
          'For resource servers that must see a logout, a revoked session or a disabled user at once. The caller authenticates as a client of ' +
          '`INTROSPECTION_CLIENTS`, with HTTP Basic (client_secret_basic) or `client_id` and `client_secret` in the body (client_secret_post), ' +
          'and sees every token; or as a registered confidential client (as at the token endpoint), and sees only the tokens issued to itself ' +
          '(any other is `{"active": false}`). ' +
          'Form-encoded (RFC 7662) or JSON. One database read per call; verifying the JWT locally with the JWKS costs none.',
        consumes: ['application/x-www-form-urlencoded', 'application/json'],
        security: [{ introspectionClient: [] }],
        body: IntrospectRequest,
        response: { 200: IntrospectResponse, 400: OAuthErrorBody, 401: OAuthErrorBody },
      },
    },
    async (request, reply) => {
      const body = request.body;
      let caller: Introspector;
      try {
        caller = await introspector(request, body);
      } catch (err) {
        if (err instanceof OAuthError && err.code === 'invalid_client') reply.header('www-authenticate', 'Basic realm="tessera"');
        throw err;
      }
      if (!body.token) throw new OAuthError('invalid_request', 'Missing parameter: token.');
      return noStore(reply).send(await introspection.introspect(body.token, body.token_type_hint, caller));
    },
  );
};
