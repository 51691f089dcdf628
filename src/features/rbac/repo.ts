import { and, asc, count, eq, inArray, isNull, ne, sql } from 'drizzle-orm';
import { users } from '../accounts/tables.js';
import type { Database } from '../../infra/db/client.js';
import { roles, userRoles, type RoleRow } from './tables.js';

/** The names and permissions of an enabled user's roles (none for a disabled or deleted user): an actor's grants inside a change. */
export async function rolesOfEnabledUser(db: Database, userId: string): Promise<Array<{ name: string; permissions: string[] }>> {
  return db
    .select({ name: roles.name, permissions: roles.permissions })
    .from(userRoles)
    .innerJoin(roles, eq(roles.name, userRoles.role))
    .innerJoin(users, eq(users.id, userRoles.userId))
    .where(and(eq(userRoles.userId, userId), isNull(users.disabledAt)))
    .orderBy(asc(roles.name));
}

export async function listRoles(db: Database): Promise<Array<RoleRow & { users: number }>> {
  const rows = await db
    .select({ role: roles, users: sql<number>`(select count(*)::int from ${userRoles} where ${userRoles.role} = ${roles.name})` })
    .from(roles)
    .orderBy(asc(roles.name));
  return rows.map((r) => ({ ...r.role, users: Number(r.users) }));
}

export async function findRole(db: Database, name: string): Promise<RoleRow | null> {
  const rows = await db.select().from(roles).where(eq(roles.name, name)).limit(1);
  return rows[0] ?? null;
}

export async function insertRole(db: Database, r: { name: string; description: string; permissions: string[]; now: Date }): Promise<RoleRow | null> {
  const rows = await db
    .insert(roles)
    .values({ name: r.name, description: r.description, permissions: r.permissions, createdAt: r.now, updatedAt: r.now })
    .onConflictDoNothing({ target: roles.name })
    .returning();
  return rows[0] ?? null;
}

export async function ensureRole(db: Database, name: string): Promise<void> {
  await db.insert(roles).values({ name }).onConflictDoNothing({ target: roles.name });
}

export async function updateRole(db: Database, name: string, changes: { description?: string; permissions?: string[] }, now: Date): Promise<RoleRow | null> {
  const rows = await db
    .update(roles)
    .set({ ...changes, updatedAt: now })
    .where(eq(roles.name, name))
    .returning();
  return rows[0] ?? null;
}

export async function deleteRole(db: Database, name: string): Promise<boolean> {
  const rows = await db
    .delete(roles)
    .where(and(eq(roles.name, name), eq(roles.builtin, false)))
    .returning({ name: roles.name });
  return rows.length > 0;
}

export async function addUserRoles(db: Database, userId: string, names: string[]): Promise<void> {
  if (names.length)
    await db
      .insert(userRoles)
      .values(names.map((role) => ({ userId, role })))
      .onConflictDoNothing();
}

export async function addUserRolePairs(db: Database, pairs: Array<{ userId: string; role: string }>): Promise<void> {
  if (pairs.length) await db.insert(userRoles).values(pairs).onConflictDoNothing();
}

export async function removeUserRole(db: Database, userId: string, name: string): Promise<boolean> {
  const rows = await db
    .delete(userRoles)
    .where(and(eq(userRoles.userId, userId), eq(userRoles.role, name)))
    .returning({ role: userRoles.role });
  return rows.length > 0;
}

export async function findRoles(db: Database, names: string[]): Promise<RoleRow[]> {
  if (!names.length) return [];
  return db.select().from(roles).where(inArray(roles.name, names));
}

/** Enabled users other than `userId` holding `role` (the last-admin guard). */
export async function countOtherEnabledHolders(db: Database, role: string, userId: string): Promise<number> {
  const rows = await db
    .select({ n: count() })
    .from(userRoles)
    .innerJoin(users, eq(users.id, userRoles.userId))
    .where(and(eq(userRoles.role, role), isNull(users.disabledAt), ne(userRoles.userId, userId)));
  return Number(rows[0]?.n ?? 0);
}

export async function holdsRole(db: Database, userId: string, role: string): Promise<boolean> {
  const rows = await db
    .select({ role: userRoles.role })
    .from(userRoles)
    .where(and(eq(userRoles.userId, userId), eq(userRoles.role, role)))
    .limit(1);
  return rows.length > 0;
}
