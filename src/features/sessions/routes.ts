import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { AppError } from '../../errors.js';
import { authenticate, bearerToken, caller } from './authenticate.js';
import { clientMeta } from '../../http/client-meta.js';
import { NoContent, errorResponses, secured } from '../../http/schemas.js';
import type { SessionService } from './service.js';
import { MAX_TOKEN_LENGTH } from '../../limits.js';

export interface SessionRoutesOptions {
  sessions: SessionService;
}

const SessionBody = Type.Object({
  id: Type.String({ format: 'uuid' }),
  current: Type.Boolean({ description: 'The session of the token making this request' }),
  created_at: Type.String({ format: 'date-time' }),
  last_refreshed_at: Type.String({ format: 'date-time' }),
  expires_at: Type.String({ format: 'date-time' }),
  user_agent: Type.Union([Type.String(), Type.Null()]),
  ip: Type.Union([Type.String(), Type.Null()]),
});

/** `{refresh_token}` when a body is sent at all (logout may come with only a Bearer header). */
function refreshTokenOf(body: unknown): string | undefined {
  const value = body && typeof body === 'object' ? (body as Record<string, unknown>).refresh_token : undefined;
  return typeof value === 'string' && value.length > 0 && value.length <= MAX_TOKEN_LENGTH ? value : undefined;
}

export const sessionRoutes: FastifyPluginAsyncTypebox<SessionRoutesOptions> = async (app, { sessions }) => {
  const auth = authenticate(sessions);

  app.post(
    '/auth/logout',
    {
      schema: {
        tags: ['auth'],
        summary: 'End this session',
        description: 'Send the access token as a Bearer header, or `{"refresh_token": "…"}` as the body (or both).',
        security: [{ bearerAuth: [] }, {}],
        response: { 204: NoContent, ...errorResponses(401) },
      },
    },
    async (request, reply) => {
      const refreshToken = refreshTokenOf(request.body);
      const access = bearerToken(request);
      if (!refreshToken && !access) throw new AppError('unauthorized');
      if (refreshToken) await sessions.logoutWithRefreshToken(refreshToken, clientMeta(request));
      if (access) {
        // An already-ended session is what logout wants; only a bad token is an error.
        const auth = await sessions.authenticate(access).catch((err: unknown) => {
          if (err instanceof AppError && err.code === 'session_revoked') return null;
          throw err;
        });
        if (auth) await sessions.logout(auth.token.sub, auth.token.sid, clientMeta(request));
      }
      return reply.status(204).send(null);
    },
  );

  app.post(
    '/auth/logout/all',
    {
      preHandler: [auth],
      schema: { tags: ['auth'], summary: 'End every session of the signed-in user', security: secured, response: { 204: NoContent, ...errorResponses(401) } },
    },
    async (request, reply) => {
      await sessions.logoutAll(caller(request).token.sub, clientMeta(request));
      return reply.status(204).send(null);
    },
  );

  app.get(
    '/users/me/sessions',
    {
      preHandler: [auth],
      schema: {
        tags: ['users'],
        summary: 'Your live sessions (devices)',
        security: secured,
        response: { 200: Type.Array(SessionBody), ...errorResponses(401) },
      },
    },
    async (request) => {
      const { token } = caller(request);
      const rows = await sessions.list(token.sub);
      return rows.map((s) => ({
        id: s.id,
        current: s.id === token.sid,
        created_at: s.createdAt.toISOString(),
        last_refreshed_at: s.lastRefreshedAt.toISOString(),
        expires_at: s.expiresAt.toISOString(),
        user_agent: s.userAgent,
        ip: s.ip,
      }));
    },
  );

  app.delete(
    '/users/me/sessions/:id',
    {
      preHandler: [auth],
      schema: {
        tags: ['users'],
        summary: 'Revoke one of your sessions',
        security: secured,
        params: Type.Object({ id: Type.String({ format: 'uuid' }) }),
        response: { 204: NoContent, ...errorResponses(401, 404, 422) },
      },
    },
    async (request, reply) => {
      await sessions.revokeOwn(caller(request).token.sub, request.params.id, clientMeta(request));
      return reply.status(204).send(null);
    },
  );
};
