import { AppError } from '../../errors.js';
import type { Database } from '../../infra/db/client.js';
import type { AccountMail } from '../accounts/account-mail.js';
import type { AccountService } from '../accounts/service.js';
import type { UserRow } from '../accounts/tables.js';
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

function decodeCursor(cursor: string | undefined): Cursor | undefined {
  if (!cursor) return undefined;
  try {
    const [at, id] = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as [string, string];
    const createdAt = new Date(at);
    if (Number.isNaN(createdAt.getTime()) || !/^[0-9a-f-]{36}$/i.test(id)) throw new Error('cursor');
    return { createdAt, id };
  } catch {
    throw new AppError('validation_failed', 'The cursor is not one this API returned.', [{ field: 'cursor', message: 'invalid' }]);
  }
}

export type AdminService = ReturnType<typeof createAdminService>;

/** User and role administration. Every change is audited with the acting administrator. */
export function createAdminService(deps: AdminDeps) {
  const { db, accounts, rbac, sessions, mfa, audit, mail } = deps;

  /** Audits a change with the acting administrator (`cli` without one). */
  const record = (tx: Database, actor: Actor | null, type: string, userId: string | null, details: Record<string, string | number | boolean> = {}) =>
    audit.record(tx, { userId, type, ip: actor?.ip ?? null, userAgent: actor?.userAgent ?? null, details: { actor: actor?.id ?? 'cli', ...details } });

  function notSelf(actor: Actor, userId: string) {
    if (actor.id === userId) throw new AppError('cannot_modify_self');
  }

  return {
    async listUsers(q: { emailPrefix?: string | undefined; role?: string | undefined; status?: 'active' | 'disabled' | 'unverified' | undefined; limit: number; cursor?: string | undefined }) {
      const rows = await accounts.search({ emailPrefix: q.emailPrefix?.trim().toLowerCase(), role: q.role, status: q.status, limit: q.limit + 1, after: decodeCursor(q.cursor) });
      const page = rows.slice(0, q.limit);
      const last = page[page.length - 1];
      return { users: page, nextCursor: rows.length > q.limit && last ? encodeCursor(last) : null };
    },

    async getUser(id: string) {
      const user = await accounts.getProfile(id);
      const [grants, live, mfaStatus, identities] = await Promise.all([rbac.grantsOf(id), sessions.list(id), mfa.status(id), deps.identitiesOf(id)]);
      return { user, roles: grants.roles, permissions: grants.permissions, sessions: live, mfa: mfaStatus, identities };
    },

    async createUser(
      actor: Actor | null,
      input: { email: string; password: string | null; firstName?: string | null | undefined; lastName?: string | null | undefined; emailVerified: boolean; roles?: string[] | undefined; sendInvite: boolean },
    ): Promise<UserRow> {
      const roles = input.roles ?? [deps.defaultRole];
      const user = await db.transaction(async (tx) => {
        const created = await accounts.createByAdmin(tx, input);
        await rbac.assign(tx, created.id, roles);
        if (input.sendInvite) {
          if (input.password === null) await mail.invite(tx, created);
          else if (!input.emailVerified) await mail.confirmation(tx, created);
        }
        await record(tx, actor, 'admin_user_created', created.id, { roles: roles.join(',') });
        return created;
      });
      mail.committed();
      return user;
    },

    async setDisabled(actor: Actor, id: string, disabled: boolean): Promise<UserRow> {
      notSelf(actor, id);
      return db.transaction(async (tx) => {
        if (disabled) await rbac.keepAnAdmin(tx, id);
        const user = await accounts.setDisabled(tx, id, disabled);
        await record(tx, actor, disabled ? 'admin_user_disabled' : 'admin_user_enabled', id);
        return user;
      });
    },

    async deleteUser(actor: Actor, id: string): Promise<void> {
      notSelf(actor, id);
      await db.transaction(async (tx) => {
        await rbac.keepAnAdmin(tx, id);
        await accounts.removeByAdmin(tx, id);
        await record(tx, actor, 'admin_user_deleted', id);
      });
    },

    async addRole(actor: Actor | null, userId: string, role: string): Promise<void> {
      await accounts.getProfile(userId);
      await db.transaction(async (tx) => {
        await rbac.assign(tx, userId, [role]);
        await record(tx, actor, 'admin_role_assigned', userId, { role });
      });
    },

    async removeRole(actor: Actor | null, userId: string, role: string): Promise<void> {
      await db.transaction(async (tx) => {
        if (role === 'admin') await rbac.keepAnAdmin(tx, userId);
        await rbac.unassign(tx, userId, role);
        await record(tx, actor, 'admin_role_removed', userId, { role });
      });
    },

    async revokeSessions(actor: Actor, userId: string): Promise<number> {
      await accounts.getProfile(userId);
      return db.transaction(async (tx) => {
        const n = await sessions.revokeAll(userId, 'revoked_by_admin', tx);
        await record(tx, actor, 'admin_sessions_revoked', userId, { sessions: n });
        return n;
      });
    },

    listRoles: () => rbac.list(),

    async createRole(actor: Actor, r: { name: string; description?: string | undefined; permissions: string[] }) {
      return db.transaction(async (tx) => {
        const role = await rbac.create(r, tx);
        await record(tx, actor, 'admin_role_created', null, { role: role.name, permissions: role.permissions.join(',') });
        return role;
      });
    },

    async updateRole(actor: Actor, name: string, changes: { description?: string | undefined; permissions?: string[] | undefined }) {
      return db.transaction(async (tx) => {
        const role = await rbac.update(name, changes, tx);
        await record(tx, actor, 'admin_role_updated', null, { role: role.name, permissions: role.permissions.join(',') });
        return role;
      });
    },

    async deleteRole(actor: Actor, name: string): Promise<void> {
      await db.transaction(async (tx) => {
        await rbac.remove(name, tx);
        await record(tx, actor, 'admin_role_deleted', null, { role: name });
      });
    },
  };
}
