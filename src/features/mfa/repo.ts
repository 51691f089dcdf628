import { and, count, eq, gt, isNull, lt, or, sql } from 'drizzle-orm';
import type { Database } from '../../infra/db/client.js';
import { mfaChallenges, recoveryCodes, userTotp, type UserTotpRow } from './tables.js';

export async function findTotp(db: Database, userId: string): Promise<UserTotpRow | null> {
  const rows = await db.select().from(userTotp).where(eq(userTotp.userId, userId)).limit(1);
  return rows[0] ?? null;
}

/** Starts (or restarts) an enrolment; null when the factor is already on. */
export async function savePendingTotp(db: Database, userId: string, sealedSecret: string, now: Date): Promise<UserTotpRow | null> {
  const rows = await db
    .insert(userTotp)
    .values({ userId, sealedSecret, createdAt: now })
    .onConflictDoUpdate({
      target: userTotp.userId,
      set: { sealedSecret, createdAt: now, lastTimeStep: null, failedAttempts: 0, failureWindowStart: null },
      setWhere: isNull(userTotp.enabledAt),
    })
    .returning();
  return rows[0] ?? null;
}

export async function enableTotp(db: Database, userId: string, timeStep: number, now: Date): Promise<boolean> {
  const rows = await db
    .update(userTotp)
    .set({ enabledAt: now, lastTimeStep: timeStep, failedAttempts: 0, failureWindowStart: null })
    .where(and(eq(userTotp.userId, userId), isNull(userTotp.enabledAt)))
    .returning({ userId: userTotp.userId });
  return rows.length > 0;
}

/** Records an accepted time step; false when this step (or a later one) was already used: a replay. */
export async function acceptTimeStep(db: Database, userId: string, timeStep: number): Promise<boolean> {
  const rows = await db
    .update(userTotp)
    .set({ lastTimeStep: timeStep, failedAttempts: 0, failureWindowStart: null })
    .where(and(eq(userTotp.userId, userId), or(isNull(userTotp.lastTimeStep), lt(userTotp.lastTimeStep, timeStep))))
    .returning({ userId: userTotp.userId });
  return rows.length > 0;
}

/**
 * Reserves one code check: counts it as a failure in the current window (a new
 * window starts when the last one is over) unless `max` are already counted
 * there; then null. One UPDATE, so parallel checks queue on the row and at
 * most `max` get through. A right code gives it back (acceptTimeStep, enableTotp, releaseAttempts).
 */
export async function reserveAttempt(db: Database, userId: string, now: Date, windowStartsAfter: Date, max: number): Promise<number | null> {
  const fresh = sql`(${userTotp.failureWindowStart} is null or ${userTotp.failureWindowStart} <= ${windowStartsAfter})`;
  const rows = await db
    .update(userTotp)
    .set({
      failedAttempts: sql`case when ${fresh} then 1 else ${userTotp.failedAttempts} + 1 end`,
      failureWindowStart: sql`case when ${fresh} then ${now}::timestamptz else ${userTotp.failureWindowStart} end`,
    })
    .where(and(eq(userTotp.userId, userId), or(fresh, lt(userTotp.failedAttempts, max))))
    .returning({ failedAttempts: userTotp.failedAttempts });
  return rows[0]?.failedAttempts ?? null;
}

/** A right code (a recovery code): the failures of the window are forgotten, as a right TOTP code does in acceptTimeStep. */
export async function releaseAttempts(db: Database, userId: string): Promise<void> {
  await db.update(userTotp).set({ failedAttempts: 0, failureWindowStart: null }).where(eq(userTotp.userId, userId));
}

export async function deleteTotp(db: Database, userId: string): Promise<void> {
  await db.delete(userTotp).where(eq(userTotp.userId, userId));
  await db.delete(recoveryCodes).where(eq(recoveryCodes.userId, userId));
}

export async function replaceRecoveryCodes(db: Database, userId: string, hashes: string[], now: Date): Promise<void> {
  await db.delete(recoveryCodes).where(eq(recoveryCodes.userId, userId));
  await db.insert(recoveryCodes).values(hashes.map((codeHash) => ({ userId, codeHash, createdAt: now })));
}

/** Uses a recovery code; false when it is unknown or already used. */
export async function useRecoveryCode(db: Database, userId: string, codeHash: string, now: Date): Promise<boolean> {
  const rows = await db
    .update(recoveryCodes)
    .set({ usedAt: now })
    .where(and(eq(recoveryCodes.userId, userId), eq(recoveryCodes.codeHash, codeHash), isNull(recoveryCodes.usedAt)))
    .returning({ id: recoveryCodes.id });
  return rows.length > 0;
}

export async function countUnusedRecoveryCodes(db: Database, userId: string): Promise<number> {
  const rows = await db
    .select({ n: count() })
    .from(recoveryCodes)
    .where(and(eq(recoveryCodes.userId, userId), isNull(recoveryCodes.usedAt)));
  return Number(rows[0]?.n ?? 0);
}

export async function insertChallenge(
  db: Database,
  c: {
    userId: string;
    tokenHash: string;
    amr: string[];
    now: Date;
    expiresAt: Date;
    client?: { clientId: string; accessTokenSeconds: number | null; refreshTokenDays: number | null } | null;
  },
): Promise<void> {
  await db
    .insert(mfaChallenges)
    .values({ userId: c.userId, tokenHash: c.tokenHash, amr: c.amr, createdAt: c.now, expiresAt: c.expiresAt, client: c.client ?? null });
}

export async function findLiveChallenge(db: Database, tokenHash: string, now: Date) {
  const rows = await db
    .select()
    .from(mfaChallenges)
    .where(and(eq(mfaChallenges.tokenHash, tokenHash), isNull(mfaChallenges.usedAt), gt(mfaChallenges.expiresAt, now)))
    .limit(1);
  return rows[0] ?? null;
}

/** Uses a challenge; false when another request completed it first. */
export async function consumeChallenge(db: Database, id: string, now: Date): Promise<boolean> {
  const rows = await db
    .update(mfaChallenges)
    .set({ usedAt: now })
    .where(and(eq(mfaChallenges.id, id), isNull(mfaChallenges.usedAt)))
    .returning({ id: mfaChallenges.id });
  return rows.length > 0;
}
