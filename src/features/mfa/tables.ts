import { sql } from 'drizzle-orm';
import { bigint, index, integer, jsonb, pgTable, text, timestamp, uuid, uniqueIndex } from 'drizzle-orm/pg-core';
import { users } from '../accounts/tables.js';

/** A user's TOTP factor: the secret (encrypted), whether it is on, and its replay and failure state. */
export const userTotp = pgTable('user_totp', {
  userId: uuid('user_id')
    .primaryKey()
    .references(() => users.id, { onDelete: 'cascade' }),
  /** AES-256-GCM under MFA_ENCRYPTION_KEY; never the plain secret. */
  sealedSecret: text('sealed_secret').notNull(),
  /** Null while enrolling: the factor is on once a first code was verified. */
  enabledAt: timestamp('enabled_at', { withTimezone: true }),
  /** The last accepted RFC 6238 time step: a code is accepted only for a later step (no replay). */
  lastTimeStep: bigint('last_time_step', { mode: 'number' }),
  failedAttempts: integer('failed_attempts').notNull().default(0),
  failureWindowStart: timestamp('failure_window_start', { withTimezone: true }),
  createdAt: timestamp('created_at', { withTimezone: true }).notNull(),
});

/** Single-use recovery codes, stored as SHA-256 (each has 120 random bits). */
export const recoveryCodes = pgTable(
  'recovery_codes',
  {
    id: uuid('id')
      .primaryKey()
      .default(sql`gen_random_uuid()`),
    userId: uuid('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    codeHash: text('code_hash').notNull(),
    usedAt: timestamp('used_at', { withTimezone: true }),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull(),
  },
  (t) => [uniqueIndex('recovery_codes_hash_key').on(t.userId, t.codeHash)],
);

/** The second step of a sign-in: an opaque `mfa_token` (stored as SHA-256), short-lived and single-use. */
export const mfaChallenges = pgTable(
  'mfa_challenges',
  {
    id: uuid('id')
      .primaryKey()
      .default(sql`gen_random_uuid()`),
    userId: uuid('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    tokenHash: text('token_hash').notNull(),
    /** The methods already proven (e.g. ["pwd"]). */
    amr: text('amr').array().notNull(),
    expiresAt: timestamp('expires_at', { withTimezone: true }).notNull(),
    usedAt: timestamp('used_at', { withTimezone: true }),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull(),
    /** The registered client of the sign-in (sessions IssuingClient, as it was then): the session the second step opens is bound to it. */
    client: jsonb('client').$type<{ clientId: string; accessTokenSeconds: number | null; refreshTokenDays: number | null }>(),
  },
  (t) => [uniqueIndex('mfa_challenges_hash_key').on(t.tokenHash), index('mfa_challenges_user_idx').on(t.userId)],
);

export type UserTotpRow = typeof userTotp.$inferSelect;
