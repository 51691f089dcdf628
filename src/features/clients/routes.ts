import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyRequest } from 'fastify';
import { Type, type Static } from 'typebox';
import { authenticate, caller } from '../sessions/authenticate.js';
import { requirePermission, type CurrentGrants } from '../rbac/guards.js';
import { clientMeta } from '../../http/client-meta.js';
import { noStore } from '../../http/no-store.js';
import { NoContent, errorResponses, secured } from '../../http/schemas.js';
import type { SessionService } from '../sessions/service.js';
import { CLIENTS_PERMISSION, MAX_OVERLAP_SECONDS, type Actor, type ClientInput, type ClientService, type ClientView } from './service.js';
import type { ClientRow } from './tables.js';

export interface ClientRoutesOptions {
  clients: ClientService;
  sessions: SessionService;
  grantsOf: CurrentGrants;
}

const ClientIdParam = Type.Object({ client_id: Type.String({ pattern: '^[A-Za-z0-9_-]{1,64}$' }) });
const Uris = Type.Array(Type.String({ maxLength: 2048 }), { maxItems: 20 });
const Nullable = <T extends ReturnType<typeof Type.String> | ReturnType<typeof Type.Integer>>(t: T) => Type.Union([t, Type.Null()]);

const Fields = {
  token_endpoint_auth_method: Type.Optional(
    Type.Union([Type.Literal('none'), Type.Literal('client_secret_basic'), Type.Literal('client_secret_post'), Type.Literal('private_key_jwt')], {
      description: 'none (public), client_secret_basic (default), client_secret_post or private_key_jwt',
    }),
  ),
  redirect_uris: Type.Optional(Uris),
  post_logout_redirect_uris: Type.Optional(Uris),
  grant_types: Type.Optional(
    Type.Array(Type.String({ maxLength: 64 }), {
      maxItems: 10,
      description: 'authorization_code, refresh_token, password (first-party only); default authorization_code refresh_token',
    }),
  ),
  scopes: Type.Optional(Type.Array(Type.String({ maxLength: 64 }), { maxItems: 50, description: 'default openid profile email' })),
  first_party: Type.Optional(Type.Boolean()),
  access_token_seconds: Type.Optional(Nullable(Type.Integer({ minimum: 60, maximum: 86400 }))),
  refresh_token_days: Type.Optional(Nullable(Type.Integer({ minimum: 1, maximum: 3650 }))),
  jwks: Type.Optional(
    Type.Union([Type.Object({ keys: Type.Array(Type.Record(Type.String(), Type.Unknown()), { maxItems: 10 }) }, { additionalProperties: true }), Type.Null()]),
  ),
  jwks_uri: Type.Optional(Nullable(Type.String({ maxLength: 2048 }))),
  backchannel_logout_uri: Type.Optional(Nullable(Type.String({ maxLength: 2048 }))),
};
const CreateBody = Type.Object({
  name: Type.String({ minLength: 1, maxLength: 200 }),
  type: Type.Union([Type.Literal('public'), Type.Literal('confidential')]),
  ...Fields,
});
const PatchBody = Type.Object({ name: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })), ...Fields }, { minProperties: 1 });

