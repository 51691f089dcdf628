import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { authenticate, caller, requireAmr } from '../sessions/authenticate.js';
import { clientMeta } from '../../http/client-meta.js';
import { NoContent, TokenResponseBody, errorResponses, secured } from '../../http/schemas.js';
import type { SessionService } from '../sessions/service.js';
import type { MfaService } from './service.js';
import { noStore } from '../../http/no-store.js';

export interface MfaRoutesOptions {
  mfa: MfaService;
  sessions: SessionService;
}

const Code = Type.String({ minLength: 1, maxLength: 64, description: 'A 6-digit code from the authenticator app, or a recovery code' });
const Password = Type.String({ maxLength: 1024 });
const RecoveryCodes = Type.Object({ recovery_codes: Type.Array(Type.String(), { description: 'Single-use; shown this once, stored only as hashes' }) });

export const mfaRoutes: FastifyPluginAsyncTypebox<MfaRoutesOptions> = async (app, { mfa, sessions }) => {
  const auth = authenticate(sessions);

  app.get(
    '/users/me/mfa',
    {
      preHandler: [auth],
      schema: {
        tags: ['mfa'],
        summary: 'Your two-factor status',
        security: secured,
        response: { 200: Type.Object({ totp_enabled: Type.Boolean(), recovery_codes_remaining: Type.Integer() }), ...errorResponses(401) },
      },
    },
    async (request) => mfa.status(caller(request).token.sub),
  );

  app.post(
    '/users/me/mfa/totp',
    {
      preHandler: [auth],
      schema: {
        tags: ['mfa'],
        summary: 'Start enrolling an authenticator app: a secret, its otpauth:// URI and a QR code',
        description: 'Needs `password`, unless you signed in within MFA_REAUTH_WINDOW (5 minutes). Not active until POST /users/me/mfa/totp/verify.',
        security: secured,
        body: Type.Object({ password: Type.Optional(Password) }, { additionalProperties: false }),
        response: {
          200: Type.Object({
            secret: Type.String({ description: 'Base32, for typing into the app by hand' }),
            otpauth_uri: Type.String(),
            qr_code: Type.String({ description: 'data:image/png;base64,… of the otpauth URI' }),
          }),
          ...errorResponses(401, 403, 409, 429),
        },
      },
    },
    async (request, reply) => {
      const { token, session } = caller(request);
      reply.header('cache-control', 'no-store');
      return mfa.startEnrolment(token.sub, session.createdAt, request.body?.password, clientMeta(request));
    },
  );

  app.post(
    '/users/me/mfa/totp/verify',
    {
      preHandler: [auth],
      schema: {
        tags: ['mfa'],
        summary: 'Turn the authenticator on with its first code; returns 10 recovery codes',
        security: secured,
        body: Type.Object({ code: Code }, { additionalProperties: false }),
        response: { 200: RecoveryCodes, ...errorResponses(400, 401, 409, 429) },
      },
    },
    async (request, reply) => {
      reply.header('cache-control', 'no-store');
      return { recovery_codes: await mfa.activate(caller(request).token.sub, request.body.code, clientMeta(request)) };
    },
  );

  app.delete(
    '/users/me/mfa/totp',
    {
      preHandler: [auth, requireAmr('otp')],
      schema: {
        tags: ['mfa'],
        summary: 'Turn two-factor authentication off (password + a current or recovery code; a session signed in with a code)',
        security: secured,
        body: Type.Object({ password: Password, code: Code }, { additionalProperties: false }),
        response: { 204: NoContent, ...errorResponses(400, 401, 403, 409, 429) },
      },
    },
    async (request, reply) => {
      await mfa.disable(caller(request).token.sub, request.body.password, request.body.code, clientMeta(request));
      return reply.status(204).send(null);
    },
  );

  app.post(
    '/users/me/mfa/recovery-codes',
    {
      preHandler: [auth, requireAmr('otp')],
      schema: {
        tags: ['mfa'],
        summary: 'New recovery codes (the old ones stop working)',
        security: secured,
        body: Type.Object({ password: Password }, { additionalProperties: false }),
        response: { 200: RecoveryCodes, ...errorResponses(401, 403, 409, 429) },
      },
    },
    async (request, reply) => {
      reply.header('cache-control', 'no-store');
      return { recovery_codes: await mfa.regenerateRecoveryCodes(caller(request).token.sub, request.body.password, clientMeta(request)) };
    },
  );

  app.post(
    '/auth/mfa/passkey/options',
    {
      schema: {
        tags: ['mfa'],
        summary: 'Second step of a sign-in with a passkey (when `mfa_required` lists `passkey`): the options for navigator.credentials.get()',
        body: Type.Object({ mfa_token: Type.String({ maxLength: 200 }) }, { additionalProperties: false }),
        response: { 200: Type.Object({ options: Type.Object({}, { additionalProperties: true }) }), ...errorResponses(400, 429) },
      },
    },
    async (request, reply) => noStore(reply).send({ options: (await mfa.passkeyOptions(request.body.mfa_token)) as Record<string, unknown> }),
  );

  app.post(
    '/auth/mfa/passkey/verify',
    {
      schema: {
        tags: ['mfa'],
        summary: 'Second step of a sign-in with a passkey: the mfa_token and the credential navigator.credentials.get() returned → tokens',
        body: Type.Object(
          { mfa_token: Type.String({ maxLength: 200 }), credential: Type.Object({ id: Type.String({ maxLength: 4096 }) }, { additionalProperties: true }) },
          { additionalProperties: false },
        ),
        response: { 200: TokenResponseBody, ...errorResponses(400, 429) },
      },
    },
    async (request, reply) => {
      const tokens = await mfa.completeWithPasskey(request.body.mfa_token, request.body.credential as never, clientMeta(request));
      return noStore(reply).send(tokens);
    },
  );

  app.post(
    '/auth/mfa/verify',
    {
      schema: {
        tags: ['mfa'],
        summary: 'Second step of a sign-in: the mfa_token of the `mfa_required` answer and a code → tokens',
        body: Type.Object({ mfa_token: Type.String({ maxLength: 200 }), code: Code }, { additionalProperties: false }),
        response: { 200: TokenResponseBody, ...errorResponses(400, 429) },
      },
    },
    async (request, reply) => {
      const tokens = await mfa.completeSignIn(request.body.mfa_token, request.body.code, clientMeta(request));
      return noStore(reply).send(tokens);
    },
  );
};
