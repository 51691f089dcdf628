// Fastify (v5) hooks. `fastify` is imported for types only: this file adds no runtime dependency.
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { AccessTokenClaims } from './claims.js';
import { authenticate, checkPermission, checkRole, nonEmpty, type AuthOptions, type Denial } from './http.js';
import type { Verifier } from './verifier.js';

declare module 'fastify' {
  interface FastifyRequest {
    /**
     * The verified access token's claims, set by `fastifyAuth` (undefined on routes without it).
     * Named `claims`, not `auth`, so it cannot clash with another `request.auth` (Tessera's own server has one).
     */
    claims?: AccessTokenClaims;
  }
}

/** An async Fastify hook: use it as `onRequest` (before the body is read; cheapest) or `preHandler`. */
export type FastifyAuthHook = (request: FastifyRequest, reply: FastifyReply) => Promise<unknown>;

export type FastifyAuthOptions = AuthOptions;

function deny(reply: FastifyReply, d: Denial): FastifyReply {
  return reply.code(d.status).headers(d.headers).send(d.body);
}

/**
 * Requires a valid Tessera access token (`Authorization: Bearer …`) and puts its claims on
 * `request.claims`. Otherwise 401 `{error: 'unauthorized' | 'invalid_token', message}` with
 * `WWW-Authenticate: Bearer …`, or 503 `{error: 'service_unavailable'}` if the JWKS cannot be fetched.
 */
export function fastifyAuth(verifier: Verifier, opts: FastifyAuthOptions = {}): FastifyAuthHook {
  return async function tesseraAuth(request, reply) {
    const result = await authenticate(verifier, request.headers.authorization, opts);
    if ('denial' in result) return deny(reply, result.denial);
    request.claims = result.claims;
    return undefined;
  };
}

/** A hook that lets the request through unless `check` denies its claims. */
function guard(check: (claims: AccessTokenClaims | undefined) => Denial | null): FastifyAuthHook {
  return async function tesseraGuard(request, reply) {
    const denial = check(request.claims);
    return denial ? deny(reply, denial) : undefined;
  };
}

/** After `fastifyAuth`: the token must have AT LEAST ONE of `roles`; 403 `{error: 'forbidden'}` otherwise. */
export function requireRole(...roles: string[]): FastifyAuthHook {
  nonEmpty('requireRole', roles);
  return guard((claims) => checkRole(claims, roles));
}

/** After `fastifyAuth`: the token must grant EVERY one of `permissions` (`*`, `resource:*` count); 403 otherwise. */
export function requirePermission(...permissions: string[]): FastifyAuthHook {
  nonEmpty('requirePermission', permissions);
  return guard((claims) => checkPermission(claims, permissions));
}
