import { sql } from 'drizzle-orm';
import { AppError } from '../../errors.js';
import type { Clock } from '../../infra/clock.js';
import type { Database } from '../../infra/db/client.js';
import * as repo from './repo.js';
import type { RoleRow } from './tables.js';

/** Role names: lower-case, digits, `_ - :`, starting with a letter. */
const ROLE_NAME = /^[a-z][a-z0-9_:-]{0,63}$/;
/** Permission strings: `resource:action` style, `*` alone, or `resource:*`. */
const PERMISSION = /^(\*|[a-z][a-z0-9_.-]{0,63}(:([a-z0-9_.-]{1,64}|\*))*)$/;

export interface Grants {
  roles: string[];
  permissions: string[];
}

/** Whether `granted` covers `wanted`: exact, `*`, or a `resource:*` prefix. */
export function permits(granted: readonly string[], wanted: string): boolean {
  return granted.some((g) => g === '*' || g === wanted || (g.endsWith(':*') && wanted.startsWith(g.slice(0, -1))));
}

function checkPermissions(list: string[]): string[] {
  const bad = list.filter((p) => !PERMISSION.test(p));
  if (bad.length) throw new AppError('validation_failed', `Invalid permission: ${bad.join(', ')}`, bad.map((p) => ({ field: 'permissions', message: `invalid: ${p}` })));
  return [...new Set(list)].sort();
}

export type RbacService = ReturnType<typeof createRbacService>;

export function createRbacService(deps: { db: Database; clock: Clock; defaultRole: string }) {
  const { db, clock } = deps;

  return {
    /** Roles and flattened permissions for an access token (read at sign-in and at every refresh). */
    async grantsOf(userId: string, tx: Database = db): Promise<Grants> {
      const rows = await repo.rolesOfUser(tx, userId);
      return { roles: rows.map((r) => r.name), permissions: [...new Set(rows.flatMap((r) => r.permissions))].sort() };
    },

    /** Gives a new user DEFAULT_ROLE (created if it does not exist yet). */
    async assignDefault(tx: Database, userId: string): Promise<void> {
      await repo.ensureRole(tx, deps.defaultRole);
      await repo.addUserRoles(tx, userId, [deps.defaultRole]);
    },

    list: () => repo.listRoles(db),

    async create(r: { name: string; description?: string | undefined; permissions: string[] }, tx: Database = db): Promise<RoleRow> {
      if (!ROLE_NAME.test(r.name)) throw new AppError('validation_failed', 'A role name is lower-case letters, digits, _ - or :, starting with a letter.', [{ field: 'name', message: 'invalid' }]);
      const created = await repo.insertRole(tx, { name: r.name, description: r.description ?? '', permissions: checkPermissions(r.permissions), now: clock.now() });
      if (!created) throw new AppError('role_exists');
      return created;
    },

    async update(name: string, changes: { description?: string | undefined; permissions?: string[] | undefined }, tx: Database = db): Promise<RoleRow> {
      const set: { description?: string; permissions?: string[] } = {};
      if (changes.description !== undefined) set.description = changes.description;
      if (changes.permissions !== undefined) set.permissions = checkPermissions(changes.permissions);
      const role = await repo.updateRole(tx, name, set, clock.now());
      if (!role) throw new AppError('role_not_found');
      return role;
    },

    async remove(name: string, tx: Database = db): Promise<void> {
      if (await repo.deleteRole(tx, name)) return;
      throw new AppError((await repo.findRole(tx, name)) ? 'role_builtin' : 'role_not_found');
    },

    /** Adds roles to a user; every role must exist. */
    async assign(tx: Database, userId: string, names: string[]): Promise<void> {
      const unique = [...new Set(names)];
      const found = await repo.existingRoles(tx, unique);
      const missing = unique.filter((n) => !found.includes(n));
      if (missing.length) throw new AppError('role_not_found', `No such role: ${missing.join(', ')}`);
      await repo.addUserRoles(tx, userId, unique);
    },

    /**
     * Refuses (409 `last_admin`) to take away the last enabled administrator: by
     * removing the role, disabling or deleting. Call it in the change's transaction;
     * concurrent changes are serialised so two admins cannot demote each other at once.
     */
    async keepAnAdmin(tx: Database, userId: string): Promise<void> {
      await tx.execute(sql`select pg_advisory_xact_lock(hashtextextended('tessera:admins', 0))`);
      if (!(await repo.holdsRole(tx, userId, 'admin'))) return;
      if ((await repo.countOtherEnabledHolders(tx, 'admin', userId)) === 0) throw new AppError('last_admin');
    },

    async unassign(tx: Database, userId: string, name: string): Promise<void> {
      if (!(await repo.removeUserRole(tx, userId, name))) throw new AppError('role_not_found', `The user does not have the role ${name}.`);
    },
  };
}
