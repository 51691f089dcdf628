import { and, asc, count, eq, gte, inArray, lte, max, or, sql } from 'drizzle-orm';
import type { Database } from '../../infra/db/client.js';
import { insertedRow } from '../../infra/db/rows.js';
import { outbox, type OutboxRow, type OutboxStatus } from './tables.js';

export interface NewOutboxRow {
  kind: string;
  recipient: string;
  payload: Record<string, string>;
  sealedSecret: string | null;
  now: Date;
}

export async function insertMessage(db: Database, m: NewOutboxRow): Promise<string> {
  const rows = await db
    .insert(outbox)
    .values({ kind: m.kind, recipient: m.recipient, payload: m.payload, sealedSecret: m.sealedSecret, availableAt: m.now, createdAt: m.now })
    .returning({ id: outbox.id });
  return insertedRow(rows, 'outbox').id;
}

/** How many messages of a kind went to an address since `since`, and when the latest was written. */
export async function recentTo(db: Database, recipient: string, kind: string, since: Date): Promise<{ count: number; latest: Date | null }> {
  const rows = await db
    .select({ count: count(), latest: max(outbox.createdAt) })
    .from(outbox)
    .where(and(eq(outbox.recipient, recipient), eq(outbox.kind, kind), gte(outbox.createdAt, since)));
  return { count: Number(rows[0]?.count ?? 0), latest: rows[0]?.latest ?? null };
}

/** Serialises writers of mail to one address until the transaction ends (for the per-address caps). */
export async function lockRecipient(db: Database, recipient: string): Promise<void> {
  await db.execute(sql`select pg_advisory_xact_lock(hashtextextended(${`outbox:${recipient}`}, 0))`);
}

/**
 * Claims a row for sending: pending or queued rows, or a `sending` row whose
 * claim ran out (its sender died). Returns null if another sender has it or it is done.
 */
export async function claim(db: Database, id: string, now: Date, lockedUntil: Date): Promise<OutboxRow | null> {
  const rows = await db
    .update(outbox)
    .set({ status: 'sending', attempts: sql`${outbox.attempts} + 1`, lockedUntil })
    .where(and(eq(outbox.id, id), or(inArray(outbox.status, ['pending', 'queued']), and(eq(outbox.status, 'sending'), lte(outbox.lockedUntil, now)))))
    .returning();
  return rows[0] ?? null;
}

export async function findMessage(db: Database, id: string): Promise<OutboxRow | null> {
  const rows = await db.select().from(outbox).where(eq(outbox.id, id)).limit(1);
  return rows[0] ?? null;
}

/** Sent: the secret is erased, and nothing moves the row again. */
export async function markSent(db: Database, id: string, now: Date, messageId: string): Promise<void> {
  await db
    .update(outbox)
    .set({ status: 'sent', sentAt: now, messageId, sealedSecret: null, lockedUntil: null, lastError: null })
    .where(and(eq(outbox.id, id), eq(outbox.status, 'sending')));
}

export async function markRetry(db: Database, id: string, status: 'pending' | 'queued', availableAt: Date, error: string): Promise<void> {
  await db
    .update(outbox)
    .set({ status, availableAt, lastError: error, lockedUntil: null })
    .where(and(eq(outbox.id, id), eq(outbox.status, 'sending')));
}

export async function markFailed(db: Database, id: string, error: string): Promise<void> {
  await db
    .update(outbox)
    .set({ status: 'failed', lastError: error, lockedUntil: null })
    .where(and(eq(outbox.id, id), eq(outbox.status, 'sending')));
}

/** Due rows for the in-process sender: pending and due, or abandoned mid-send. */
export async function dueIds(db: Database, now: Date, limit: number): Promise<string[]> {
  const rows = await db
    .select({ id: outbox.id })
    .from(outbox)
    .where(or(and(eq(outbox.status, 'pending'), lte(outbox.availableAt, now)), and(eq(outbox.status, 'sending'), lte(outbox.lockedUntil, now))))
    .orderBy(asc(outbox.availableAt))
    .limit(limit);
  return rows.map((r) => r.id);
}

/** Locks due pending rows for the relay (other relays skip them) until the transaction ends. */
export async function lockPendingForRelay(tx: Database, now: Date, limit: number): Promise<string[]> {
  const rows = await tx
    .select({ id: outbox.id })
    .from(outbox)
    .where(and(eq(outbox.status, 'pending'), lte(outbox.availableAt, now)))
    .orderBy(asc(outbox.availableAt))
    .limit(limit)
    .for('update', { skipLocked: true });
  return rows.map((r) => r.id);
}

