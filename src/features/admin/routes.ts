import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyRequest } from 'fastify';
import { Type } from 'typebox';
import { authenticate, caller } from '../sessions/authenticate.js';
import { requirePermission, type CurrentGrants } from '../rbac/guards.js';
import { clientMeta } from '../../http/client-meta.js';
import { NoContent, errorResponses, secured } from '../../http/schemas.js';
import { Password, UserBody, toUserBody } from '../accounts/schemas.js';
import type { SessionService } from '../sessions/service.js';
import type { RoleRow } from '../rbac/tables.js';
import type { Actor, AdminService } from './service.js';
import { IdentityBody, toIdentityBody } from '../social/schemas.js';

export interface AdminRoutesOptions {
  admin: AdminService;
  sessions: SessionService;
  /** The caller's roles and permissions as stored now: the guards decide on these, not on the token's claims. */
  grantsOf: CurrentGrants;
}

const Id = Type.Object({ id: Type.String({ format: 'uuid' }) });
const RoleName = Type.String({ minLength: 1, maxLength: 64 });
const Permissions = Type.Array(Type.String({ maxLength: 200 }), { maxItems: 500 });
const RoleBody = Type.Object({
  name: Type.String(),
  description: Type.String(),
  permissions: Type.Array(Type.String()),
  builtin: Type.Boolean(),
  users: Type.Optional(Type.Integer()),
});
const toRoleBody = (r: RoleRow & { users?: number }) => ({
  name: r.name,
  description: r.description,
  permissions: r.permissions,
  builtin: r.builtin,
  ...(r.users !== undefined ? { users: r.users } : {}),
});

function actor(request: FastifyRequest): Actor {
  const meta = clientMeta(request);
  return { id: caller(request).token.sub, ip: meta.ip, userAgent: meta.userAgent };
}

/** The signed-in caller's user id, for the RBAC guards. */
const callerId = (request: FastifyRequest) => caller(request).token.sub;

/**
 * /admin/*: permission-guarded (users:read, users:write, roles:read, roles:write;
 * the built-in admin role holds `*`) on the caller's roles as stored now. An actor
 * only gives, edits or takes away what it holds itself. Every change is audited.
 */