const Secret = Type.Object({ created_at: Type.String(), expires_at: Type.Union([Type.String(), Type.Null()]) });
const ClientBody = Type.Object({
  client_id: Type.String(),
  name: Type.String(),
  type: Type.String(),
  token_endpoint_auth_method: Type.String(),
  redirect_uris: Type.Array(Type.String()),
  post_logout_redirect_uris: Type.Array(Type.String()),
  grant_types: Type.Array(Type.String()),
  scopes: Type.Array(Type.String()),
  first_party: Type.Boolean(),
  access_token_seconds: Type.Union([Type.Integer(), Type.Null()]),
  refresh_token_days: Type.Union([Type.Integer(), Type.Null()]),
  jwks: Type.Union([Type.Object({ keys: Type.Array(Type.Record(Type.String(), Type.Unknown())) }, { additionalProperties: true }), Type.Null()]),
  jwks_uri: Type.Union([Type.String(), Type.Null()]),
  backchannel_logout_uri: Type.Union([Type.String(), Type.Null()]),
  created_at: Type.String(),
  updated_at: Type.String(),
  secrets: Type.Optional(
    Type.Array(Secret, {
      description: 'The secrets that authenticate the client now (never their values): the current one (expires_at null) and those in a rotation overlap',
    }),
  ),
  live_secrets: Type.Optional(Type.Integer()),
});
const WithSecret = Type.Object({
  client: ClientBody,
  client_secret: Type.Union([Type.String(), Type.Null()], { description: 'Shown once: only its SHA-256 is stored' }),
});

export function toClientBody(c: ClientRow & { secrets?: ClientView['secrets']; liveSecrets?: number }): Static<typeof ClientBody> {
  return {
    client_id: c.clientId,
    name: c.name,
    type: c.type,
    token_endpoint_auth_method: c.tokenEndpointAuthMethod,
    redirect_uris: c.redirectUris,
    post_logout_redirect_uris: c.postLogoutRedirectUris,
    grant_types: c.grantTypes,
    scopes: c.scopes,
    first_party: c.firstParty,
    access_token_seconds: c.accessTokenSeconds,
    refresh_token_days: c.refreshTokenDays,
    jwks: (c.jwks as Static<typeof ClientBody>['jwks']) ?? null,
    jwks_uri: c.jwksUri,
    backchannel_logout_uri: c.backchannelLogoutUri,
    created_at: c.createdAt.toISOString(),
    updated_at: c.updatedAt.toISOString(),
    ...(c.secrets ? { secrets: c.secrets.map((s) => ({ created_at: s.createdAt.toISOString(), expires_at: s.expiresAt?.toISOString() ?? null })) } : {}),
    ...(c.liveSecrets !== undefined ? { live_secrets: c.liveSecrets } : {}),
  };
}

type Fields = Partial<Static<typeof CreateBody>>;

/** The API's snake_case fields as the service's input (only those given: a PATCH changes only them). */
export function toClientInput(b: Fields): Partial<ClientInput> {
  const out: Partial<ClientInput> = {};
  if (b.name !== undefined) out.name = b.name;
  if (b.type !== undefined) out.type = b.type;
  if (b.token_endpoint_auth_method !== undefined) out.tokenEndpointAuthMethod = b.token_endpoint_auth_method;
  if (b.redirect_uris !== undefined) out.redirectUris = b.redirect_uris;
  if (b.post_logout_redirect_uris !== undefined) out.postLogoutRedirectUris = b.post_logout_redirect_uris;
  if (b.grant_types !== undefined) out.grantTypes = b.grant_types;
  if (b.scopes !== undefined) out.scopes = b.scopes;
  if (b.first_party !== undefined) out.firstParty = b.first_party;
  if (b.access_token_seconds !== undefined) out.accessTokenSeconds = b.access_token_seconds;
  if (b.refresh_token_days !== undefined) out.refreshTokenDays = b.refresh_token_days;
  if (b.jwks !== undefined) out.jwks = b.jwks;
  if (b.jwks_uri !== undefined) out.jwksUri = b.jwks_uri;
  if (b.backchannel_logout_uri !== undefined) out.backchannelLogoutUri = b.backchannel_logout_uri;
  return out;
}

function actor(request: FastifyRequest): Actor {
  const meta = clientMeta(request);
  return { id: caller(request).token.sub, ip: meta.ip, userAgent: meta.userAgent };
}

/** The signed-in caller's user id, for the RBAC guards. */
const callerId = (request: FastifyRequest) => caller(request).token.sub;

/**
 * /admin/clients: the OAuth client registry (docs/clients.md), guarded by the
 * permission `clients:manage` on the caller's grants as stored now (the built-in
 * `admin` holds it through `*`). Every change is audited; secrets are shown once.
 */
