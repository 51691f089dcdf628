import { boolean, index, integer, jsonb, pgTable, primaryKey, text, timestamp, uuid } from 'drizzle-orm/pg-core';
import { users } from '../accounts/tables.js';

/**
 * A pending authorization request (docs/openid-provider.md "Authorization code flow"): validated
 * once at /auth/authorize and kept here, not in URLs, while the hosted pages run. The browser
 * holds an opaque handle (`id` is its SHA-256) and must be the browser that started it.
 */
export const oidcAuthorizationRequests = pgTable(
  'oidc_authorization_requests',
  {
    id: text('id').primaryKey(),
    clientId: text('client_id').notNull(),
    redirectUri: text('redirect_uri').notNull(),
    /** The granted scopes, space-separated, in the order asked. */
    scope: text('scope').notNull(),
    state: text('state'),
    nonce: text('nonce'),
    codeChallenge: text('code_challenge'),
    /** The `prompt` values (none, login, consent, select_account). */
    prompt: text('prompt').array().notNull(),
    maxAge: integer('max_age'),
    loginHint: text('login_hint'),
    /** acr_values=mfa: the second factor is required. */
    requireMfa: boolean('require_mfa').notNull().default(false),
    /** SHA-256 of the browser's CSRF cookie: the request belongs to that browser only. */
    browserHash: text('browser_hash').notNull(),
    /** The browser session (its Tessera session row) that signed in during this request: prompt=login and max_age are satisfied by it. */
    authenticatedSessionId: uuid('authenticated_session_id'),
    /** The mfa_token of the second step while it is shown (single-use, minutes). */
    mfaToken: text('mfa_token'),
    /** The user confirmed the account shown (prompt=select_account) or consented in this request (prompt=consent). */
    accountChosen: boolean('account_chosen').notNull().default(false),
    consented: boolean('consented').notNull().default(false),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull(),
    expiresAt: timestamp('expires_at', { withTimezone: true }).notNull(),
    /** Set when the request ends (a code or an error went back): single-use. */
    usedAt: timestamp('used_at', { withTimezone: true }),
  },
  (t) => [index('oidc_authorization_requests_expiry_idx').on(t.expiresAt)],
);

/** Authorization codes: 256 random bits stored as SHA-256, 60 s, single-use, bound to everything they were issued for. */
export const oidcCodes = pgTable(
  'oidc_codes',
  {
    codeHash: text('code_hash').primaryKey(),
    clientId: text('client_id').notNull(),
    redirectUri: text('redirect_uri').notNull(),
    codeChallenge: text('code_challenge'),
    nonce: text('nonce'),
    scope: text('scope').notNull(),
    userId: uuid('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    /** The browser session (Tessera session row) the client's session becomes a child of. */
    parentSessionId: uuid('parent_session_id').notNull(),
    authTime: timestamp('auth_time', { withTimezone: true }).notNull(),
    amr: text('amr').array().notNull(),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull(),
    expiresAt: timestamp('expires_at', { withTimezone: true }).notNull(),
    usedAt: timestamp('used_at', { withTimezone: true }),
    /** The client session the code opened (ended if the code comes back). */
    sessionId: uuid('session_id'),
  },
  (t) => [index('oidc_codes_expiry_idx').on(t.expiresAt)],
);

/** The browser session of the hosted pages: the cookie's secret (SHA-256) → a Tessera session row of the implicit client. */
export const oidcBrowserSessions = pgTable(
  'oidc_browser_sessions',
  {
    secretHash: text('secret_hash').primaryKey(),
    sessionId: uuid('session_id').notNull(),
    userId: uuid('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull(),
  },
  (t) => [index('oidc_browser_sessions_session_idx').on(t.sessionId)],
);

/** Consent given by a user to a third-party client, remembered (revocable at DELETE /users/me/consents/:clientId). */
export const oidcConsents = pgTable(
  'oidc_consents',
  {
    userId: uuid('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    clientId: text('client_id').notNull(),
    scopes: text('scopes').array().notNull(),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull(),
    updatedAt: timestamp('updated_at', { withTimezone: true }).notNull(),
  },
  (t) => [primaryKey({ columns: [t.userId, t.clientId] })],
);

/**
 * Pushed authorization requests (RFC 9126): the parameters a client POSTed to /auth/par, until its
 * browser brings the request_uri to /auth/authorize (60 s, once, for that client only). `id` is the
 * SHA-256 of the request_uri's random part.
 */
export const oidcPushedRequests = pgTable(
  'oidc_pushed_requests',
  {
    id: text('id').primaryKey(),
    clientId: text('client_id').notNull(),
    /** The authorization request's parameters, as pushed (validated then). */
    params: jsonb('params').$type<Record<string, string>>().notNull(),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull(),
    expiresAt: timestamp('expires_at', { withTimezone: true }).notNull(),
    usedAt: timestamp('used_at', { withTimezone: true }),
  },
  (t) => [index('oidc_pushed_requests_expiry_idx').on(t.expiresAt)],
);

export type AuthorizationRequestRow = typeof oidcAuthorizationRequests.$inferSelect;
export type CodeRow = typeof oidcCodes.$inferSelect;
export type ConsentRow = typeof oidcConsents.$inferSelect;
