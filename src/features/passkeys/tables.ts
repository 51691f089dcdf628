import { sql } from 'drizzle-orm';
import { bigint, boolean, index, pgTable, text, timestamp, uuid, uniqueIndex } from 'drizzle-orm/pg-core';
import { users } from '../accounts/tables.js';

/** A user's passkeys (WebAuthn credentials): the public key, the sign counter and the backup flags the authenticator reported. */
export const passkeys = pgTable(
  'passkeys',
  {
    id: uuid('id')
      .primaryKey()
      .default(sql`gen_random_uuid()`),
    userId: uuid('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    /** The credential id, base64url: unique across every user. */
    credentialId: text('credential_id').notNull(),
    /** The COSE public key, base64url. */
    publicKey: text('public_key').notNull(),
    /** The last signature counter seen (0: the authenticator keeps none). */
    signCount: bigint('sign_count', { mode: 'number' }).notNull().default(0),
    transports: text('transports')
      .array()
      .notNull()
      .default(sql`'{}'::text[]`),
    /** Backup eligible (a synced, multi-device passkey): fixed when it was made. */
    backupEligible: boolean('backup_eligible').notNull(),
    /** Backed up now (the last ceremony's BS flag). */
    backedUp: boolean('backed_up').notNull(),
    /** The authenticator model (AAGUID), as reported; all zeros for most synced passkeys. */
    aaguid: text('aaguid').notNull(),
    name: text('name').notNull(),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull(),
    lastUsedAt: timestamp('last_used_at', { withTimezone: true }),
  },
  (t) => [uniqueIndex('passkeys_credential_key').on(t.credentialId), index('passkeys_user_idx').on(t.userId)],
);

/**
 * The challenge of one WebAuthn ceremony: stored as SHA-256, short-lived, single-use, and bound to the
 * user who asked (registration, second factor) or to the flow id handed out with it (sign-in).
 */
export const webauthnChallenges = pgTable(
  'webauthn_challenges',
  {
    id: uuid('id')
      .primaryKey()
      .default(sql`gen_random_uuid()`),
    purpose: text('purpose').$type<'register' | 'sign_in' | 'second_factor'>().notNull(),
    challengeHash: text('challenge_hash').notNull(),
    /** Sign-in: the SHA-256 of the opaque flow id the options answer returned. */
    flowHash: text('flow_hash'),
    userId: uuid('user_id').references(() => users.id, { onDelete: 'cascade' }),
    expiresAt: timestamp('expires_at', { withTimezone: true }).notNull(),
    usedAt: timestamp('used_at', { withTimezone: true }),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull(),
  },
  (t) => [uniqueIndex('webauthn_challenges_hash_key').on(t.challengeHash), uniqueIndex('webauthn_challenges_flow_key').on(t.flowHash)],
);

export type PasskeyRow = typeof passkeys.$inferSelect;
export type WebAuthnChallengeRow = typeof webauthnChallenges.$inferSelect;
