import type { FastifyRequest, preHandlerAsyncHookHandler } from 'fastify';
import { AppError } from '../../errors.js';
import { permits, type Grants } from './grant-rules.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The caller's grants as stored now, read once per request by the first guard. */
    grants?: Grants;
  }
}

/** A user's roles and permissions as stored now (rbac service `grantsOf`). The route guards of RBAC: they live with
 * the feature that owns the rules (http/ stays transport only). */
export type CurrentGrants = (userId: string) => Promise<Grants>;

/** The signed-in caller's user id (the sessions feature's `caller(request).token.sub`), given by the routes: rbac does not import sessions. */
export type CallerId = (request: FastifyRequest) => string;

/**
 * Tessera's own routes decide on the caller's roles as stored now, not on the
 * roles its access token claims: a demoted administrator's still-valid token is
 * refused at once, and a new role applies at once. One indexed query per guarded
 * request (other services keep deciding from the token alone).
 */
async function grantsOf(request: FastifyRequest, current: CurrentGrants, callerId: CallerId): Promise<Grants> {
  request.grants ??= await current(callerId(request));
  return request.grants;
}

/** preHandler after `authenticate`: any one of `roles` is held now. 403 `forbidden` otherwise. */
export function requireRole(current: CurrentGrants, callerId: CallerId, ...roles: string[]): preHandlerAsyncHookHandler {
  return async function requireRoleHook(request: FastifyRequest) {
    const held = (await grantsOf(request, current, callerId)).roles;
    if (!roles.some((r) => held.includes(r))) throw new AppError('forbidden', `This needs the role ${roles.join(' or ')}.`);
  };
}

/** preHandler after `authenticate`: every listed permission is granted now (`*` and `resource:*` grant more). */
export function requirePermission(current: CurrentGrants, callerId: CallerId, ...permissions: string[]): preHandlerAsyncHookHandler {
  return async function requirePermissionHook(request: FastifyRequest) {
    const granted = (await grantsOf(request, current, callerId)).permissions;
    const missing = permissions.filter((p) => !permits(granted, p));
    if (missing.length) throw new AppError('forbidden', `This needs the permission ${missing.join(', ')}.`);
  };
}
