import type { DatabaseHandle } from './infra/db/client.js';
import { describeStoredEmails, reviewStoredEmails } from './features/accounts/stored-emails.js';

/**
 * Applies the SQL migrations, then the step SQL cannot do (IDNA): stored email
 * addresses are brought to their canonical form, and accounts that share a
 * mailbox are reported (`say`), never merged. Idempotent; run by `tessera migrate`
 * and at start (MIGRATE_ON_START).
 */
export async function migrateDatabase(database: DatabaseHandle, say: (line: string) => void): Promise<void> {
  await database.migrate();
  const report = await reviewStoredEmails(database.db, { fix: true });
  const lines = describeStoredEmails(report, true);
  for (const line of lines) say(line);
  if (report.collisions.length || report.invalid.length)
    say('see `npx tessera users check-emails` and docs/security.md (email addresses) to resolve the accounts above');
}