export async function markQueued(db: Database, ids: string[], now: Date): Promise<void> {
  if (ids.length)
    await db
      .update(outbox)
      .set({ status: 'queued', queuedAt: now })
      .where(and(inArray(outbox.id, ids), eq(outbox.status, 'pending')));
}

/**
 * Rows handed to the queue long ago and not finished: their job may be gone
 * (Redis flushed or restarted without persistence). Locked like the pending ones.
 */
export async function lockStaleQueued(tx: Database, queuedBefore: Date, now: Date, limit: number): Promise<string[]> {
  const rows = await tx
    .select({ id: outbox.id })
    .from(outbox)
    .where(and(lte(outbox.queuedAt, queuedBefore), or(eq(outbox.status, 'queued'), and(eq(outbox.status, 'sending'), lte(outbox.lockedUntil, now)))))
    .orderBy(asc(outbox.queuedAt))
    .limit(limit)
    .for('update', { skipLocked: true });
  return rows.map((r) => r.id);
}

export async function touchQueued(db: Database, ids: string[], now: Date): Promise<void> {
  if (ids.length) await db.update(outbox).set({ queuedAt: now }).where(inArray(outbox.id, ids));
}

/** Failed rows go back to pending with a fresh attempt budget; returns how many. */
export async function requeueFailed(db: Database, now: Date, ids?: string[]): Promise<number> {
  const rows = await db
    .update(outbox)
    .set({ status: 'pending', attempts: 0, availableAt: now, lockedUntil: null, queuedAt: null })
    .where(and(eq(outbox.status, 'failed'), ids ? inArray(outbox.id, ids) : undefined))
    .returning({ id: outbox.id });
  return rows.length;
}

/** The status of each of `ids` that is an outbox row (ids missing from the map are unknown). */
export async function statusesOf(db: Database, ids: string[]): Promise<Map<string, OutboxStatus>> {
  if (ids.length === 0) return new Map();
  const rows = await db.select({ id: outbox.id, status: outbox.status }).from(outbox).where(inArray(outbox.id, ids));
  return new Map(rows.map((r) => [r.id, r.status]));
}

export async function countByStatus(db: Database): Promise<Record<OutboxStatus, number> & { oldestUnsentAt: Date | null }> {
  const rows = await db.select({ status: outbox.status, n: count() }).from(outbox).groupBy(outbox.status);
  const oldest = await db
    .select({ at: sql<Date | string | null>`min(${outbox.createdAt})` })
    .from(outbox)
    .where(inArray(outbox.status, ['pending', 'queued', 'sending']));
  const counts = { pending: 0, queued: 0, sending: 0, sent: 0, failed: 0 } as Record<OutboxStatus, number>;
  for (const r of rows) counts[r.status] = Number(r.n);
  const at = oldest[0]?.at;
  return { ...counts, oldestUnsentAt: at ? new Date(at) : null };
}

/**
 * For /metrics: unsent messages written before `writtenBefore` (by status), failed
 * messages, and the creation time of the oldest of those unsent ones.
 */
export async function backlog(
  db: Database,
  writtenBefore: Date,
): Promise<{ unsent: Record<'pending' | 'queued' | 'sending', number>; failed: number; oldestUnsentAt: Date | null }> {
  const rows = await db
    .select({ status: outbox.status, n: count(), oldest: sql<Date | string | null>`min(${outbox.createdAt})` })
    .from(outbox)
    .where(or(eq(outbox.status, 'failed'), and(inArray(outbox.status, ['pending', 'queued', 'sending']), lte(outbox.createdAt, writtenBefore))))
    .groupBy(outbox.status);
  const unsent = { pending: 0, queued: 0, sending: 0 };
  let failed = 0;
  let oldest: Date | null = null;
  for (const r of rows) {
    if (r.status === 'failed') {
      failed = Number(r.n);
      continue;
    }
    unsent[r.status as keyof typeof unsent] = Number(r.n);
    const at = r.oldest ? new Date(r.oldest) : null;
    if (at && (!oldest || at < oldest)) oldest = at;
  }
  return { unsent, failed, oldestUnsentAt: oldest };
}

export async function listFailed(db: Database, limit: number): Promise<OutboxRow[]> {
  return db.select().from(outbox).where(eq(outbox.status, 'failed')).orderBy(asc(outbox.createdAt)).limit(limit);
}

/** Deletes sent rows older than `before` (the outbox is not an archive of who got mail). */
export async function purgeSent(db: Database, before: Date): Promise<number> {
  const rows = await db
    .delete(outbox)
    .where(and(eq(outbox.status, 'sent'), lte(outbox.sentAt, before)))
    .returning({ id: outbox.id });
  return rows.length;
}
