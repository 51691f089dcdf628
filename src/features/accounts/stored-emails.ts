import { and, eq, inArray, sql } from 'drizzle-orm';
import addressparser from 'nodemailer/lib/addressparser/index.js';
import type { Database } from '../../infra/db/client.js';
import { canonicalEmail } from '../../email-address.js';
import { users } from './tables.js';

export interface StoredEmailReport {
  /** Rows whose address was (or, without `fix`, would be) rewritten to its canonical form. */
  canonicalised: Array<{ id: string; from: string; to: string }>;
  /** Accounts whose addresses reach one mailbox: never merged or changed; an operator decides. */
  collisions: Array<{ mailbox: string; users: Array<{ id: string; email: string }> }>;
  /** Addresses that name no single mailbox: left as they are. */
  invalid: Array<{ id: string; email: string }>;
}

// Addresses this pattern matches are canonical already (plain ASCII, no punycode label to
// check): only the others are read, so the step is one scan in SQL, not a parse of every row in JS.
const PLAIN = "^[a-z0-9!#$%&'*+/=?^_`{|}~-]+(\\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*@([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\\.)+[a-z]([a-z0-9-]{0,61}[a-z0-9])?$";

/**
 * The mailbox mail to a stored address reached: its canonical form, or the one
 * address nodemailer read in it (display name, quotes, trailing separator or dot dropped).
 */
export function mailboxOf(stored: string): string | null {
  const canonical = canonicalEmail(stored);
  if (canonical) return canonical;
  const found = addressparser(stored, { flatten: true }).filter((a) => a.address);
  if (found.length !== 1) return null;
  return canonicalEmail((found[0]?.address ?? '').replace(/\.+$/, ''));
}

/**
 * Finds stored addresses that are not in canonical form (written before it existed).
 * With `fix`, rewrites each one that alone reaches its mailbox; accounts that share a
 * mailbox are reported and left unchanged, as are addresses that name no mailbox.
 */
export async function reviewStoredEmails(db: Database, opts: { fix: boolean }): Promise<StoredEmailReport> {
  const suspects = await db
    .select({ id: users.id, email: users.email })
    .from(users)
    .where(
      sql`${users.email} !~ ${PLAIN} or position('xn--' in ${users.email}) > 0 or octet_length(${users.email}) > 254 or length(split_part(${users.email}, '@', 1)) > 64`,
    );
  const report: StoredEmailReport = { canonicalised: [], collisions: [], invalid: [] };
  const byMailbox = new Map<string, Map<string, string>>();
  for (const u of suspects) {
    const mailbox = mailboxOf(u.email);
    if (mailbox === null) report.invalid.push(u);
    else byMailbox.set(mailbox, (byMailbox.get(mailbox) ?? new Map<string, string>()).set(u.id, u.email));
  }
  // Canonical rows that a suspect's mailbox is: the account that owns it today.
  const mailboxes = [...byMailbox.keys()];
  for (let i = 0; i < mailboxes.length; i += 500) {
    const owners = await db
      .select({ id: users.id, email: users.email })
      .from(users)
      .where(inArray(users.email, mailboxes.slice(i, i + 500)));
    for (const o of owners) byMailbox.get(o.email)?.set(o.id, o.email);
  }
  for (const [mailbox, rows] of [...byMailbox.entries()].sort(([a], [b]) => a.localeCompare(b))) {
    if (rows.size > 1) {
      report.collisions.push({ mailbox, users: [...rows].map(([id, email]) => ({ id, email })).sort((a, b) => a.email.localeCompare(b.email)) });
      continue;
    }
    const [[id, email] = ['', '']] = [...rows];
    if (email === mailbox) continue;
    if (opts.fix) {
      const changed = await db
        .update(users)
        .set({ email: mailbox })
        .where(and(eq(users.id, id), eq(users.email, email)))
        .returning({ id: users.id });
      if (changed.length === 0) continue;
    }
    report.canonicalised.push({ id, from: email, to: mailbox });
  }
  return report;
}

/** One line per finding, for the log of `tessera migrate` / the server's start, and `tessera users check-emails`. */
export function describeStoredEmails(report: StoredEmailReport, fixed: boolean): string[] {
  const show = (s: string) => JSON.stringify(s);
  return [
    ...report.canonicalised.map(
      (c) =>
        `email of user ${c.id} ${fixed ? 'rewritten' : 'not canonical'}: ${show(c.from)} → ${show(c.to)}${fixed ? '' : ' (`tessera migrate` rewrites it)'}`,
    ),
    ...report.collisions.map(
      (c) =>
        `COLLISION: ${c.users.length} accounts reach the mailbox ${c.mailbox}, left unchanged: ${c.users.map((u) => `${u.id} ${show(u.email)}`).join(', ')}`,
    ),
    ...report.invalid.map((u) => `INVALID: the email of user ${u.id} names no single mailbox, left unchanged: ${show(u.email)}`),
  ];
}
