import { sql } from 'drizzle-orm';
import { index, integer, pgTable, text, timestamp, uuid } from 'drizzle-orm/pg-core';
import { users } from '../accounts/tables.js';

/**
 * One row per sign-in. No token is stored: a refresh token names the session
 * and its generation, and refreshing is a compare-and-swap of `generation`.
 */
export const sessions = pgTable(
  'sessions',
  {
    id: uuid('id')
      .primaryKey()
      .default(sql`gen_random_uuid()`),
    userId: uuid('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    generation: integer('generation').notNull().default(1),
    /** Authentication methods of the sign-in (RFC 8176), repeated in every access token. */
    amr: text('amr')
      .array()
      .notNull()
      .default(sql`'{}'::text[]`),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull(),
    lastRefreshedAt: timestamp('last_refreshed_at', { withTimezone: true }).notNull(),
    expiresAt: timestamp('expires_at', { withTimezone: true }).notNull(),
    revokedAt: timestamp('revoked_at', { withTimezone: true }),
    revokedReason: text('revoked_reason'),
    userAgent: text('user_agent'),
    ip: text('ip'),
    /** The registered OAuth client the session's tokens were issued to (features/clients); null = the implicit first-party client. Its refresh tokens work for that client only. */
    clientId: text('client_id'),
    /** The scopes granted to that client, space-separated (RFC 9068 `scope`); null for the implicit first-party client. Kept across refreshes. */
    scope: text('scope'),
    /** A client session opened through the hosted pages: the browser session (a session row of the implicit client) it belongs to. Ending that ends this. */
    parentSessionId: uuid('parent_session_id'),
  },
  (t) => [index('sessions_user_id_idx').on(t.userId), index('sessions_parent_idx').on(t.parentSessionId)],
);

export type SessionRow = typeof sessions.$inferSelect;
