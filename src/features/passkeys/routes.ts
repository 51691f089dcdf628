import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { AuthenticationResponseJSON, RegistrationResponseJSON } from '@simplewebauthn/server';
import { Type } from 'typebox';
import { clientMeta } from '../../http/client-meta.js';
import { noStore } from '../../http/no-store.js';
import { NoContent, TokenResponseBody, errorResponses, secured } from '../../http/schemas.js';
import { authenticate, caller } from '../sessions/authenticate.js';
import type { SessionService } from '../sessions/service.js';
import type { PasskeyService } from './service.js';

export interface PasskeyRoutesOptions {
  passkeys: PasskeyService;
  sessions: SessionService;
  /** GET /.well-known/webauthn: the related origins, served when several web origins share the RP ID; null = 404. */
  relatedOrigins: string[] | null;
}

const Base64Url = Type.String({ maxLength: 4096, pattern: '^[A-Za-z0-9_-]*={0,2}$' });
const Open = { additionalProperties: true } as const;

/** A PublicKeyCredential as JSON (`credential.toJSON()`, or @simplewebauthn/browser's startRegistration/startAuthentication). */
const credential = (response: Record<string, ReturnType<typeof Type.Optional> | typeof Base64Url>) =>
  Type.Object(
    {
      id: Base64Url,
      rawId: Base64Url,
      type: Type.Literal('public-key'),
      response: Type.Object(response, Open),
      clientExtensionResults: Type.Object({}, Open),
      authenticatorAttachment: Type.Optional(Type.String({ maxLength: 32 })),
    },
    Open,
  );

const RegistrationCredential = credential({
  clientDataJSON: Base64Url,
  attestationObject: Type.String({ maxLength: 16384 }),
  transports: Type.Optional(Type.Array(Type.String({ maxLength: 32 }), { maxItems: 10 })),
});
const AssertionCredential = credential({
  clientDataJSON: Base64Url,
  authenticatorData: Base64Url,
  signature: Base64Url,
  userHandle: Type.Optional(Base64Url),
});

const Options = Type.Object(
  {},
  { ...Open, description: 'WebAuthn options as JSON: give them to navigator.credentials (or @simplewebauthn/browser) as they are' },
);
const Passkey = Type.Object({
  id: Type.String({ format: 'uuid' }),
  name: Type.String(),
  device_type: Type.Union([Type.Literal('single_device'), Type.Literal('multi_device')], {
    description: 'multi_device: a synced passkey (amr swk); single_device: bound to its authenticator (amr hwk)',
  }),
  backed_up: Type.Boolean(),
  transports: Type.Array(Type.String()),
  created_at: Type.String({ format: 'date-time' }),
  last_used_at: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
});
const Name = Type.String({ minLength: 1, maxLength: 64 });
const IdParams = Type.Object({ id: Type.String({ format: 'uuid' }) });

