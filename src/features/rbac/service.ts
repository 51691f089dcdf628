import { sql } from 'drizzle-orm';
import { AppError } from '../../errors.js';
import type { Clock } from '../../infra/clock.js';
import type { Database } from '../../infra/db/client.js';
import { ADMIN_ROLE, mayHandOut, mayManage, notHeld, permits, type Grants } from './grant-rules.js';
import { readGrants } from './grants.js';
import * as repo from './repo.js';
import type { RoleRow } from './tables.js';

export type { Grants } from './grant-rules.js';

/** Role names: lower-case, digits, `_ - :`, starting with a letter. */
const ROLE_NAME = /^[a-z][a-z0-9_:-]{0,63}$/;
/** Permission strings: `resource:action` style, `*` alone, or `resource:*`. */
const PERMISSION = /^(\*|[a-z][a-z0-9_.-]{0,63}(:([a-z0-9_.-]{1,64}|\*))*)$/;

/**
 * The grants a change is made with: an actor's, as stored when the change took
 * the RBAC lock, or null for the CLI (an operator with the database: unrestricted).
 */
export type ActingGrants = Grants | null;

function checkPermissions(list: string[]): string[] {
  const bad = list.filter((p) => !PERMISSION.test(p));
  if (bad.length)
    throw new AppError(
      'validation_failed',
      `Invalid permission: ${bad.join(', ')}`,
      bad.map((p) => ({ field: 'permissions', message: `invalid: ${p}` })),
    );
  return [...new Set(list)].sort();
}

const flatten = (rows: Array<{ name: string; permissions: string[] }>): Grants => ({
  roles: rows.map((r) => r.name),
  permissions: [...new Set(rows.flatMap((r) => r.permissions))].sort(),
});

/** 403 unless `by` may give, edit or take away `role`. */
function mustHandOut(by: ActingGrants, role: RoleRow): void {
  if (!by || mayHandOut(by, role)) return;
  if (role.name === ADMIN_ROLE && !by.roles.includes(ADMIN_ROLE))
    throw new AppError('forbidden', 'Only an administrator can give, change or take away the admin role.');
  throw new AppError('forbidden', `The role ${role.name} has permissions you do not hold: ${notHeld(by, role.permissions).join(', ')}.`);
}

/** 403 unless `by` holds every permission it wants to put into a role. */
function mustHoldAll(by: ActingGrants, permissions: string[]): void {
  const missing = by ? notHeld(by, permissions) : [];
  if (missing.length) throw new AppError('forbidden', `You can only put permissions you hold into a role; you do not hold ${missing.join(', ')}.`);
}

/**
 * 403 unless an administrator adds permissions to a role the actor holds, or to
 * DEFAULT_ROLE (every sign-up's, a second account of the actor's among them): that
 * would be a grant to itself, and one that outlives its demotion. Taking
 * permissions out of such a role is stepping down, and allowed.
 */
function mustNotGrowOwn(by: ActingGrants, role: RoleRow, permissions: string[], defaultRole: string): void {
  if (!by || by.roles.includes(ADMIN_ROLE)) return;
  if (!by.roles.includes(role.name) && role.name !== defaultRole) return;
  const added = permissions.filter((p) => !role.permissions.includes(p));
  if (added.length) {
    throw new AppError('forbidden', `Only an administrator can add permissions to a role you hold or to the default role (${role.name}): ${added.join(', ')}.`);
  }
}

export type RbacService = ReturnType<typeof createRbacService>;

