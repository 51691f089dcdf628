import { sql } from 'drizzle-orm';
import { boolean, index, integer, jsonb, pgTable, primaryKey, text, timestamp, uniqueIndex, uuid } from 'drizzle-orm/pg-core';

/**
 * The OAuth client registry (issue 16 item 1; docs/clients.md). Everything the
 * authorization endpoint, ID tokens and logout will need is stored and validated now.
 */
export const oauthClients = pgTable('oauth_clients', {
  /** Generated, URL-safe (base64url of 16 random bytes). */
  clientId: text('client_id').primaryKey(),
  name: text('name').notNull(),
  /** `public` (no secret: SPAs, native apps) or `confidential`. */
  type: text('type').notNull(),
  /** `none` (public), `client_secret_basic`, `client_secret_post` or `private_key_jwt`. */
  tokenEndpointAuthMethod: text('token_endpoint_auth_method').notNull(),
  /** Exact redirect URIs (loopback IP literals match on any port, RFC 8252 §7.3). */
  redirectUris: text('redirect_uris')
    .array()
    .notNull()
    .default(sql`'{}'::text[]`),
  postLogoutRedirectUris: text('post_logout_redirect_uris')
    .array()
    .notNull()
    .default(sql`'{}'::text[]`),
  grantTypes: text('grant_types')
    .array()
    .notNull()
    .default(sql`'{}'::text[]`),
  scopes: text('scopes')
    .array()
    .notNull()
    .default(sql`'{}'::text[]`),
  /** First-party clients get no consent screen and may be given the password grant. */
  firstParty: boolean('first_party').notNull().default(false),
  /** Per-client lifetimes; null = the server's ACCESS_TOKEN_EXPIRE_MINUTES / REFRESH_TOKEN_EXPIRE_DAYS. */
  accessTokenSeconds: integer('access_token_seconds'),
  refreshTokenDays: integer('refresh_token_days'),
  /** private_key_jwt: the client's public keys (a JWK Set), or where to fetch them. */
  jwks: jsonb('jwks'),
  jwksUri: text('jwks_uri'),
  /** OpenID Connect back-channel logout (stored now, used by the logout part of issue 16). */
  backchannelLogoutUri: text('backchannel_logout_uri'),
  createdAt: timestamp('created_at', { withTimezone: true }).notNull(),
  updatedAt: timestamp('updated_at', { withTimezone: true }).notNull(),
});

/**
 * Client secrets, stored as SHA-256 (each has 256 random bits). One current
 * secret per client (`expires_at` null); a rotation gives the previous one an
 * expiry (the overlap) instead of deleting it.
 */
export const oauthClientSecrets = pgTable(
  'oauth_client_secrets',
  {
    id: uuid('id')
      .primaryKey()
      .default(sql`gen_random_uuid()`),
    clientId: text('client_id')
      .notNull()
      .references(() => oauthClients.clientId, { onDelete: 'cascade' }),
    secretHash: text('secret_hash').notNull(),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull(),
    /** Null for the current secret; the end of the overlap for a rotated one. */
    expiresAt: timestamp('expires_at', { withTimezone: true }),
  },
  (t) => [
    index('oauth_client_secrets_client_idx').on(t.clientId),
    uniqueIndex('oauth_client_secrets_one_current')
      .on(t.clientId)
      .where(sql`${t.expiresAt} is null`),
  ],
);

/** `jti` of the private_key_jwt assertions seen, kept until their `exp`: each assertion is single-use (RFC 7523 §3). */
export const oauthClientAssertions = pgTable(
  'oauth_client_assertions',
  {
    clientId: text('client_id')
      .notNull()
      .references(() => oauthClients.clientId, { onDelete: 'cascade' }),
    jti: text('jti').notNull(),
    expiresAt: timestamp('expires_at', { withTimezone: true }).notNull(),
  },
  (t) => [primaryKey({ columns: [t.clientId, t.jti] }), index('oauth_client_assertions_expiry_idx').on(t.expiresAt)],
);

export type ClientRow = typeof oauthClients.$inferSelect;
export type ClientSecretRow = typeof oauthClientSecrets.$inferSelect;
