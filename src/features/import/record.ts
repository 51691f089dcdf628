import { createHash } from 'node:crypto';
import { canonicalEmail } from '../accounts/email.js';

/** One user as a source describes it, before any check. */
export interface SourceUser {
  /** Where the row came from, for the report: `id 42` (the source's id) or `line 7` (of a file). */
  sourceRef: string;
  /** The Tessera user id to keep (the original's `uuid`); derived from the address when the source has none. */
  id: string | null;
  email: string;
  passwordHash: string | null;
  firstName: string | null;
  lastName: string | null;
  emailVerified: boolean;
  createdAt: Date | null;
  updatedAt: Date | null;
  /** Roles on top of DEFAULT_ROLE (existing roles only). */
  roles: string[];
  /** A reason the source already found the row unusable (a malformed line): reported, never imported. */
  problem?: string;
}

/** A row ready to insert. */
export interface ImportRow {
  sourceRef: string;
  id: string;
  /** Canonical. */
  email: string;
  /** As the source spells it (for the report). */
  sourceEmail: string;
  passwordHash: string | null;
  firstName: string | null;
  lastName: string | null;
  emailVerifiedAt: Date | null;
  createdAt: Date;
  updatedAt: Date;
  roles: string[];
}

export type Checked = { ok: true; row: ImportRow } | { ok: false; sourceRef: string; email: string; reason: string };

/** bcrypt as Tessera verifies it (infra/password-hasher.ts): `$2a$`, `$2b$` or `$2y$`, cost 04–31. */
const BCRYPT = /^\$2[aby]\$(0[4-9]|[12]\d|3[01])\$[./A-Za-z0-9]{53}$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Why a stored hash cannot be kept, or null when Tessera verifies it as it is. */
export function hashProblem(hash: string): string | null {
  if (BCRYPT.test(hash)) return null;
  if (hash.startsWith('$argon2'))
    return 'argon2 password hash: Tessera verifies bcrypt only (no argon2 implementation is installed); import the account without a hash to make its owner reset the password';
  return 'password hash is not a bcrypt hash ($2a$/$2b$/$2y$, cost 04-31)';
}

const cleanName = (v: string | null): string | null => (v === null ? null : v.trim() || null);

// A fixed namespace: one row always gets the same id, so a re-run of a file finds the account it made.
const NAMESPACE = Buffer.from('6f1c3a52d0b44f7e9b1e0c8a4d2e7f10', 'hex');

/** RFC 9562 UUIDv5 of `name` in Tessera's import namespace. */
export function idForEmail(email: string): string {
  const h = createHash('sha1').update(NAMESPACE).update(email, 'utf8').digest();
  h[6] = ((h[6] ?? 0) & 0x0f) | 0x50;
  h[8] = ((h[8] ?? 0) & 0x3f) | 0x80;
  const hex = h.subarray(0, 16).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/**
 * Checks one source row: the address through the one canonical form (email-address.ts),
 * the hash kept only when it verifies, the id a UUID. `now` stands in for missing times
 * and is when an address counts as confirmed.
 */
export function checkUser(u: SourceUser, now: Date): Checked {
  const fail = (reason: string): Checked => ({ ok: false, sourceRef: u.sourceRef, email: u.email, reason });
  if (u.problem) return fail(u.problem);
  const email = canonicalEmail(u.email);
  if (email === null) return fail('invalid email address (not a plain local@domain)');
  if (u.id !== null && !UUID.test(u.id)) return fail(`id ${JSON.stringify(u.id)} is not a UUID`);
  if (u.passwordHash !== null) {
    const problem = hashProblem(u.passwordHash);
    if (problem) return fail(problem);
  }
  const createdAt = u.createdAt ?? now;
  return {
    ok: true,
    row: {
      sourceRef: u.sourceRef,
      // From the address as the source spells it: a re-run finds the same account, while two spellings of
      // one mailbox get two ids, so the second is a conflict (same mailbox), never "already present".
      id: (u.id ?? idForEmail(u.email.trim())).toLowerCase(),
      email,
      sourceEmail: u.email,
      passwordHash: u.passwordHash,
      firstName: cleanName(u.firstName),
      lastName: cleanName(u.lastName),
      emailVerifiedAt: u.emailVerified ? now : null,
      createdAt,
      updatedAt: u.updatedAt ?? createdAt,
      roles: u.roles,
    },
  };
}
