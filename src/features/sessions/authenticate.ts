import type { FastifyReply, FastifyRequest, preHandlerAsyncHookHandler } from 'fastify';
import { AppError } from '../../errors.js';
import { multiFactorAmr } from './amr.js';
import type { Authenticated, SessionService } from './service.js';

declare module 'fastify' {
  interface FastifyRequest {
    auth?: Authenticated;
  }
}

/** The bearer token of the request, or null. */
export function bearerToken(request: FastifyRequest): string | null {
  const header = request.headers.authorization;
  if (!header) return null;
  const match = /^Bearer\s+([A-Za-z0-9\-_.~+/]+=*)\s*$/i.exec(header);
  return match?.[1] ?? null;
}

/**
 * RFC 6750 §3.1: no credentials (no header, another scheme, `Bearer` alone) is
 * `unauthorized` without an error code; a Bearer credential that is not a
 * b64token (spaces, other characters) is a malformed token: `invalid_token`.
 * The scheme is case-insensitive (RFC 9110 §11.1).
 */
const hasBearerCredential = (request: FastifyRequest) => /^Bearer\s+\S/i.test(request.headers.authorization ?? '');

/**
 * The route guards of signed-in requests. They live with the sessions feature, whose
 * service decides what a valid access token is (http/ stays transport only).
 */

/** preHandler: requires a valid access token of a live session; puts it on `request.auth`. */
export function authenticate(sessions: SessionService): preHandlerAsyncHookHandler {
  return async function authenticateHook(request: FastifyRequest, _reply: FastifyReply) {
    const token = bearerToken(request);
    if (!token) throw new AppError(hasBearerCredential(request) ? 'invalid_token' : 'unauthorized');
    request.auth = await sessions.authenticate(token);
  };
}

/**
 * preHandler after `authenticate`: the session must have been opened with every
 * method in `methods` (its `amr`), e.g. `requireAmr('otp')` for actions that need
 * a sign-in with a second factor: `otp` is also met by a passkey with user verification
 * (sessions/amr.ts). 403 `insufficient_user_authentication` otherwise.
 */
export function requireAmr(...methods: string[]): preHandlerAsyncHookHandler {
  return async function requireAmrHook(request: FastifyRequest) {
    const amr = caller(request).token.amr;
    if (!methods.every((m) => (m === 'otp' ? multiFactorAmr(amr) : amr.includes(m)))) throw new AppError('insufficient_user_authentication');
  };
}

/** The authenticated caller; only for routes guarded by `authenticate`. */
export function caller(request: FastifyRequest): Authenticated {
  if (!request.auth) throw new AppError('unauthorized');
  return request.auth;
}
