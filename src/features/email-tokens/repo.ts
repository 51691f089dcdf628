import { and, eq, isNull } from 'drizzle-orm';
import type { Database } from '../../infra/db/client.js';
import { emailTokens, type EmailTokenPurpose, type EmailTokenRow } from './tables.js';

export async function insertToken(
  db: Database,
  t: { userId: string; purpose: EmailTokenPurpose; tokenHash: string; email: string; now: Date; expiresAt: Date },
): Promise<void> {
  await db
    .insert(emailTokens)
    .values({ userId: t.userId, purpose: t.purpose, tokenHash: t.tokenHash, email: t.email, createdAt: t.now, expiresAt: t.expiresAt });
}

/** Marks every live token of this purpose as consumed (a newer link replaces them). */
export async function consumeAllOfPurpose(db: Database, userId: string, purpose: EmailTokenPurpose, now: Date): Promise<void> {
  await db
    .update(emailTokens)
    .set({ consumedAt: now })
    .where(and(eq(emailTokens.userId, userId), eq(emailTokens.purpose, purpose), isNull(emailTokens.consumedAt)));
}

/** Marks every live token of the user as consumed, whatever its purpose. */
export async function consumeAllOfUser(db: Database, userId: string, now: Date): Promise<number> {
  const rows = await db
    .update(emailTokens)
    .set({ consumedAt: now })
    .where(and(eq(emailTokens.userId, userId), isNull(emailTokens.consumedAt)))
    .returning({ id: emailTokens.id });
  return rows.length;
}

export async function findByHash(db: Database, tokenHash: string): Promise<EmailTokenRow | null> {
  const rows = await db.select().from(emailTokens).where(eq(emailTokens.tokenHash, tokenHash)).limit(1);
  return rows[0] ?? null;
}

/** Consumes one token; false when someone else consumed it first. */
export async function consumeToken(db: Database, id: string, now: Date): Promise<boolean> {
  const rows = await db
    .update(emailTokens)
    .set({ consumedAt: now })
    .where(and(eq(emailTokens.id, id), isNull(emailTokens.consumedAt)))
    .returning({ id: emailTokens.id });
  return rows.length > 0;
}
