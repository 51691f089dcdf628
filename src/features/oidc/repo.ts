import { and, asc, eq, gt, isNull, lt } from 'drizzle-orm';
import type { Database } from '../../infra/db/client.js';
import {
  oidcAuthorizationRequests,
  oidcBrowserSessions,
  oidcCodes,
  oidcConsents,
  oidcPushedRequests,
  type AuthorizationRequestRow,
  type CodeRow,
  type ConsentRow,
} from './tables.js';

export type NewAuthorizationRequest = typeof oidcAuthorizationRequests.$inferInsert;
export type RequestChanges = Partial<Pick<AuthorizationRequestRow, 'authenticatedSessionId' | 'mfaToken' | 'accountChosen' | 'consented' | 'prompt'>>;

export async function insertRequest(db: Database, r: NewAuthorizationRequest): Promise<void> {
  await db.insert(oidcAuthorizationRequests).values(r);
}

/** A request not ended and not expired. */
export async function findLiveRequest(db: Database, id: string, now: Date): Promise<AuthorizationRequestRow | null> {
  const rows = await db
    .select()
    .from(oidcAuthorizationRequests)
    .where(and(eq(oidcAuthorizationRequests.id, id), isNull(oidcAuthorizationRequests.usedAt), gt(oidcAuthorizationRequests.expiresAt, now)))
    .limit(1);
  return rows[0] ?? null;
}

export async function updateRequest(db: Database, id: string, changes: RequestChanges): Promise<void> {
  await db.update(oidcAuthorizationRequests).set(changes).where(eq(oidcAuthorizationRequests.id, id));
}

/** Ends a request (single-use): false when another request ended it first. */
export async function finishRequest(db: Database, id: string, now: Date): Promise<boolean> {
  const rows = await db
    .update(oidcAuthorizationRequests)
    .set({ usedAt: now, mfaToken: null })
    .where(and(eq(oidcAuthorizationRequests.id, id), isNull(oidcAuthorizationRequests.usedAt), gt(oidcAuthorizationRequests.expiresAt, now)))
    .returning({ id: oidcAuthorizationRequests.id });
  return rows.length > 0;
}

/** Deletes requests and codes that expired before `before` (a reused code is still recognised until then). */
export async function purgeExpired(db: Database, before: Date): Promise<void> {
  await db.delete(oidcAuthorizationRequests).where(lt(oidcAuthorizationRequests.expiresAt, before));
  await db.delete(oidcCodes).where(lt(oidcCodes.expiresAt, before));
  await db.delete(oidcPushedRequests).where(lt(oidcPushedRequests.expiresAt, before));
}

export async function insertPushedRequest(db: Database, p: typeof oidcPushedRequests.$inferInsert): Promise<void> {
  await db.insert(oidcPushedRequests).values(p);
}

/** Takes a pushed request for its client: once, before it expires (one statement, so two browsers cannot both use it). */
export async function consumePushedRequest(db: Database, id: string, clientId: string, now: Date): Promise<Record<string, string> | null> {
  const rows = await db
    .update(oidcPushedRequests)
    .set({ usedAt: now })
    .where(
      and(eq(oidcPushedRequests.id, id), eq(oidcPushedRequests.clientId, clientId), isNull(oidcPushedRequests.usedAt), gt(oidcPushedRequests.expiresAt, now)),
    )
    .returning({ params: oidcPushedRequests.params });
  return rows[0]?.params ?? null;
}

export async function insertCode(db: Database, c: typeof oidcCodes.$inferInsert): Promise<void> {
  await db.insert(oidcCodes).values(c);
}

/** Uses a code of this client, unexpired and unused: one statement, so of parallel redemptions exactly one gets the row. */
export async function consumeCode(db: Database, codeHash: string, clientId: string, now: Date): Promise<CodeRow | null> {
  const rows = await db
    .update(oidcCodes)
    .set({ usedAt: now })
    .where(and(eq(oidcCodes.codeHash, codeHash), eq(oidcCodes.clientId, clientId), isNull(oidcCodes.usedAt), gt(oidcCodes.expiresAt, now)))
    .returning();
  return rows[0] ?? null;
}

export async function findCode(db: Database, codeHash: string): Promise<CodeRow | null> {
  const rows = await db.select().from(oidcCodes).where(eq(oidcCodes.codeHash, codeHash)).limit(1);
  return rows[0] ?? null;
}

export async function setCodeSession(db: Database, codeHash: string, sessionId: string): Promise<void> {
  await db.update(oidcCodes).set({ sessionId }).where(eq(oidcCodes.codeHash, codeHash));
}

export async function insertBrowserSession(db: Database, b: typeof oidcBrowserSessions.$inferInsert): Promise<void> {
  await db.insert(oidcBrowserSessions).values(b);
}

export async function findBrowserSession(db: Database, secretHash: string) {
  const rows = await db.select().from(oidcBrowserSessions).where(eq(oidcBrowserSessions.secretHash, secretHash)).limit(1);
  return rows[0] ?? null;
}

export async function deleteBrowserSession(db: Database, secretHash: string): Promise<void> {
  await db.delete(oidcBrowserSessions).where(eq(oidcBrowserSessions.secretHash, secretHash));
}

export async function findConsent(db: Database, userId: string, clientId: string): Promise<ConsentRow | null> {
  const rows = await db
    .select()
    .from(oidcConsents)
    .where(and(eq(oidcConsents.userId, userId), eq(oidcConsents.clientId, clientId)))
    .limit(1);
  return rows[0] ?? null;
}

export async function saveConsent(db: Database, userId: string, clientId: string, scopes: string[], now: Date): Promise<void> {
  await db
    .insert(oidcConsents)
    .values({ userId, clientId, scopes, createdAt: now, updatedAt: now })
    .onConflictDoUpdate({ target: [oidcConsents.userId, oidcConsents.clientId], set: { scopes, updatedAt: now } });
}

export async function listConsents(db: Database, userId: string): Promise<ConsentRow[]> {
  return db.select().from(oidcConsents).where(eq(oidcConsents.userId, userId)).orderBy(asc(oidcConsents.createdAt), asc(oidcConsents.clientId));
}

export async function deleteConsent(db: Database, userId: string, clientId: string): Promise<boolean> {
  const rows = await db
    .delete(oidcConsents)
    .where(and(eq(oidcConsents.userId, userId), eq(oidcConsents.clientId, clientId)))
    .returning({ clientId: oidcConsents.clientId });
  return rows.length > 0;
}
