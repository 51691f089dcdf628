import { inArray, or, sql } from 'drizzle-orm';
import type { Database } from '../../infra/db/client.js';
import { users } from '../accounts/tables.js';
import type { ImportRow } from './record.js';

/**
 * Inserts a batch in one statement; a row whose id or address is taken is left out
 * (ON CONFLICT DO NOTHING: the unique indexes decide, even against a concurrent sign-up).
 * Returns the ids inserted.
 */
export async function insertUsers(tx: Database, rows: ImportRow[]): Promise<Set<string>> {
  if (!rows.length) return new Set();
  const inserted = await tx
    .insert(users)
    .values(
      rows.map((r) => ({
        id: r.id,
        email: r.email,
        passwordHash: r.passwordHash,
        firstName: r.firstName,
        lastName: r.lastName,
        emailVerifiedAt: r.emailVerifiedAt,
        createdAt: r.createdAt,
        updatedAt: r.updatedAt,
      })),
    )
    .onConflictDoNothing()
    .returning({ id: users.id });
  return new Set(inserted.map((r) => r.id));
}

/** The accounts holding any of these ids or addresses. */
export async function findByIdsOrEmails(tx: Database, ids: string[], emails: string[]): Promise<Array<{ id: string; email: string }>> {
  if (!ids.length && !emails.length) return [];
  return tx
    .select({ id: users.id, email: users.email })
    .from(users)
    .where(or(ids.length ? inArray(users.id, ids) : sql`false`, emails.length ? inArray(users.email, emails) : sql`false`));
}