export const passkeyRoutes: FastifyPluginAsyncTypebox<PasskeyRoutesOptions> = async (app, { passkeys, sessions, relatedOrigins }) => {
  const auth = authenticate(sessions);

  app.post(
    '/users/me/passkeys/options',
    {
      preHandler: [auth],
      schema: {
        tags: ['passkeys'],
        summary: 'Start adding a passkey: the options for navigator.credentials.create()',
        description: 'Needs `password`, unless you signed in within MFA_REAUTH_WINDOW (5 minutes). The challenge lives WEBAUTHN_CHALLENGE_TTL and works once.',
        security: secured,
        body: Type.Optional(Type.Object({ password: Type.Optional(Type.String({ maxLength: 1024 })) }, { additionalProperties: false })),
        response: { 200: Options, ...errorResponses(401, 403, 429) },
      },
    },
    async (request, reply) => {
      const { token, session } = caller(request);
      return noStore(reply).send(await passkeys.registrationOptions(token.sub, session.createdAt, request.body?.password, clientMeta(request)));
    },
  );

  app.post(
    '/users/me/passkeys',
    {
      preHandler: [auth],
      schema: {
        tags: ['passkeys'],
        summary: 'Finish adding a passkey: the credential navigator.credentials.create() returned',
        security: secured,
        body: Type.Object({ credential: RegistrationCredential, name: Type.Optional(Name) }, { additionalProperties: false }),
        response: { 201: Passkey, ...errorResponses(400, 401, 409) },
      },
    },
    async (request, reply) => {
      const created = await passkeys.register(
        caller(request).token.sub,
        request.body.credential as unknown as RegistrationResponseJSON,
        request.body.name,
        clientMeta(request),
      );
      return reply.status(201).send(created);
    },
  );

  app.get(
    '/users/me/passkeys',
    {
      preHandler: [auth],
      schema: {
        tags: ['passkeys'],
        summary: 'Your passkeys',
        security: secured,
        response: { 200: Type.Object({ passkeys: Type.Array(Passkey) }), ...errorResponses(401) },
      },
    },
    async (request) => ({ passkeys: await passkeys.list(caller(request).token.sub) }),
  );

  app.patch(
    '/users/me/passkeys/:id',
    {
      preHandler: [auth],
      schema: {
        tags: ['passkeys'],
        summary: 'Rename one of your passkeys',
        security: secured,
        params: IdParams,
        body: Type.Object({ name: Name }, { additionalProperties: false }),
        response: { 200: Passkey, ...errorResponses(401, 404, 422) },
      },
    },
    async (request) => passkeys.rename(caller(request).token.sub, request.params.id, request.body.name, clientMeta(request)),
  );

  app.delete(
    '/users/me/passkeys/:id',
    {
      preHandler: [auth],
      schema: {
        tags: ['passkeys'],
        summary: 'Delete one of your passkeys (not your last way to sign in)',
        security: secured,
        params: IdParams,
        response: { 204: NoContent, ...errorResponses(401, 404, 409) },
      },
    },
    async (request, reply) => {
      await passkeys.remove(caller(request).token.sub, request.params.id, clientMeta(request));
      return reply.status(204).send(null);
    },
  );

  app.post(
    '/auth/passkey/options',
    {
      schema: {
        tags: ['passkeys'],
        summary: 'Start a passkey sign-in: the options for navigator.credentials.get() and a flow_id',
        description:
          'Without `email`: any passkey of this site (username-less, or `mediation: "conditional"` for autofill). With `email`: that account\'s passkeys. The answer has the same shape whether or not the address has an account.',
        body: Type.Optional(Type.Object({ email: Type.Optional(Type.String({ maxLength: 320 })) }, { additionalProperties: false })),
        response: { 200: Type.Object({ flow_id: Type.String(), options: Options }), ...errorResponses(429) },
      },
    },
    async (request, reply) => noStore(reply).send(await passkeys.signInOptions(request.body?.email)),
  );

  app.post(
    '/auth/passkey/verify',
    {
      schema: {
        tags: ['passkeys'],
        summary: 'Finish a passkey sign-in: the flow_id and the credential navigator.credentials.get() returned → tokens',
        body: Type.Object({ flow_id: Type.String({ maxLength: 200 }), credential: AssertionCredential }, { additionalProperties: false }),
        response: { 200: TokenResponseBody, ...errorResponses(400, 429) },
      },
    },
    async (request, reply) => {
      const tokens = await passkeys.signIn(request.body.flow_id, request.body.credential as unknown as AuthenticationResponseJSON, clientMeta(request));
      return noStore(reply).send(tokens);
    },
  );

  if (relatedOrigins) {
    app.get(
      '/.well-known/webauthn',
      {
        schema: {
          tags: ['passkeys'],
          summary: 'WebAuthn related origins: the web origins that may use passkeys of this RP ID',
          response: { 200: Type.Object({ origins: Type.Array(Type.String()) }) },
        },
      },
      async (_request, reply) => reply.header('cache-control', 'public, max-age=3600').send({ origins: relatedOrigins }),
    );
  }
};
