import { and, eq, sql } from 'drizzle-orm';
import type { Database } from '../../infra/db/client.js';
import { users, type UserRow } from './tables.js';

export interface NewUser {
  email: string;
  passwordHash: string | null;
  firstName: string | null;
  lastName: string | null;
  now: Date;
  /** Already confirmed (an account created by an administrator); unconfirmed when absent. */
  emailVerifiedAt?: Date | null;
}

/** Inserts a user; returns null when the email is taken (the unique index decides, not a prior read). */
export async function insertUser(db: Database, u: NewUser): Promise<UserRow | null> {
  const rows = await db
    .insert(users)
    .values({
      email: u.email,
      passwordHash: u.passwordHash,
      firstName: u.firstName,
      lastName: u.lastName,
      emailVerifiedAt: u.emailVerifiedAt ?? null,
      createdAt: u.now,
      updatedAt: u.now,
    })
    .onConflictDoNothing({ target: users.email })
    .returning();
  return rows[0] ?? null;
}

export async function findUserByEmail(db: Database, email: string): Promise<UserRow | null> {
  const rows = await db.select().from(users).where(eq(users.email, email)).limit(1);
  return rows[0] ?? null;
}

export async function findUserById(db: Database, id: string): Promise<UserRow | null> {
  const rows = await db.select().from(users).where(eq(users.id, id)).limit(1);
  return rows[0] ?? null;
}

export interface ProfileChanges {
  firstName?: string | null;
  lastName?: string | null;
}

export async function updateProfile(db: Database, id: string, changes: ProfileChanges, now: Date): Promise<UserRow | null> {
  const rows = await db
    .update(users)
    .set({ ...changes, updatedAt: now })
    .where(eq(users.id, id))
    .returning();
  return rows[0] ?? null;
}

export async function setPasswordHash(db: Database, id: string, passwordHash: string, now: Date): Promise<void> {
  await db.update(users).set({ passwordHash, updatedAt: now }).where(eq(users.id, id));
}

/** Deletes the user; sessions go with it (ON DELETE CASCADE). */
export async function deleteUser(db: Database, id: string): Promise<boolean> {
  const rows = await db.delete(users).where(eq(users.id, id)).returning({ id: users.id });
  return rows.length > 0;
}

/** Marks the address confirmed (keeps the first confirmation time). */
export async function markEmailVerified(db: Database, id: string, email: string, now: Date): Promise<UserRow | null> {
  const rows = await db
    .update(users)
    .set({ emailVerifiedAt: sql`coalesce(${users.emailVerifiedAt}, ${now})`, updatedAt: now })
    .where(and(eq(users.id, id), eq(users.email, email)))
    .returning();
  return rows[0] ?? null;
}

/** Moves the account to a confirmed new address; the unique index rejects a taken one. */
export async function setConfirmedEmail(db: Database, id: string, email: string, now: Date): Promise<UserRow | null> {
  const rows = await db.update(users).set({ email, emailVerifiedAt: now, updatedAt: now }).where(eq(users.id, id)).returning();
  return rows[0] ?? null;
}

/** A reset through an emailed link also proves the address. */
export async function resetPassword(db: Database, id: string, passwordHash: string, now: Date): Promise<UserRow | null> {
  const rows = await db
    .update(users)
    .set({ passwordHash, emailVerifiedAt: sql`coalesce(${users.emailVerifiedAt}, ${now})`, updatedAt: now })
    .where(eq(users.id, id))
    .returning();
  return rows[0] ?? null;
}

export interface UserSearch {
  emailPrefix?: string | undefined;
  role?: string | undefined;
  status?: 'active' | 'disabled' | 'unverified' | undefined;
  limit: number;
  /** Continue after this (created_at, id), newest first. */
  after?: { createdAt: Date; id: string } | undefined;
}

/** Newest first, keyset-paginated on (created_at, id). */
export async function searchUsers(db: Database, q: UserSearch): Promise<UserRow[]> {
  const conditions = [
    q.emailPrefix ? sql`${users.email} like ${`${q.emailPrefix.replace(/[\\%_]/g, (c) => `\\${c}`)}%`}` : undefined,
    q.role ? sql`exists (select 1 from user_roles ur where ur.user_id = ${users.id} and ur.role = ${q.role})` : undefined,
    q.status === 'disabled' ? sql`${users.disabledAt} is not null` : undefined,
    q.status === 'active' ? sql`${users.disabledAt} is null` : undefined,
    q.status === 'unverified' ? sql`${users.emailVerifiedAt} is null` : undefined,
    q.after ? sql`(${users.createdAt}, ${users.id}) < (${q.after.createdAt}, ${q.after.id}::uuid)` : undefined,
  ];
  return db
    .select()
    .from(users)
    .where(and(...conditions))
    .orderBy(sql`${users.createdAt} desc, ${users.id} desc`)
    .limit(q.limit);
}

export async function setDisabled(db: Database, id: string, disabledAt: Date | null, now: Date): Promise<UserRow | null> {
  const rows = await db.update(users).set({ disabledAt, updatedAt: now }).where(eq(users.id, id)).returning();
  return rows[0] ?? null;
}

/** The address is proven by a sign-in through it: confirmed, and a password set before it was (never proven to be the owner's) dropped. */
export async function confirmBySignIn(db: Database, id: string, email: string, now: Date): Promise<UserRow | null> {
  const rows = await db
    .update(users)
    .set({ emailVerifiedAt: now, passwordHash: null, updatedAt: now })
    .where(and(eq(users.id, id), eq(users.email, email), sql`${users.emailVerifiedAt} is null`))
    .returning();
  return rows[0] ?? null;
}
