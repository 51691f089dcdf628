import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import { AppError } from '../../errors.js';
import { authenticate, caller } from '../sessions/authenticate.js';
import { errorResponses, secured } from '../../http/schemas.js';
import type { SessionService } from '../sessions/service.js';
import type { AuditService } from './service.js';

const Event = Type.Object({
  id: Type.String(),
  type: Type.String({
    description:
      'sign_in, sign_in_failed, sign_in_throttled, reauth_failed, logout, logout_all, session_revoked, refresh_token_reuse, password_changed, password_reset, email_change_requested, email_changed, mfa_*, admin_*',
  }),
  created_at: Type.String({ format: 'date-time' }),
  ip: Type.Union([Type.String(), Type.Null()]),
  user_agent: Type.Union([Type.String(), Type.Null()]),
  details: Type.Record(Type.String(), Type.Union([Type.String(), Type.Number(), Type.Boolean()])),
});

export const auditRoutes: FastifyPluginAsyncTypebox<{ audit: AuditService; sessions: SessionService }> = async (app, { audit, sessions }) => {
  app.get(
    '/users/me/audit',
    {
      preHandler: [authenticate(sessions)],
      schema: {
        tags: ['users'],
        summary: 'Your security events, newest first',
        security: secured,
        querystring: Type.Object({
          limit: Type.Optional(Type.String({ pattern: '^([1-9][0-9]?|100)$', description: '1–100, default 50' })),
          before: Type.Optional(Type.String({ format: 'date-time', description: 'created_at of the last event you have (the next page)' })),
        }),
        response: { 200: Type.Object({ events: Type.Array(Event) }), ...errorResponses(401, 422) },
      },
    },
    async (request) => {
      const before = request.query.before ? new Date(request.query.before) : undefined;
      if (before && Number.isNaN(before.getTime())) throw new AppError('validation_failed', undefined, [{ field: 'before', message: 'invalid' }]);
      const rows = await audit.listForUser(caller(request).token.sub, request.query.limit ? Number(request.query.limit) : 50, before);
      return {
        events: rows.map((e) => ({ id: e.id, type: e.type, created_at: e.createdAt.toISOString(), ip: e.ip, user_agent: e.userAgent, details: e.details })),
      };
    },
  );
};
