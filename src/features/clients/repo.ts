import { and, asc, eq, gt, inArray, isNotNull, isNull, lte, or, sql } from 'drizzle-orm';
import type { Database } from '../../infra/db/client.js';
import { oauthClientAssertions, oauthClients, oauthClientSecrets, type ClientRow, type ClientSecretRow } from './tables.js';

export type NewClient = typeof oauthClients.$inferInsert;
export type ClientChanges = Partial<Omit<NewClient, 'clientId' | 'createdAt'>>;

export async function insertClient(db: Database, c: NewClient): Promise<ClientRow> {
  const [row] = await db.insert(oauthClients).values(c).returning();
  if (!row) throw new Error('insert into oauth_clients returned no row');
  return row;
}

export async function findClient(db: Database, clientId: string): Promise<ClientRow | null> {
  const rows = await db.select().from(oauthClients).where(eq(oauthClients.clientId, clientId)).limit(1);
  return rows[0] ?? null;
}

/** Locks the client's row for the rest of `tx` (rotations and edits of one client run one after the other). */
export async function lockClient(db: Database, clientId: string): Promise<ClientRow | null> {
  const rows = await db.select().from(oauthClients).where(eq(oauthClients.clientId, clientId)).for('update').limit(1);
  return rows[0] ?? null;
}

export async function listClients(db: Database): Promise<ClientRow[]> {
  return db.select().from(oauthClients).orderBy(asc(oauthClients.createdAt), asc(oauthClients.clientId));
}

export async function updateClient(db: Database, clientId: string, changes: ClientChanges): Promise<ClientRow | null> {
  const rows = await db.update(oauthClients).set(changes).where(eq(oauthClients.clientId, clientId)).returning();
  return rows[0] ?? null;
}

export async function deleteClient(db: Database, clientId: string): Promise<boolean> {
  const rows = await db.delete(oauthClients).where(eq(oauthClients.clientId, clientId)).returning({ id: oauthClients.clientId });
  return rows.length > 0;
}

export async function insertSecret(db: Database, clientId: string, secretHash: string, now: Date): Promise<void> {
  await db.insert(oauthClientSecrets).values({ clientId, secretHash, createdAt: now, expiresAt: null });
}

/** Gives the current secret an end (the overlap of a rotation); the count of secrets changed (0 or 1). */
export async function expireCurrentSecret(db: Database, clientId: string, expiresAt: Date): Promise<number> {
  const rows = await db
    .update(oauthClientSecrets)
    .set({ expiresAt })
    .where(and(eq(oauthClientSecrets.clientId, clientId), isNull(oauthClientSecrets.expiresAt)))
    .returning({ id: oauthClientSecrets.id });
  return rows.length;
}

/** Shortens the overlap of earlier rotations to `until` at most (a new rotation never extends an old secret's life). */
export async function capOverlaps(db: Database, clientId: string, until: Date): Promise<void> {
  await db
    .update(oauthClientSecrets)
    .set({ expiresAt: until })
    .where(and(eq(oauthClientSecrets.clientId, clientId), gt(oauthClientSecrets.expiresAt, until)));
}

export async function deleteExpiredSecrets(db: Database, clientId: string, now: Date): Promise<void> {
  await db.delete(oauthClientSecrets).where(and(eq(oauthClientSecrets.clientId, clientId), lte(oauthClientSecrets.expiresAt, now)));
}

/** The secrets that authenticate the client now: the current one and those still in their overlap. */
export async function liveSecrets(db: Database, clientId: string, now: Date): Promise<ClientSecretRow[]> {
  return db
    .select()
    .from(oauthClientSecrets)
    .where(and(eq(oauthClientSecrets.clientId, clientId), or(isNull(oauthClientSecrets.expiresAt), gt(oauthClientSecrets.expiresAt, now))))
    .orderBy(asc(oauthClientSecrets.createdAt));
}

/**
 * Records a private_key_jwt assertion's `jti` until its `exp`; false when it was
 * seen before (a replay). Expired entries of the client are swept first.
 */
export async function useAssertion(db: Database, clientId: string, jti: string, expiresAt: Date, now: Date): Promise<boolean> {
  await db.delete(oauthClientAssertions).where(and(eq(oauthClientAssertions.clientId, clientId), lte(oauthClientAssertions.expiresAt, now)));
  const rows = await db.insert(oauthClientAssertions).values({ clientId, jti, expiresAt }).onConflictDoNothing().returning({ jti: oauthClientAssertions.jti });
  return rows.length > 0;
}

/** The `backchannel_logout_uri` of those of `clientIds` that have one. */
export async function backchannelUris(db: Database, clientIds: string[]): Promise<Map<string, string>> {
  const rows = await db
    .select({ clientId: oauthClients.clientId, uri: oauthClients.backchannelLogoutUri })
    .from(oauthClients)
    .where(and(inArray(oauthClients.clientId, clientIds), isNotNull(oauthClients.backchannelLogoutUri)));
  return new Map(rows.map((r) => [r.clientId, r.uri as string]));
}

/** How many secrets each client has live (for listings). */
export async function liveSecretCounts(db: Database, now: Date): Promise<Map<string, number>> {
  const rows = await db
    .select({ clientId: oauthClientSecrets.clientId, n: sql<number>`count(*)::int` })
    .from(oauthClientSecrets)
    .where(or(isNull(oauthClientSecrets.expiresAt), gt(oauthClientSecrets.expiresAt, now)))
    .groupBy(oauthClientSecrets.clientId);
  return new Map(rows.map((r) => [r.clientId, r.n]));
}
