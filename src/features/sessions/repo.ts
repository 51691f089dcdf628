import { and, desc, eq, gt, isNull, ne, or, sql } from 'drizzle-orm';
import type { Database } from '../../infra/db/client.js';
import { insertedRow } from '../../infra/db/rows.js';
import { users } from '../accounts/tables.js';
import { grantColumns as rbacGrantColumns } from '../rbac/grants.js';
import { sessions, type SessionRow } from './tables.js';

export interface NewSession {
  userId: string;
  amr: string[];
  now: Date;
  expiresAt: Date;
  userAgent: string | null;
  ip: string | null;
  /** The registered client the tokens are issued to; null = the implicit first-party client. */
  clientId?: string | null;
  /** The scopes granted to that client (space-separated). */
  scope?: string | null;
  /** The browser session this client session belongs to (the hosted pages' single sign-on). */
  parentSessionId?: string | null;
}

export async function insertSession(db: Database, s: NewSession): Promise<SessionRow> {
  const rows = await db
    .insert(sessions)
    .values({
      userId: s.userId,
      amr: s.amr,
      createdAt: s.now,
      lastRefreshedAt: s.now,
      expiresAt: s.expiresAt,
      userAgent: s.userAgent,
      ip: s.ip,
      clientId: s.clientId ?? null,
      scope: s.scope ?? null,
      parentSessionId: s.parentSessionId ?? null,
    })
    .returning();
  return insertedRow(rows, 'sessions');
}

/** What a token needs about the session's user. */
export const sessionUserColumns = {
  sessionId: sessions.id,
  userId: sessions.userId,
  generation: sessions.generation,
  amr: sessions.amr,
  createdAt: sessions.createdAt,
  expiresAt: sessions.expiresAt,
  lastRefreshedAt: sessions.lastRefreshedAt,
  revokedAt: sessions.revokedAt,
  clientId: sessions.clientId,
  scope: sessions.scope,
  email: users.email,
  emailVerifiedAt: users.emailVerifiedAt,
  disabledAt: users.disabledAt,
  // The profile `GET /users/me` answers with: read in the same statement, so a cached session serves it too.
  firstName: users.firstName,
  lastName: users.lastName,
  hasPassword: sql<boolean>`${users.passwordHash} is not null`.as('has_password'),
  userCreatedAt: users.createdAt,
  userUpdatedAt: users.updatedAt,
};

export interface SessionWithUser {
  sessionId: string;
  userId: string;
  generation: number;
  amr: string[];
  /** When the user signed in (refreshes keep it). */
  createdAt: Date;
  expiresAt: Date;
  lastRefreshedAt: Date;
  revokedAt: Date | null;
  /** The registered client the session's tokens are issued to; null = the implicit first-party client. */
  clientId: string | null;
  /** The scopes granted to that client (space-separated); null for the implicit first-party client. */
  scope: string | null;
  email: string;
  emailVerifiedAt: Date | null;
  disabledAt: Date | null;
  /** The user's profile (GET /users/me), as of this read: changes through Tessera forget the cached copies at once. */
  firstName: string | null;
  lastName: string | null;
  hasPassword: boolean;
  userCreatedAt: Date;
  userUpdatedAt: Date;
}

/**
 * The roles and permissions a refreshed token carries (defined by rbac, their one owner),
 * read in the same statement as the compare-and-swap: a refresh stays one round trip.
 */
const grantColumns = rbacGrantColumns(sessions.userId);

export type SessionWithGrants = SessionWithUser & { roles: string[]; permissions: string[] };

// The two queries of every refresh and every authenticated request, built once per
// database and prepared by name so PostgreSQL parses and plans them once per connection.
const prepared = new WeakMap<Database, ReturnType<typeof prepare>>();

function prepare(db: Database) {
  return {
    advance: db
      .update(sessions)
      .set({ generation: sql`${sessions.generation} + 1`, lastRefreshedAt: sql`${sql.placeholder('now')}::timestamptz` })
      .from(users)
      .where(
        and(
          eq(sessions.id, sql.placeholder('id')),
          eq(sessions.generation, sql.placeholder('gen')),
          // A refresh token works for the client it was issued to only (null: no client).
          sql`${sessions.clientId} is not distinct from ${sql.placeholder('client')}::text`,
          isNull(sessions.revokedAt),
          sql`${sessions.expiresAt} > ${sql.placeholder('now')}::timestamptz`,
          eq(users.id, sessions.userId),
          isNull(users.disabledAt),
        ),
      )
      .returning({ ...sessionUserColumns, ...grantColumns })
      .prepare('tessera_session_advance'),
    find: db
      .select(sessionUserColumns)
      .from(sessions)
      .innerJoin(users, eq(users.id, sessions.userId))
      .where(eq(sessions.id, sql.placeholder('id')))
      .limit(1)
      .prepare('tessera_session_find'),
  };
}

