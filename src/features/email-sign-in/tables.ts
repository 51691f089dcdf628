import { integer, pgTable, text, timestamp, uniqueIndex } from 'drizzle-orm/pg-core';

/**
 * The live sign-in code of an address (one row per address: a new request replaces it). Neither the
 * code nor the link token is stored: an HMAC of the code (a 6-digit code has too few possibilities for
 * a plain hash) and the SHA-256 of the link token. The account may not exist yet (sign-up by email).
 */
export const emailSignInCodes = pgTable(
  'email_sign_in_codes',
  {
    /** Canonical (email-address.ts). */
    email: text('email').primaryKey(),
    codeHash: text('code_hash').notNull(),
    linkHash: text('link_hash').notNull(),
    /** Checks counted against this code (reserved before the code is compared). */
    attempts: integer('attempts').notNull().default(0),
    expiresAt: timestamp('expires_at', { withTimezone: true }).notNull(),
    usedAt: timestamp('used_at', { withTimezone: true }),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull(),
  },
  (t) => [uniqueIndex('email_sign_in_codes_link_key').on(t.linkHash)],
);

export type EmailSignInCodeRow = typeof emailSignInCodes.$inferSelect;
