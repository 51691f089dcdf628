import { and, asc, eq, gt, isNull, lt, sql } from 'drizzle-orm';
import type { Database } from '../../infra/db/client.js';
import { passkeys, webauthnChallenges, type PasskeyRow, type WebAuthnChallengeRow } from './tables.js';

export type NewPasskey = Omit<PasskeyRow, 'id' | 'lastUsedAt'>;

/** Stores a new passkey; null when its credential id is already registered (to anyone). */
export async function insertPasskey(db: Database, p: NewPasskey): Promise<PasskeyRow | null> {
  const rows = await db.insert(passkeys).values(p).onConflictDoNothing({ target: passkeys.credentialId }).returning();
  return rows[0] ?? null;
}

export async function listPasskeys(db: Database, userId: string): Promise<PasskeyRow[]> {
  return db.select().from(passkeys).where(eq(passkeys.userId, userId)).orderBy(asc(passkeys.createdAt), asc(passkeys.id));
}

/** The user's passkeys, locked until the transaction ends (a deletion counts what stays). */
export async function lockPasskeys(db: Database, userId: string): Promise<PasskeyRow[]> {
  return db.select().from(passkeys).where(eq(passkeys.userId, userId)).for('update');
}

export async function findByCredentialId(db: Database, credentialId: string): Promise<PasskeyRow | null> {
  const rows = await db.select().from(passkeys).where(eq(passkeys.credentialId, credentialId)).limit(1);
  return rows[0] ?? null;
}

/** Renames a passkey of this user; null when the user has no passkey with this id. */
export async function renamePasskey(db: Database, userId: string, id: string, name: string): Promise<PasskeyRow | null> {
  const rows = await db
    .update(passkeys)
    .set({ name })
    .where(and(eq(passkeys.id, id), eq(passkeys.userId, userId)))
    .returning();
  return rows[0] ?? null;
}

export async function deletePasskey(db: Database, userId: string, id: string): Promise<boolean> {
  const rows = await db
    .delete(passkeys)
    .where(and(eq(passkeys.id, id), eq(passkeys.userId, userId)))
    .returning({ id: passkeys.id });
  return rows.length > 0;
}

/**
 * Records a sign-in with the passkey: the new counter and backup state, only if the counter is still
 * the one the ceremony was checked against (a parallel use of the same credential loses).
 */
export async function recordUse(db: Database, id: string, expectedCount: number, u: { signCount: number; backedUp: boolean; now: Date }): Promise<boolean> {
  const rows = await db
    .update(passkeys)
    .set({ signCount: u.signCount, backedUp: u.backedUp, lastUsedAt: u.now })
    .where(and(eq(passkeys.id, id), eq(passkeys.signCount, expectedCount)))
    .returning({ id: passkeys.id });
  return rows.length > 0;
}

export async function countPasskeys(db: Database, userId: string): Promise<number> {
  const rows = await db
    .select({ n: sql<number>`count(*)::int` })
    .from(passkeys)
    .where(eq(passkeys.userId, userId));
  return Number(rows[0]?.n ?? 0);
}

export async function insertChallenge(
  db: Database,
  c: { purpose: WebAuthnChallengeRow['purpose']; challengeHash: string; flowHash: string | null; userId: string | null; now: Date; expiresAt: Date },
): Promise<void> {
  await db.insert(webauthnChallenges).values({
    purpose: c.purpose,
    challengeHash: c.challengeHash,
    flowHash: c.flowHash,
    userId: c.userId,
    createdAt: c.now,
    expiresAt: c.expiresAt,
  });
}

/**
 * Uses up a live challenge in one statement (before the response is verified, so a second use of
 * the same challenge, even in parallel, finds nothing); null when unknown, used or expired.
 */
export async function consumeChallenge(
  db: Database,
  by: { purpose: WebAuthnChallengeRow['purpose']; challengeHash?: string; flowHash?: string; userId?: string },
  now: Date,
): Promise<WebAuthnChallengeRow | null> {
  const rows = await db
    .update(webauthnChallenges)
    .set({ usedAt: now })
    .where(
      and(
        eq(webauthnChallenges.purpose, by.purpose),
        by.challengeHash !== undefined ? eq(webauthnChallenges.challengeHash, by.challengeHash) : undefined,
        by.flowHash !== undefined ? eq(webauthnChallenges.flowHash, by.flowHash) : undefined,
        by.userId !== undefined ? eq(webauthnChallenges.userId, by.userId) : undefined,
        isNull(webauthnChallenges.usedAt),
        gt(webauthnChallenges.expiresAt, now),
      ),
    )
    .returning();
  return rows[0] ?? null;
}

/** Deletes challenges that expired before `before` (used or not): they can no longer be used by anyone. */
export async function purgeExpiredChallenges(db: Database, before: Date): Promise<void> {
  await db.delete(webauthnChallenges).where(lt(webauthnChallenges.expiresAt, before));
}
