import { sql } from 'drizzle-orm';
import { boolean, index, pgTable, text, timestamp, uuid, uniqueIndex } from 'drizzle-orm/pg-core';
import { users } from '../accounts/tables.js';

/**
 * A third-party account connected to a user, keyed by the provider's stable
 * subject, never by email (docs/social-sign-in.md, "Accounts and linking"). At most one per (user, provider), so
 * `DELETE /users/me/identities/:provider` names exactly one row.
 */
export const identities = pgTable(
  'identities',
  {
    id: uuid('id')
      .primaryKey()
      .default(sql`gen_random_uuid()`),
    userId: uuid('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    provider: text('provider').notNull(),
    subject: text('subject').notNull(),
    /** As the provider gave it at the last sign-in (not normalised); null when it gave none. */
    email: text('email'),
    emailVerified: boolean('email_verified').notNull().default(false),
    /**
     * Whether this identity's claim on the account is proven: it created the account
     * with an address its provider verified, linked by such an address, or was connected
     * by the signed-in owner of an account whose address was confirmed. Proving the
     * address (a reset, a confirmation) deletes the identities that are not.
     */
    proven: boolean('proven').notNull().default(false),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull(),
    lastSignInAt: timestamp('last_sign_in_at', { withTimezone: true }),
  },
  (t) => [
    uniqueIndex('identities_provider_subject_key').on(t.provider, t.subject),
    // Also the index on user_id (its leading column).
    uniqueIndex('identities_user_provider_key').on(t.userId, t.provider),
  ],
);

/**
 * One web sign-in attempt between `/authorize` and `/callback`: the PKCE
 * verifier and nonce Tessera sent to the provider, where to send the user back,
 * and the hash of the browser-binding cookie. Keyed by SHA-256 of the `state`
 * value; single-use (`used_at`), 10 minutes.
 */
export const oauthStates = pgTable(
  'oauth_states',
  {
    /** SHA-256 (hex) of the `state` sent to the provider. */
    id: text('id').primaryKey(),
    provider: text('provider').notNull(),
    codeVerifier: text('code_verifier').notNull(),
    nonce: text('nonce').notNull(),
    /** The app's redirect_uri (canonical form of an OAUTH_REDIRECT_ALLOWLIST entry). */
    redirectUri: text('redirect_uri').notNull(),
    /** The `state` the app passed to /authorize, echoed back to it. */
    appState: text('app_state'),
    /** The app's own PKCE S256 challenge, checked when it exchanges the one-time code. */
    codeChallenge: text('code_challenge'),
    /** SHA-256 (hex) of the HttpOnly cookie set on the browser that started the attempt. */
    bindingHash: text('binding_hash').notNull(),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull(),
    expiresAt: timestamp('expires_at', { withTimezone: true }).notNull(),
    usedAt: timestamp('used_at', { withTimezone: true }),
  },
  (t) => [index('oauth_states_expires_idx').on(t.expiresAt)],
);

/**
 * The one-time code the web flow hands to the app's redirect_uri (stored as
 * SHA-256), exchanged at `POST /auth/token` (`grant_type=authorization_code`).
 * 60 seconds, single-use; `session_id` is the session it opened, revoked if the
 * code is replayed (RFC 6749 §4.1.2).
 */
export const oauthCodes = pgTable(
  'oauth_codes',
  {
    id: uuid('id')
      .primaryKey()
      .default(sql`gen_random_uuid()`),
    codeHash: text('code_hash').notNull(),
    userId: uuid('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    provider: text('provider').notNull(),
    amr: text('amr').array().notNull(),
    redirectUri: text('redirect_uri').notNull(),
    codeChallenge: text('code_challenge'),
    sessionId: uuid('session_id'),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull(),
    expiresAt: timestamp('expires_at', { withTimezone: true }).notNull(),
    usedAt: timestamp('used_at', { withTimezone: true }),
  },
  (t) => [uniqueIndex('oauth_codes_hash_key').on(t.codeHash), index('oauth_codes_user_idx').on(t.userId), index('oauth_codes_expires_idx').on(t.expiresAt)],
);

export type IdentityRow = typeof identities.$inferSelect;
export type OAuthStateRow = typeof oauthStates.$inferSelect;
export type OAuthCodeRow = typeof oauthCodes.$inferSelect;
