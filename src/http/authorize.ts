import type { FastifyRequest, preHandlerAsyncHookHandler } from 'fastify';
import { AppError } from '../errors.js';
import { permits } from '../features/rbac/service.js';
import { caller } from './authenticate.js';

/**
 * preHandlers after `authenticate`, deciding from the access token alone (as
 * other services do): a role change shows at the user's next refresh, or at once
 * after POST /admin/users/:id/sessions/revoke. 403 `forbidden` otherwise.
 */
export function requireRole(...roles: string[]): preHandlerAsyncHookHandler {
  return async function requireRoleHook(request: FastifyRequest) {
    const held = caller(request).token.roles;
    if (!roles.some((r) => held.includes(r))) throw new AppError('forbidden', `This needs the role ${roles.join(' or ')}.`);
  };
}

/** Every listed permission must be granted (`*` and `resource:*` grant more). */
export function requirePermission(...permissions: string[]): preHandlerAsyncHookHandler {
  return async function requirePermissionHook(request: FastifyRequest) {
    const granted = caller(request).token.permissions;
    const missing = permissions.filter((p) => !permits(granted, p));
    if (missing.length) throw new AppError('forbidden', `This needs the permission ${missing.join(', ')}.`);
  };
}
