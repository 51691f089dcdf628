import { and, desc, eq, lt } from 'drizzle-orm';
import type { Clock } from '../../infra/clock.js';
import type { Database } from '../../infra/db/client.js';
import type { AuditEventType } from './events.js';
import { auditEvents, type AuditEventRow } from './tables.js';
import { MAX_USER_AGENT_LENGTH } from '../../limits.js';

export interface AuditEvent {
  userId: string | null;
  type: AuditEventType;
  ip?: string | null;
  userAgent?: string | null;
  details?: Record<string, string | number | boolean>;
}

export type AuditService = ReturnType<typeof createAuditService>;

/** Appends security events; pass the transaction of the change so the event exists exactly when it does. */
export function createAuditService(deps: { db: Database; clock: Clock }) {
  return {
    /** A user's own security events, newest first (`before`: the `created_at` of the last one seen). */
    async listForUser(userId: string, limit: number, before?: Date): Promise<AuditEventRow[]> {
      return deps.db
        .select()
        .from(auditEvents)
        .where(and(eq(auditEvents.userId, userId), before ? lt(auditEvents.createdAt, before) : undefined))
        .orderBy(desc(auditEvents.createdAt))
        .limit(limit);
    },

    /** Many events in one statement (`tessera import`: one per imported user). */
    async recordMany(tx: Database, events: AuditEvent[]): Promise<void> {
      if (!events.length) return;
      const createdAt = deps.clock.now();
      await tx.insert(auditEvents).values(
        events.map((e) => ({
          userId: e.userId,
          type: e.type,
          ip: e.ip ?? null,
          userAgent: e.userAgent?.slice(0, MAX_USER_AGENT_LENGTH) ?? null,
          details: e.details ?? {},
          createdAt,
        })),
      );
    },

    async record(tx: Database, e: AuditEvent): Promise<void> {
      await tx.insert(auditEvents).values({
        userId: e.userId,
        type: e.type,
        ip: e.ip ?? null,
        userAgent: e.userAgent?.slice(0, MAX_USER_AGENT_LENGTH) ?? null,
        details: e.details ?? {},
        createdAt: deps.clock.now(),
      });
    },
  };
}
