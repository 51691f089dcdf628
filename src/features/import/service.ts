import type { Clock } from '../../infra/clock.js';
import type { Database } from '../../infra/db/client.js';
import type { AuditService } from '../audit/service.js';
import type { RbacService } from '../rbac/service.js';
import { checkUser, type ImportRow, type SourceUser } from './record.js';
import * as repo from './repo.js';

export interface ImportConflict {
  sourceRef: string;
  email: string;
  reason: string;
}

export interface ImportSummary {
  /** Rows read from the source. */
  read: number;
  /** Accounts created by this run (by a dry run: that it would create). */
  imported: number;
  /** Rows whose account exists already with the same id and address: left as they are. */
  alreadyPresent: number;
  /** Rows not imported, each reported with its reason. */
  conflicts: number;
  /** Imported accounts with no password and an unconfirmed address (social sign-ins of the original): they prove the address first. */
  mustProveAddress: number;
  /** The last source row handled: a run stopped after it can start again from there (or from the beginning: nothing is imported twice). */
  lastSourceRef: string | null;
}

export interface ImportOptions {
  /** Recorded in each account's audit trail (`user_imported`). */
  source: string;
  /** Everything runs, in one transaction that is rolled back at the end: exact counts, nothing written. */
  dryRun: boolean;
  onConflict: (c: ImportConflict) => void;
  onBatch?: (s: ImportSummary) => void;
}

export type ImportService = ReturnType<typeof createImportService>;

class DryRunDone extends Error {}

/**
 * Imports users in batches: one transaction per batch (accounts, their roles and
 * one `user_imported` audit event each); what is taken already is never
 * overwritten or merged. Memory stays constant: only the current batch is held.
 */
export function createImportService(deps: {
  db: Database;
  clock: Clock;
  rbac: Pick<RbacService, 'assignToNew' | 'missingRoles'>;
  audit: Pick<AuditService, 'recordMany'>;
}) {
  const { db, clock, rbac, audit } = deps;

  async function importBatch(tx: Database, rows: ImportRow[], source: string, summary: ImportSummary, conflict: (c: ImportConflict) => void): Promise<void> {
    const inserted = await repo.insertUsers(tx, rows);
    const mine = rows.filter((r) => inserted.has(r.id));
    const rolesOf = new Map(mine.map((r) => [r.id, r.roles]));
    await rbac.assignToNew(tx, [...inserted], (id) => rolesOf.get(id) ?? []);
    await audit.recordMany(
      tx,
      mine.map((r) => ({ userId: r.id, type: 'user_imported', details: { source, source_ref: r.sourceRef } })),
    );
    summary.imported += mine.length;
    summary.mustProveAddress += mine.filter((r) => r.passwordHash === null && r.emailVerifiedAt === null).length;
    const left = rows.filter((r) => !inserted.has(r.id));
    const taken = await repo.findByIdsOrEmails(
      tx,
      left.map((r) => r.id),
      left.map((r) => r.email),
    );
    const byId = new Map(taken.map((t) => [t.id, t.email]));
    const byEmail = new Map(taken.map((t) => [t.email, t.id]));
    const insertedFrom = new Map(mine.map((r) => [r.id, r.sourceRef]));
    for (const r of left) {
      const emailOfId = byId.get(r.id);
      if (emailOfId === r.email) {
        // Imported before (an earlier run, or the same row twice): nothing to do.
        summary.alreadyPresent++;
        continue;
      }
      summary.conflicts++;
      if (emailOfId !== undefined) {
        conflict({ sourceRef: r.sourceRef, email: r.sourceEmail, reason: `the id ${r.id} already belongs to the Tessera account ${emailOfId}` });
        continue;
      }
      const owner = byEmail.get(r.email) ?? '?';
      const also = insertedFrom.get(owner);
      conflict({
        sourceRef: r.sourceRef,
        email: r.sourceEmail,
        reason: also
          ? `the same mailbox as ${also} (imported as ${owner}); addresses that differ only in case or Unicode form are one mailbox, never merged`
          : `the address ${r.email} already belongs to the Tessera account ${owner}; never merged`,
      });
    }
  }

  return {
    /** Imports every batch of `batches`; see ImportSummary for what is counted. */
    async run(batches: AsyncIterable<SourceUser[]>, opts: ImportOptions): Promise<ImportSummary> {
      const summary: ImportSummary = { read: 0, imported: 0, alreadyPresent: 0, conflicts: 0, mustProveAddress: 0, lastSourceRef: null };
      const conflict = (c: ImportConflict) => {
        summary.conflicts++;
        opts.onConflict(c);
      };
      const loop = async (outer: Database | null) => {
        for await (const batch of batches) {
          if (!batch.length) continue;
          summary.read += batch.length;
          const now = clock.now();
          const rows: ImportRow[] = [];
          for (const u of batch) {
            const checked = checkUser(u, now);
            if (checked.ok) rows.push(checked.row);
            else conflict({ sourceRef: checked.sourceRef, email: checked.email, reason: checked.reason });
          }
          const missing = new Set(
            await rbac.missingRoles(
              outer ?? db,
              rows.flatMap((r) => r.roles),
            ),
          );
          const usable = rows.filter((r) => {
            const unknown = r.roles.filter((role) => missing.has(role));
            if (unknown.length)
              conflict({ sourceRef: r.sourceRef, email: r.sourceEmail, reason: `no such role: ${unknown.join(', ')} (create it first: POST /admin/roles)` });
            return unknown.length === 0;
          });
          // importBatch counts its own conflicts.
          const report = (c: ImportConflict) => opts.onConflict(c);
          if (outer) await importBatch(outer, usable, opts.source, summary, report);
          else await db.transaction((tx) => importBatch(tx, usable, opts.source, summary, report));
          summary.lastSourceRef = batch[batch.length - 1]?.sourceRef ?? summary.lastSourceRef;
          opts.onBatch?.(summary);
        }
      };
      if (!opts.dryRun) {
        await loop(null);
        return summary;
      }
      try {
        await db.transaction(async (tx) => {
          await loop(tx);
          throw new DryRunDone();
        });
      } catch (err) {
        if (!(err instanceof DryRunDone)) throw err;
      }
      return summary;
    },
  };
}