export function createRbacService(deps: { db: Database; clock: Clock; defaultRole: string }) {
  const { db, clock } = deps;

  /** Serialises every role, grant and admin-account change (they are rare), so each decides on settled grants. */
  const lock = (tx: Database) => tx.execute(sql`select pg_advisory_xact_lock(hashtextextended('tessera:rbac', 0))`);

  async function findRole(tx: Database, name: string): Promise<RoleRow> {
    const role = await repo.findRole(tx, name);
    if (!role) throw new AppError('role_not_found');
    return role;
  }

  return {
    /**
     * A user's roles and flattened permissions as stored now: for an access token (at
     * sign-in and every refresh) and for the guards of Tessera's own routes. One
     * query (grants.ts, the same definition a refresh reads in its own statement).
     */
    async grantsOf(userId: string, tx: Database = db): Promise<Grants> {
      return readGrants(tx, userId);
    },

    /**
     * Starts an RBAC change inside `tx`: takes the RBAC lock, then reads the actor's
     * grants as stored now (none once disabled or deleted) and requires `permission`.
     * A concurrent demotion is thus either seen here or waits for this change.
     * `actorId` null is the CLI: unrestricted (returns null).
     */
    async actingAs(tx: Database, actorId: string | null, permission: string): Promise<ActingGrants> {
      await lock(tx);
      if (actorId === null) return null;
      const grants = flatten(await repo.rolesOfEnabledUser(tx, actorId));
      if (!permits(grants.permissions, permission)) throw new AppError('forbidden', `This needs the permission ${permission}.`);
      return grants;
    },

    /** 403 unless `by` could have given `userId` everything it holds (an admin only by an admin). */
    async mayChangeUser(tx: Database, by: ActingGrants, userId: string): Promise<void> {
      if (!by) return;
      if (!mayManage(by, await readGrants(tx, userId))) {
        throw new AppError('forbidden', 'This user holds roles or permissions you do not; only someone holding them all can change the account.');
      }
    },

    /** Gives a new user DEFAULT_ROLE (created if it does not exist yet). */
    async assignDefault(tx: Database, userId: string): Promise<void> {
      await repo.ensureRole(tx, deps.defaultRole);
      await repo.addUserRoles(tx, userId, [deps.defaultRole]);
    },

    /** Gives many new users DEFAULT_ROLE and `extra` roles (which must exist) in one statement (`tessera import`). */
    async assignToNew(tx: Database, userIds: string[], extra: (userId: string) => string[]): Promise<void> {
      if (!userIds.length) return;
      await repo.ensureRole(tx, deps.defaultRole);
      await repo.addUserRolePairs(
        tx,
        userIds.flatMap((userId) => [...new Set([deps.defaultRole, ...extra(userId)])].map((role) => ({ userId, role }))),
      );
    },

    /** Which of `names` are not roles. */
    async missingRoles(tx: Database, names: string[]): Promise<string[]> {
      const unique = [...new Set(names)];
      const found = new Set((await repo.findRoles(tx, unique)).map((r) => r.name));
      return unique.filter((n) => !found.has(n));
    },

    list: () => repo.listRoles(db),

    async create(tx: Database, by: ActingGrants, r: { name: string; description?: string | undefined; permissions: string[] }): Promise<RoleRow> {
      if (!ROLE_NAME.test(r.name))
        throw new AppError('validation_failed', 'A role name is lower-case letters, digits, _ - or :, starting with a letter.', [
          { field: 'name', message: 'invalid' },
        ]);
      const permissions = checkPermissions(r.permissions);
      mustHoldAll(by, permissions);
      const created = await repo.insertRole(tx, { name: r.name, description: r.description ?? '', permissions, now: clock.now() });
      if (!created) throw new AppError('role_exists');
      return created;
    },

    /** Only a role `by` could hand out, and only with permissions `by` holds (the built-in `user` included). */
    async update(
      tx: Database,
      by: ActingGrants,
      name: string,
      changes: { description?: string | undefined; permissions?: string[] | undefined },
    ): Promise<RoleRow> {
      const current = await findRole(tx, name);
      mustHandOut(by, current);
      const set: { description?: string; permissions?: string[] } = {};
      if (changes.description !== undefined) set.description = changes.description;
      if (changes.permissions !== undefined) {
        set.permissions = checkPermissions(changes.permissions);
        mustHoldAll(by, set.permissions);
        mustNotGrowOwn(by, current, set.permissions, deps.defaultRole);
      }
      const role = await repo.updateRole(tx, name, set, clock.now());
      if (!role) throw new AppError('role_not_found');
      return role;
    },

    async remove(tx: Database, by: ActingGrants, name: string): Promise<void> {
      const role = await findRole(tx, name);
      if (role.builtin) throw new AppError('role_builtin');
      mustHandOut(by, role);
      if (!(await repo.deleteRole(tx, name))) throw new AppError('role_not_found');
    },

    /** Adds roles to a user; every role must exist and be one `by` may hand out. */
    async assign(tx: Database, by: ActingGrants, userId: string, names: string[]): Promise<void> {
      const unique = [...new Set(names)];
      const found = await repo.findRoles(tx, unique);
      const missing = unique.filter((n) => !found.some((r) => r.name === n));
      if (missing.length) throw new AppError('role_not_found', `No such role: ${missing.join(', ')}`);
      for (const role of found) mustHandOut(by, role);
      await repo.addUserRoles(tx, userId, unique);
    },

    /** Takes a role from a user: only one `by` could have given. */
    async unassign(tx: Database, by: ActingGrants, userId: string, name: string): Promise<void> {
      const role = await repo.findRole(tx, name);
      if (role) mustHandOut(by, role);
      if (!role || !(await repo.removeUserRole(tx, userId, name))) throw new AppError('role_not_found', `The user does not have the role ${name}.`);
    },

    /**
     * Refuses (409 `last_admin`) to take away the last enabled administrator: by
     * removing the role, disabling or deleting. Call it in the change's transaction;
     * the RBAC lock serialises concurrent changes so two admins cannot demote each other at once.
     */
    async keepAnAdmin(tx: Database, userId: string): Promise<void> {
      await lock(tx);
      if (!(await repo.holdsRole(tx, userId, ADMIN_ROLE))) return;
      if ((await repo.countOtherEnabledHolders(tx, ADMIN_ROLE, userId)) === 0) throw new AppError('last_admin');
    },
  };
}
