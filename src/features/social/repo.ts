import { and, asc, count, eq, gt, isNull, lt } from 'drizzle-orm';
import type { Database } from '../../infra/db/client.js';
import { users, type UserRow } from '../accounts/tables.js';
import { identities, oauthCodes, oauthStates, type IdentityRow, type OAuthCodeRow, type OAuthStateRow } from './tables.js';

// ---- identities ---------------------------------------------------------------

export async function findIdentity(db: Database, provider: string, subject: string): Promise<IdentityRow | null> {
  const rows = await db
    .select()
    .from(identities)
    .where(and(eq(identities.provider, provider), eq(identities.subject, subject)))
    .limit(1);
  return rows[0] ?? null;
}

export async function findIdentityOfUser(db: Database, userId: string, provider: string): Promise<IdentityRow | null> {
  const rows = await db
    .select()
    .from(identities)
    .where(and(eq(identities.userId, userId), eq(identities.provider, provider)))
    .limit(1);
  return rows[0] ?? null;
}

export async function listIdentities(db: Database, userId: string): Promise<IdentityRow[]> {
  return db.select().from(identities).where(eq(identities.userId, userId)).orderBy(asc(identities.createdAt), asc(identities.provider));
}

export async function countIdentities(db: Database, userId: string): Promise<number> {
  const rows = await db.select({ n: count() }).from(identities).where(eq(identities.userId, userId));
  return Number(rows[0]?.n ?? 0);
}

/** Inserts an identity; null when (provider, subject) or (user, provider) is taken (the unique indexes decide). */
export async function insertIdentity(
  db: Database,
  i: { userId: string; provider: string; subject: string; email: string | null; emailVerified: boolean; proven: boolean; now: Date },
): Promise<IdentityRow | null> {
  const rows = await db
    .insert(identities)
    .values({
      userId: i.userId,
      provider: i.provider,
      subject: i.subject,
      email: i.email,
      emailVerified: i.emailVerified,
      proven: i.proven,
      createdAt: i.now,
      lastSignInAt: i.now,
    })
    .onConflictDoNothing()
    .returning();
  return rows[0] ?? null;
}

/** Records a sign-in through the identity, with the email as the provider gives it now. */
export async function touchIdentity(db: Database, id: string, email: string | null, emailVerified: boolean, now: Date): Promise<void> {
  await db.update(identities).set({ email, emailVerified, lastSignInAt: now }).where(eq(identities.id, id));
}

export async function deleteIdentity(db: Database, userId: string, provider: string): Promise<void> {
  await db.delete(identities).where(and(eq(identities.userId, userId), eq(identities.provider, provider)));
}

/** Deletes the identities of the user whose claim on the account is not proven; returns them. */
export async function deleteUnproven(db: Database, userId: string): Promise<IdentityRow[]> {
  return db
    .delete(identities)
    .where(and(eq(identities.userId, userId), eq(identities.proven, false)))
    .returning();
}

/** The user row, locked until the transaction ends (serialises unlinking against itself). */
export async function lockUser(tx: Database, userId: string): Promise<UserRow | null> {
  const rows = await tx.select().from(users).where(eq(users.id, userId)).for('update');
  return rows[0] ?? null;
}

// ---- web-flow state -------------------------------------------------------------

export async function insertState(db: Database, s: Omit<OAuthStateRow, 'usedAt'>): Promise<void> {
  await db.insert(oauthStates).values(s);
}

export async function findState(db: Database, id: string): Promise<OAuthStateRow | null> {
  const rows = await db.select().from(oauthStates).where(eq(oauthStates.id, id)).limit(1);
  return rows[0] ?? null;
}

/** Marks the state used; null when it was already used or has expired (someone else won, or too late). */
export async function consumeState(db: Database, id: string, now: Date): Promise<OAuthStateRow | null> {
  const rows = await db
    .update(oauthStates)
    .set({ usedAt: now })
    .where(and(eq(oauthStates.id, id), isNull(oauthStates.usedAt), gt(oauthStates.expiresAt, now)))
    .returning();
  return rows[0] ?? null;
}

// ---- one-time codes ---------------------------------------------------------------

export async function insertCode(db: Database, c: Omit<OAuthCodeRow, 'id' | 'usedAt' | 'sessionId'>): Promise<void> {
  await db.insert(oauthCodes).values(c);
}

/** The atomic single use: null when unknown, used or expired. */
export async function consumeCode(db: Database, codeHash: string, now: Date): Promise<OAuthCodeRow | null> {
  const rows = await db
    .update(oauthCodes)
    .set({ usedAt: now })
    .where(and(eq(oauthCodes.codeHash, codeHash), isNull(oauthCodes.usedAt), gt(oauthCodes.expiresAt, now)))
    .returning();
  return rows[0] ?? null;
}

export async function findCode(db: Database, codeHash: string): Promise<OAuthCodeRow | null> {
  const rows = await db.select().from(oauthCodes).where(eq(oauthCodes.codeHash, codeHash)).limit(1);
  return rows[0] ?? null;
}

export async function setCodeSession(db: Database, id: string, sessionId: string): Promise<void> {
  await db.update(oauthCodes).set({ sessionId }).where(eq(oauthCodes.id, id));
}

/** Forgets states and codes that expired before `before` (a used code is kept that long to detect its replay). */
export async function purgeExpired(db: Database, before: Date): Promise<void> {
  await db.delete(oauthStates).where(lt(oauthStates.expiresAt, before));
  await db.delete(oauthCodes).where(lt(oauthCodes.expiresAt, before));
}