export const adminRoutes: FastifyPluginAsyncTypebox<AdminRoutesOptions> = async (app, { admin, sessions, grantsOf }) => {
  const auth = authenticate(sessions);
  const can = (...p: string[]) => [auth, requirePermission(grantsOf, callerId, ...p)];
  const tags = ['admin'];

  app.get(
    '/admin/users',
    {
      preHandler: can('users:read'),
      schema: {
        tags,
        summary: 'List and search users (newest first, cursor pagination)',
        security: secured,
        querystring: Type.Object({
          email_prefix: Type.Optional(Type.String({ maxLength: 320 })),
          role: Type.Optional(Type.String({ maxLength: 64 })),
          status: Type.Optional(Type.Union([Type.Literal('active'), Type.Literal('disabled'), Type.Literal('unverified')])),
          limit: Type.Optional(Type.String({ pattern: '^[1-9][0-9]?$|^100$', description: '1–100, default 50' })),
          cursor: Type.Optional(Type.String({ maxLength: 200 })),
        }),
        response: {
          200: Type.Object({ users: Type.Array(UserBody), next_cursor: Type.Union([Type.String(), Type.Null()]) }),
          ...errorResponses(401, 403, 422),
        },
      },
    },
    async (request) => {
      const q = request.query;
      const page = await admin.listUsers({
        emailPrefix: q.email_prefix,
        role: q.role,
        status: q.status,
        limit: q.limit ? Number(q.limit) : 50,
        cursor: q.cursor,
      });
      return { users: page.users.map(toUserBody), next_cursor: page.nextCursor };
    },
  );

  app.get(
    '/admin/users/:id',
    {
      preHandler: can('users:read'),
      schema: {
        tags,
        summary: 'A user with roles, permissions, sessions, MFA status and identities',
        security: secured,
        params: Id,
        response: {
          200: Type.Object({
            user: UserBody,
            disabled: Type.Boolean(),
            roles: Type.Array(Type.String()),
            permissions: Type.Array(Type.String()),
            mfa: Type.Object({ totp_enabled: Type.Boolean(), recovery_codes_remaining: Type.Integer() }),
            sessions: Type.Array(
              Type.Object({
                id: Type.String(),
                created_at: Type.String(),
                last_refreshed_at: Type.String(),
                expires_at: Type.String(),
                user_agent: Type.Union([Type.String(), Type.Null()]),
                ip: Type.Union([Type.String(), Type.Null()]),
                amr: Type.Array(Type.String()),
              }),
            ),
            identities: Type.Array(IdentityBody),
          }),
          ...errorResponses(401, 403, 404),
        },
      },
    },
    async (request) => {
      const d = await admin.getUser(request.params.id);
      return {
        user: toUserBody(d.user),
        disabled: d.user.disabledAt !== null,
        roles: d.roles,
        permissions: d.permissions,
        mfa: d.mfa,
        sessions: d.sessions.map((s) => ({
          id: s.id,
          created_at: s.createdAt.toISOString(),
          last_refreshed_at: s.lastRefreshedAt.toISOString(),
          expires_at: s.expiresAt.toISOString(),
          user_agent: s.userAgent,
          ip: s.ip,
          amr: s.amr,
        })),
        identities: d.identities.map(toIdentityBody),
      };
    },
  );

  app.post(
    '/admin/users',
    {
      preHandler: can('users:write'),
      schema: {
        tags,
        summary: 'Create a user (optionally pre-verified; without a password, an invite email lets them choose one)',
        security: secured,
        body: Type.Object(
          {
            email: Type.String({ minLength: 1, maxLength: 320 }),
            password: Type.Optional(Password),
            first_name: Type.Optional(Type.Union([Type.String({ maxLength: 100 }), Type.Null()])),
            last_name: Type.Optional(Type.Union([Type.String({ maxLength: 100 }), Type.Null()])),
            email_verified: Type.Optional(Type.Boolean()),
            roles: Type.Optional(Type.Array(RoleName, { maxItems: 50 })),
            send_invite: Type.Optional(Type.Boolean({ description: 'Default true: an invite (no password) or a confirmation email (unverified)' })),
          },
          { additionalProperties: false },
        ),
        response: { 201: UserBody, ...errorResponses(401, 403, 404, 409, 422) },
      },
    },
    async (request, reply) => {
      const b = request.body;
      const user = await admin.createUser(actor(request), {
        email: b.email,
        password: b.password ?? null,
        firstName: b.first_name,
        lastName: b.last_name,
        emailVerified: b.email_verified ?? false,
        roles: b.roles,
        sendInvite: b.send_invite ?? true,
      });
      return reply.status(201).send(toUserBody(user));
    },
  );

  for (const [path, disabled] of [
    ['disable', true],
    ['enable', false],
  ] as const) {
    app.post(
      `/admin/users/:id/${path}`,
      {
        preHandler: can('users:write'),
        schema: {
          tags,
          summary: disabled ? 'Disable a user: sign-in and refresh refused, every session ended at once' : 'Enable a disabled user',
          security: secured,
          params: Id,
          response: { 204: NoContent, ...errorResponses(401, 403, 404, 409) },
        },
      },
      async (request, reply) => {
        await admin.setDisabled(actor(request), request.params.id, disabled);
        return reply.status(204).send(null);
      },
    );
  }

  app.delete(
    '/admin/users/:id',
    {
      preHandler: can('users:write'),
      schema: { tags, summary: 'Delete a user', security: secured, params: Id, response: { 204: NoContent, ...errorResponses(401, 403, 404, 409) } },
    },
    async (request, reply) => {
      await admin.deleteUser(actor(request), request.params.id);
      return reply.status(204).send(null);
    },
  );

  app.post(
    '/admin/users/:id/roles',
    {
      preHandler: can('users:write'),
      schema: {
        tags,
        summary: 'Give a user a role you may hand out (on Tessera at once; in their tokens from their next refresh)',
        security: secured,
        params: Id,
        body: Type.Object({ role: RoleName }, { additionalProperties: false }),
        response: { 204: NoContent, ...errorResponses(401, 403, 404) },
      },
    },
    async (request, reply) => {
      await admin.addRole(actor(request), request.params.id, request.body.role);
      return reply.status(204).send(null);
    },
  );

  app.delete(
    '/admin/users/:id/roles/:role',
    {
      preHandler: can('users:write'),
      schema: {
        tags,
        summary: 'Take a role from a user',
        security: secured,
        params: Type.Object({ id: Type.String({ format: 'uuid' }), role: RoleName }),
        response: { 204: NoContent, ...errorResponses(401, 403, 404) },
      },
    },
    async (request, reply) => {
      await admin.removeRole(actor(request), request.params.id, request.params.role);
      return reply.status(204).send(null);
    },
  );

  app.post(
    '/admin/users/:id/sessions/revoke',
    {
      preHandler: can('users:write'),
      schema: {
        tags,
        summary: 'End every session of a user now (a role change then applies at once: they must sign in again)',
        security: secured,
        params: Id,
        response: { 200: Type.Object({ revoked: Type.Integer() }), ...errorResponses(401, 403, 404) },
      },
    },
    async (request) => ({ revoked: await admin.revokeSessions(actor(request), request.params.id) }),
  );

  app.get(
    '/admin/roles',
    {
      preHandler: can('roles:read'),
      schema: {
        tags,
        summary: 'Roles with their permissions and user counts',
        security: secured,
        response: { 200: Type.Object({ roles: Type.Array(RoleBody) }), ...errorResponses(401, 403) },
      },
    },
    async () => ({ roles: (await admin.listRoles()).map(toRoleBody) }),
  );

  app.post(
    '/admin/roles',
    {
      preHandler: can('roles:write'),
      schema: {
        tags,
        summary: 'Create a role',
        security: secured,
        body: Type.Object(
          { name: RoleName, description: Type.Optional(Type.String({ maxLength: 500 })), permissions: Permissions },
          { additionalProperties: false },
        ),
        response: { 201: RoleBody, ...errorResponses(401, 403, 409, 422) },
      },
    },
    async (request, reply) => reply.status(201).send(toRoleBody(await admin.createRole(actor(request), request.body))),
  );

  app.patch(
    '/admin/roles/:name',
    {
      preHandler: can('roles:write'),
      schema: {
        tags,
        summary: "Change a role's description or permissions",
        security: secured,
        params: Type.Object({ name: RoleName }),
        body: Type.Object(
          { description: Type.Optional(Type.String({ maxLength: 500 })), permissions: Type.Optional(Permissions) },
          { additionalProperties: false },
        ),
        response: { 200: RoleBody, ...errorResponses(401, 403, 404, 422) },
      },
    },
    async (request) => toRoleBody(await admin.updateRole(actor(request), request.params.name, request.body)),
  );

  app.delete(
    '/admin/roles/:name',
    {
      preHandler: can('roles:write'),
      schema: {
        tags,
        summary: 'Delete a role (not admin or user)',
        security: secured,
        params: Type.Object({ name: RoleName }),
        response: { 204: NoContent, ...errorResponses(401, 403, 404, 409) },
      },
    },
    async (request, reply) => {
      await admin.deleteRole(actor(request), request.params.name);
      return reply.status(204).send(null);
    },
  );
};
