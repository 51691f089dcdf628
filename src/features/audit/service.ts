import type { Clock } from '../../infra/clock.js';
import type { Database } from '../../infra/db/client.js';
import { auditEvents } from './tables.js';

export interface AuditEvent {
  userId: string | null;
  type: string;
  ip?: string | null;
  userAgent?: string | null;
  details?: Record<string, string | number | boolean>;
}

export type AuditService = ReturnType<typeof createAuditService>;

/** Appends security events; pass the transaction of the change so the event exists exactly when it does. */
export function createAuditService(deps: { clock: Clock }) {
  return {
    async record(tx: Database, e: AuditEvent): Promise<void> {
      await tx.insert(auditEvents).values({
        userId: e.userId,
        type: e.type,
        ip: e.ip ?? null,
        userAgent: e.userAgent?.slice(0, 512) ?? null,
        details: e.details ?? {},
        createdAt: deps.clock.now(),
      });
    },
  };
}