function statements(db: Database) {
  let s = prepared.get(db);
  if (!s) prepared.set(db, (s = prepare(db)));
  return s;
}

/**
 * The refresh compare-and-swap: moves the session from generation `gen` to
 * `gen + 1` only if it is still at `gen`, live, unexpired and its user enabled.
 * Returns null when any of that fails (the caller looks at why).
 */
export async function advanceGeneration(
  db: Database,
  sessionId: string,
  gen: number,
  now: Date,
  clientId: string | null = null,
): Promise<SessionWithGrants | null> {
  const rows = await statements(db).advance.execute({ id: sessionId, gen, now: now.toISOString(), client: clientId });
  return rows[0] ?? null;
}

export async function findSessionWithUser(db: Database, sessionId: string): Promise<SessionWithUser | null> {
  const rows = await statements(db).find.execute({ id: sessionId });
  return rows[0] ?? null;
}

/** A session that a revocation just ended: who held it, and the client its tokens were issued to (back-channel logout). */
export interface EndedSession {
  sessionId: string;
  userId: string;
  clientId: string | null;
}

const endedColumns = { sessionId: sessions.id, userId: sessions.userId, clientId: sessions.clientId };

/** Ends one live session (of `userId` when given); the session ended, or null when it was not live. */
export async function revokeSession(db: Database, sessionId: string, now: Date, reason: string, userId?: string): Promise<EndedSession | null> {
  const rows = await db
    .update(sessions)
    .set({ revokedAt: now, revokedReason: reason })
    .where(and(eq(sessions.id, sessionId), isNull(sessions.revokedAt), userId ? eq(sessions.userId, userId) : undefined))
    .returning(endedColumns);
  return rows[0] ?? null;
}

/** Revokes every live session of the user, except `keepSessionId` when given. */
export async function revokeUserSessions(db: Database, userId: string, now: Date, reason: string, keepSessionId?: string): Promise<EndedSession[]> {
  return db
    .update(sessions)
    .set({ revokedAt: now, revokedReason: reason })
    .where(and(eq(sessions.userId, userId), isNull(sessions.revokedAt), keepSessionId ? ne(sessions.id, keepSessionId) : undefined))
    .returning(endedColumns);
}

/** Revokes every live session issued to the client (the client was deleted). */
export async function revokeClientSessions(db: Database, clientId: string, now: Date, reason: string): Promise<EndedSession[]> {
  return db
    .update(sessions)
    .set({ revokedAt: now, revokedReason: reason })
    .where(and(eq(sessions.clientId, clientId), isNull(sessions.revokedAt)))
    .returning(endedColumns);
}

/** Revokes every live session of the user opened with `method` among its `amr` (e.g. every third-party sign-in: "fed"). */
export async function revokeUserSessionsWithAmr(db: Database, userId: string, method: string, now: Date, reason: string): Promise<EndedSession[]> {
  return db
    .update(sessions)
    .set({ revokedAt: now, revokedReason: reason })
    .where(and(eq(sessions.userId, userId), isNull(sessions.revokedAt), sql`${method} = any(${sessions.amr})`))
    .returning(endedColumns);
}

export async function listLiveSessions(db: Database, userId: string, now: Date): Promise<SessionRow[]> {
  return db
    .select()
    .from(sessions)
    .where(and(eq(sessions.userId, userId), isNull(sessions.revokedAt), gt(sessions.expiresAt, now)))
    .orderBy(desc(sessions.lastRefreshedAt));
}

/** Revokes a browser session and every client session opened under it (the hosted pages' single sign-on); the sessions ended. */
export async function revokeSessionFamily(db: Database, parentId: string, now: Date, reason: string): Promise<EndedSession[]> {
  return db
    .update(sessions)
    .set({ revokedAt: now, revokedReason: reason })
    .where(and(or(eq(sessions.id, parentId), eq(sessions.parentSessionId, parentId)), isNull(sessions.revokedAt)))
    .returning(endedColumns);
}

/** Moves the client sessions of one browser session under another (a new sign-in of the same user in that browser). */
export async function reparentSessions(db: Database, fromParentId: string, toParentId: string): Promise<void> {
  await db.update(sessions).set({ parentSessionId: toParentId }).where(eq(sessions.parentSessionId, fromParentId));
}

/** Revokes the user's live sessions of one client (a withdrawn consent); the sessions ended. */
export async function revokeUserClientSessions(db: Database, userId: string, clientId: string, now: Date, reason: string): Promise<EndedSession[]> {
  return db
    .update(sessions)
    .set({ revokedAt: now, revokedReason: reason })
    .where(and(eq(sessions.userId, userId), eq(sessions.clientId, clientId), isNull(sessions.revokedAt)))
    .returning(endedColumns);
}