export const clientRoutes: FastifyPluginAsyncTypebox<ClientRoutesOptions> = async (app, { clients, sessions, grantsOf }) => {
  const guard = [authenticate(sessions), requirePermission(grantsOf, callerId, CLIENTS_PERMISSION)];
  const tags = ['admin'];

  app.get(
    '/admin/clients',
    {
      preHandler: guard,
      schema: {
        tags,
        summary: 'Registered OAuth clients',
        security: secured,
        response: { 200: Type.Object({ clients: Type.Array(ClientBody) }), ...errorResponses(401, 403) },
      },
    },
    async () => ({ clients: (await clients.list()).map(toClientBody) }),
  );

  app.post(
    '/admin/clients',
    {
      preHandler: guard,
      schema: {
        tags,
        summary: 'Register a client; a confidential one gets its secret in this answer only',
        security: secured,
        body: CreateBody,
        response: { 201: WithSecret, ...errorResponses(401, 403, 422) },
      },
    },
    async (request, reply) => {
      const { client, secret } = await clients.create(actor(request), toClientInput(request.body) as ClientInput);
      return noStore(reply)
        .status(201)
        .send({ client: toClientBody(client), client_secret: secret });
    },
  );

  app.get(
    '/admin/clients/:client_id',
    {
      preHandler: guard,
      schema: {
        tags,
        summary: 'A client, with the creation and expiry of its live secrets',
        security: secured,
        params: ClientIdParam,
        response: { 200: ClientBody, ...errorResponses(401, 403, 404) },
      },
    },
    async (request) => toClientBody(await clients.get(request.params.client_id)),
  );

  app.patch(
    '/admin/clients/:client_id',
    {
      preHandler: guard,
      schema: {
        tags,
        summary: 'Change a client (not its type); moving to a secret method gives a first secret, shown once',
        security: secured,
        params: ClientIdParam,
        body: PatchBody,
        response: { 200: WithSecret, ...errorResponses(401, 403, 404, 422) },
      },
    },
    async (request, reply) => {
      const { client, secret } = await clients.update(actor(request), request.params.client_id, toClientInput(request.body));
      return noStore(reply).send({ client: toClientBody(client), client_secret: secret });
    },
  );

  app.post(
    '/admin/clients/:client_id/rotate-secret',
    {
      preHandler: guard,
      schema: {
        tags,
        summary: 'A new secret (shown once); the previous one keeps working for overlap_seconds (default 0)',
        security: secured,
        params: ClientIdParam,
        body: Type.Object({
          overlap_seconds: Type.Optional(
            Type.Integer({ minimum: 0, maximum: MAX_OVERLAP_SECONDS, description: 'How long the previous secret keeps working (default 0: not at all)' }),
          ),
        }),
        response: {
          200: Type.Object({ client_id: Type.String(), client_secret: Type.String(), previous_secret_valid_until: Type.Union([Type.String(), Type.Null()]) }),
          ...errorResponses(401, 403, 404, 409, 422),
        },
      },
    },
    async (request, reply) => {
      const id = request.params.client_id;
      const rotated = await clients.rotateSecret(actor(request), id, request.body.overlap_seconds ?? 0);
      return noStore(reply).send({
        client_id: id,
        client_secret: rotated.secret,
        previous_secret_valid_until: rotated.previousValidUntil?.toISOString() ?? null,
      });
    },
  );

  app.delete(
    '/admin/clients/:client_id',
    {
      preHandler: guard,
      schema: {
        tags,
        summary: 'Delete a client: its secrets go, its sessions end',
        security: secured,
        params: ClientIdParam,
        response: { 204: NoContent, ...errorResponses(401, 403, 404) },
      },
    },
    async (request, reply) => {
      await clients.delete(actor(request), request.params.client_id);
      return reply.status(204).send(null);
    },
  );
};
