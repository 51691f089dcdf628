import { AppError } from '../../errors.js';
import type { Database } from '../../infra/db/client.js';
import type { AccountMail } from '../accounts/account-mail.js';
import type { AccountService } from '../accounts/service.js';
import type { UserRow } from '../accounts/tables.js';
import type { AuditEventType } from '../audit/events.js';
import type { AuditService } from '../audit/service.js';
import type { MfaService } from '../mfa/service.js';
import type { RbacService } from '../rbac/service.js';
import type { SessionService } from '../sessions/service.js';
import type { IdentityRow } from '../social/tables.js';

export interface Actor {
  id: string;
  ip: string | null;
  userAgent: string | null;
}

export interface AdminDeps {
  db: Database;
  accounts: AccountService;
  rbac: RbacService;
  sessions: SessionService;
  mfa: MfaService;
  audit: AuditService;
  mail: AccountMail;
  defaultRole: string;
  /** The user's third-party identities (social/service.ts). */
  identitiesOf: (userId: string) => Promise<IdentityRow[]>;
}

interface Cursor {
  createdAt: Date;
  id: string;
}

const encodeCursor = (u: UserRow) => Buffer.from(JSON.stringify([u.createdAt.toISOString(), u.id])).toString('base64url');

const MIN_CURSOR_TIME = Date.parse('0001-01-01T00:00:00.000Z');
const MAX_CURSOR_TIME = Date.parse('9999-12-31T23:59:59.999Z');

function decodeCursor(cursor: string | undefined): Cursor | undefined {
  if (!cursor) return undefined;
  try {
    const [at, id] = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as [string, string];
    const createdAt = new Date(at);
    // Years 1–9999 only: PostgreSQL does not read the ±6-digit years JavaScript writes for its extreme dates (a 500 before).
    const time = createdAt.getTime();
    if (Number.isNaN(time) || time < MIN_CURSOR_TIME || time > MAX_CURSOR_TIME || !/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(id))
      throw new Error('cursor');
    return { createdAt, id };
  } catch {
    throw new AppError('validation_failed', 'The cursor is not one this API returned.', [{ field: 'cursor', message: 'invalid' }]);
  }
}

export type AdminService = ReturnType<typeof createAdminService>;

/**
 * User and role administration. Every change is audited with the acting administrator,
 * and an actor only gives, edits or takes away what it holds itself (rbac/grant-rules.ts).
 */
