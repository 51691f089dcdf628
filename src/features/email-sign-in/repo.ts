import { and, eq, gt, isNull, lt, sql } from 'drizzle-orm';
import type { Database } from '../../infra/db/client.js';
import { emailSignInCodes, type EmailSignInCodeRow } from './tables.js';

/** The address's new code: replaces the previous one (used or not), with a fresh attempt count. */
export async function replaceCode(db: Database, c: { email: string; codeHash: string; linkHash: string; now: Date; expiresAt: Date }): Promise<void> {
  const fields = { codeHash: c.codeHash, linkHash: c.linkHash, attempts: 0, expiresAt: c.expiresAt, usedAt: null, createdAt: c.now };
  await db
    .insert(emailSignInCodes)
    .values({ email: c.email, ...fields })
    .onConflictDoUpdate({ target: emailSignInCodes.email, set: fields });
}

/**
 * Counts one check of the address's live code before the code is compared: one UPDATE, so
 * parallel guesses queue on the row and at most `max` are ever compared. Null when there is
 * no live code or its attempts are spent.
 */
export async function reserveAttempt(db: Database, email: string, now: Date, max: number): Promise<EmailSignInCodeRow | null> {
  const rows = await db
    .update(emailSignInCodes)
    .set({ attempts: sql`${emailSignInCodes.attempts} + 1` })
    .where(and(eq(emailSignInCodes.email, email), isNull(emailSignInCodes.usedAt), gt(emailSignInCodes.expiresAt, now), lt(emailSignInCodes.attempts, max)))
    .returning();
  return rows[0] ?? null;
}

/** Uses the code whose hash was checked; false when a parallel request used (or a new request replaced) it first. */
export async function useCode(db: Database, email: string, codeHash: string, now: Date): Promise<boolean> {
  const rows = await db
    .update(emailSignInCodes)
    .set({ usedAt: now })
    .where(and(eq(emailSignInCodes.email, email), eq(emailSignInCodes.codeHash, codeHash), isNull(emailSignInCodes.usedAt)))
    .returning({ email: emailSignInCodes.email });
  return rows.length > 0;
}

/** Uses a live link (256 random bits: no attempt count); its address, or null. */
export async function useLink(db: Database, linkHash: string, now: Date): Promise<string | null> {
  const rows = await db
    .update(emailSignInCodes)
    .set({ usedAt: now })
    .where(and(eq(emailSignInCodes.linkHash, linkHash), isNull(emailSignInCodes.usedAt), gt(emailSignInCodes.expiresAt, now)))
    .returning({ email: emailSignInCodes.email });
  return rows[0]?.email ?? null;
}

/** Whether a link is live (the page shows it before its POST); changes nothing. */
export async function linkIsLive(db: Database, linkHash: string, now: Date): Promise<boolean> {
  const rows = await db
    .select({ email: emailSignInCodes.email })
    .from(emailSignInCodes)
    .where(and(eq(emailSignInCodes.linkHash, linkHash), isNull(emailSignInCodes.usedAt), gt(emailSignInCodes.expiresAt, now)))
    .limit(1);
  return rows.length > 0;
}

/** Deletes the codes that expired before `before`: an address asked for once does not stay stored for ever. */
export async function purgeExpired(db: Database, before: Date): Promise<void> {
  await db.delete(emailSignInCodes).where(lt(emailSignInCodes.expiresAt, before));
}
