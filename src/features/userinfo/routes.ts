import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { AppError, OAuthError } from '../../errors.js';
import { noStore } from '../../http/no-store.js';
import { errorResponses, OAuthErrorBody } from '../../http/schemas.js';
import { bearerToken } from '../sessions/authenticate.js';
import type { UserinfoService } from './service.js';

export interface UserinfoRoutesOptions {
  userinfo: UserinfoService;
}

const UserinfoBody = Type.Object(
  {
    sub: Type.String(),
    email: Type.Optional(Type.String({ description: 'scope `email`' })),
    email_verified: Type.Optional(Type.Boolean({ description: 'scope `email`' })),
    name: Type.Optional(Type.String({ description: 'scope `profile`, when the user has a name' })),
    given_name: Type.Optional(Type.String({ description: 'scope `profile`' })),
    family_name: Type.Optional(Type.String({ description: 'scope `profile`' })),
    updated_at: Type.Optional(Type.Integer({ description: 'scope `profile`: seconds since the epoch' })),
  },
  { description: 'OpenID Connect userinfo (Core §5.3.2)' },
);

/** RFC 6750 §3: every refusal names its error in a Bearer challenge. */
const challenge = (error: string, extra = '') => `Bearer error="${error}"${extra}`;

/** The access token of the request: the Authorization header, or (POST, RFC 6750 §2.2) `access_token` in a form body; never both. */
function accessToken(request: FastifyRequest, reply: FastifyReply, posted: string | undefined): string {
  const header = request.headers.authorization;
  if (posted !== undefined && header !== undefined) {
    reply.header('www-authenticate', challenge('invalid_request'));
    throw new OAuthError('invalid_request', 'Send the access token one way: the Authorization header or access_token in the body.');
  }
  if (posted !== undefined) {
    if (!String(request.headers['content-type']).startsWith('application/x-www-form-urlencoded')) {
      reply.header('www-authenticate', challenge('invalid_request'));
      throw new OAuthError('invalid_request', 'access_token in the body must be form-encoded (RFC 6750 §2.2).');
    }
    return posted;
  }
  const token = bearerToken(request);
  // No credentials: a bare `Bearer` challenge (the error handler); a malformed one: invalid_token.
  if (!token) throw new AppError(/^Bearer\s+\S/i.test(header ?? '') ? 'invalid_token' : 'unauthorized');
  return token;
}

/** GET/POST /auth/userinfo (OpenID Connect Core §5.3), Bearer access tokens. */
export const userinfoRoutes: FastifyPluginAsyncTypebox<UserinfoRoutesOptions> = async (app, { userinfo }) => {
  const answer = async (request: FastifyRequest, reply: FastifyReply, posted: string | undefined) => {
    noStore(reply);
    try {
      return await userinfo.claims(accessToken(request, reply, posted));
    } catch (err) {
      if (err instanceof AppError && err.code === 'insufficient_scope') reply.header('www-authenticate', challenge('insufficient_scope', ', scope="openid"'));
      throw err;
    }
  };
  const schema = {
    tags: ['auth'],
    summary: 'OpenID Connect userinfo: the claims of the access token’s scopes',
    description:
      '`sub` always; `email`, `email_verified` with the `email` scope; `name`, `given_name`, `family_name`, `updated_at` with `profile`. ' +
      'Tokens of the implicit first-party client (no `scope` claim) count as `openid profile email`. A token without `openid` is 403 `insufficient_scope`. ' +
      'POST may send the token as `access_token` in a form body (RFC 6750 §2.2) instead of the header.',
    security: [{ bearerAuth: [] }],
    response: { 200: UserinfoBody, 400: OAuthErrorBody, ...errorResponses(401, 403) },
  };
  app.get('/auth/userinfo', { schema }, async (request, reply) => answer(request, reply, undefined));
  app.post(
    '/auth/userinfo',
    // No body schema: a POST may carry no body at all (the token in the header); `access_token` is read from a form only.
    { schema: { ...schema, consumes: ['application/x-www-form-urlencoded'] } },
    async (request, reply) => {
      // A POST may have no body at all (the token in the header).
      const body = request.body as { access_token?: unknown } | null | undefined;
      return answer(request, reply, typeof body?.access_token === 'string' ? body.access_token : undefined);
    },
  );
};