export function createAdminService(deps: AdminDeps) {
  const { db, accounts, rbac, sessions, mfa, audit, mail } = deps;

  /** Audits a change with the acting administrator (`cli` without one). */
  const record = (
    tx: Database,
    actor: Actor | null,
    type: Extract<AuditEventType, `admin_${string}`>,
    userId: string | null,
    details: Record<string, string | number | boolean> = {},
  ) => audit.record(tx, { userId, type, ip: actor?.ip ?? null, userAgent: actor?.userAgent ?? null, details: { actor: actor?.id ?? 'cli', ...details } });

  function notSelf(actor: Actor, userId: string) {
    if (actor.id === userId) throw new AppError('cannot_modify_self');
  }

  /**
   * Opens an admin change in `tx` on the actor's grants as stored now (not its
   * token's: a demotion applies at once), requiring the route's `permission` again
   * under the RBAC lock. The CLI (no actor) is unrestricted.
   */
  const acting = (tx: Database, actor: Actor | null, permission: string) => rbac.actingAs(tx, actor?.id ?? null, permission);

  return {
    async listUsers(q: {
      emailPrefix?: string | undefined;
      role?: string | undefined;
      status?: 'active' | 'disabled' | 'unverified' | undefined;
      limit: number;
      cursor?: string | undefined;
    }) {
      const rows = await accounts.search({
        emailPrefix: q.emailPrefix?.trim().toLowerCase(),
        role: q.role,
        status: q.status,
        limit: q.limit + 1,
        after: decodeCursor(q.cursor),
      });
      const page = rows.slice(0, q.limit);
      const last = page[page.length - 1];
      return { users: page, nextCursor: rows.length > q.limit && last ? encodeCursor(last) : null };
    },

    async getUser(id: string) {
      const user = await accounts.getProfile(id);
      const [grants, live, mfaStatus, identities] = await Promise.all([rbac.grantsOf(id), sessions.list(id), mfa.status(id), deps.identitiesOf(id)]);
      return { user, roles: grants.roles, permissions: grants.permissions, sessions: live, mfa: mfaStatus, identities };
    },

    /** Roles named in `input.roles` must be ones the actor may hand out; without them the user gets DEFAULT_ROLE, as at sign-up. */
    async createUser(
      actor: Actor | null,
      input: {
        email: string;
        password: string | null;
        firstName?: string | null | undefined;
        lastName?: string | null | undefined;
        emailVerified: boolean;
        roles?: string[] | undefined;
        sendInvite: boolean;
      },
    ): Promise<UserRow> {
      const user = await db.transaction(async (tx) => {
        const by = await acting(tx, actor, 'users:write');
        const created = await accounts.createByAdmin(tx, input);
        if (input.roles) await rbac.assign(tx, by, created.id, input.roles);
        else await rbac.assignDefault(tx, created.id);
        if (input.sendInvite) {
          if (input.password === null) await mail.invite(tx, created);
          else if (!input.emailVerified) await mail.confirmation(tx, created);
        }
        await record(tx, actor, 'admin_user_created', created.id, { roles: (input.roles ?? [deps.defaultRole]).join(',') });
        return created;
      });
      mail.committed();
      return user;
    },

    async setDisabled(actor: Actor, id: string, disabled: boolean): Promise<UserRow> {
      notSelf(actor, id);
      return db.transaction(async (tx) => {
        await rbac.mayChangeUser(tx, await acting(tx, actor, 'users:write'), id);
        if (disabled) await rbac.keepAnAdmin(tx, id);
        const user = await accounts.setDisabled(tx, id, disabled);
        await record(tx, actor, disabled ? 'admin_user_disabled' : 'admin_user_enabled', id);
        return user;
      });
    },

    async deleteUser(actor: Actor, id: string): Promise<void> {
      notSelf(actor, id);
      await db.transaction(async (tx) => {
        await rbac.mayChangeUser(tx, await acting(tx, actor, 'users:write'), id);
        await rbac.keepAnAdmin(tx, id);
        await accounts.removeByAdmin(tx, id);
        await record(tx, actor, 'admin_user_deleted', id);
      });
    },

    /** Never to oneself; only a role the actor may hand out, to a user it may change. */
    async addRole(actor: Actor | null, userId: string, role: string): Promise<void> {
      if (actor) notSelf(actor, userId);
      await accounts.getProfile(userId);
      await db.transaction(async (tx) => {
        const by = await acting(tx, actor, 'users:write');
        await rbac.mayChangeUser(tx, by, userId);
        await rbac.assign(tx, by, userId, [role]);
        await record(tx, actor, 'admin_role_assigned', userId, { role });
      });
    },

    /** Only a role the actor could have given; stepping down oneself is allowed (but not as the last admin). */
    async removeRole(actor: Actor | null, userId: string, role: string): Promise<void> {
      await db.transaction(async (tx) => {
        const by = await acting(tx, actor, 'users:write');
        await rbac.mayChangeUser(tx, by, userId);
        if (role === 'admin') await rbac.keepAnAdmin(tx, userId);
        await rbac.unassign(tx, by, userId, role);
        await record(tx, actor, 'admin_role_removed', userId, { role });
      });
    },

    async revokeSessions(actor: Actor, userId: string): Promise<number> {
      await accounts.getProfile(userId);
      return db.transaction(async (tx) => {
        await rbac.mayChangeUser(tx, await acting(tx, actor, 'users:write'), userId);
        const n = await sessions.endEverywhere(userId, 'revoked_by_admin', tx);
        await record(tx, actor, 'admin_sessions_revoked', userId, { sessions: n });
        return n;
      });
    },

    listRoles: () => rbac.list(),

    async createRole(actor: Actor, r: { name: string; description?: string | undefined; permissions: string[] }) {
      return db.transaction(async (tx) => {
        const role = await rbac.create(tx, await acting(tx, actor, 'roles:write'), r);
        await record(tx, actor, 'admin_role_created', null, { role: role.name, permissions: role.permissions.join(',') });
        return role;
      });
    },

    async updateRole(actor: Actor, name: string, changes: { description?: string | undefined; permissions?: string[] | undefined }) {
      return db.transaction(async (tx) => {
        const role = await rbac.update(tx, await acting(tx, actor, 'roles:write'), name, changes);
        await record(tx, actor, 'admin_role_updated', null, { role: role.name, permissions: role.permissions.join(',') });
        return role;
      });
    },

    async deleteRole(actor: Actor, name: string): Promise<void> {
      await db.transaction(async (tx) => {
        await rbac.remove(tx, await acting(tx, actor, 'roles:write'), name);
        await record(tx, actor, 'admin_role_deleted', null, { role: name });
      });
    },
  };
}
