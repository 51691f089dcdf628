import type { Clock } from '../../infra/clock.js';
import type { ServiceMetrics } from '../../infra/metrics.js';
import type { ClientMeta } from '../../http/client-meta.js';
import type { EmailTokenService } from '../email-tokens/service.js';
import type { Database } from '../../infra/db/client.js';
import { AppError, OAuthError } from '../../errors.js';
import type { TokenSigner } from './token-signer.js';
import type { TokenVerifier } from './token-verifier.js';
import type { VerifiedAccessToken, VerifiedRefreshToken } from './claims.js';
import * as repo from './repo.js';
import { noSessionCache, type SessionCache } from './session-cache.js';
import type { SessionRow } from './tables.js';
import { MAX_USER_AGENT_LENGTH } from '../../limits.js';

export interface TokenResponse {
  access_token: string;
  token_type: 'Bearer';
  expires_in: number;
  refresh_token: string;
}

/** How a client session of the OpenID Provider is opened (features/oidc): its granted scopes and the browser session it belongs to. */
export interface SessionOptions {
  scope?: string | null;
  parentSessionId?: string | null;
}

/** Who made a request (the transport's view: http/client-meta.ts). */
export type { ClientMeta };
export type { EndedSession } from './repo.js';

/** The registered OAuth client tokens are issued to (features/clients); absent or null = the implicit first-party client. */
export interface IssuingClient {
  clientId: string;
  /** The client's own lifetimes; null = ACCESS_TOKEN_EXPIRE_MINUTES / REFRESH_TOKEN_EXPIRE_DAYS. */
  accessTokenSeconds: number | null;
  refreshTokenDays: number | null;
}

export interface SessionOwner {
  id: string;
  email: string;
  emailVerifiedAt: Date | null;
}

export interface Authenticated {
  token: VerifiedAccessToken;
  session: repo.SessionWithUser;
}

/** What sessions write to the audit log (the audit feature's service provides it; sessions do not import that feature). */
export interface SessionAudit {
  record(
    tx: Database,
    event: {
      userId: string;
      type: 'logout' | 'logout_all' | 'session_revoked' | 'refresh_token_reuse' | 'token_revoked';
      ip?: string | null;
      userAgent?: string | null;
      details?: Record<string, string | number | boolean>;
    },
  ): Promise<void>;
}

/**
 * Told of the sessions that just ended, inside the transaction that ends them, whatever the cause
 * (back-channel logout writes its outbox rows there: features/backchannel).
 */
export type SessionsEnded = (tx: Database, ended: repo.EndedSession[]) => Promise<void>;

/** What a token revocation did (RFC 7009): the route turns the last two into errors. */
export type RevocationOutcome = 'revoked' | 'inactive' | 'not_this_client' | 'unsupported_token_type';

export interface SessionServiceDeps {
  db: Database;
  clock: Clock;
  signer: TokenSigner;
  verifier: TokenVerifier;
  refreshTokenDays: number;
  refreshReuseGraceSeconds: number;
  metrics: Pick<ServiceMetrics, 'refreshReuse'>;
  /** Roles and permissions for the access token, read at every issue: a role change shows in tokens at the next refresh. */
  grantsOf: (userId: string, tx?: Database) => Promise<{ roles: string[]; permissions: string[] }>;
  audit: SessionAudit;
  /** "Sign out everywhere" also voids every emailed link of the account (reset, confirmation, email change). */
  emailTokens: Pick<EmailTokenService, 'revokeAllOfUser'>;
  /** Live sessions of recent checks (session-cache.ts); none by default. */
  cache?: SessionCache;
  /** Called in the transaction of every ended session (back-channel logout). */
  onEnded?: SessionsEnded;
}

const DAY_MS = 24 * 60 * 60 * 1000;
const invalidGrant = (why: string) => new OAuthError('invalid_grant', why);

export type SessionService = ReturnType<typeof createSessionService>;

export function createSessionService(deps: SessionServiceDeps) {
  const { db, clock, signer, verifier } = deps;
  const cache = deps.cache ?? noSessionCache;
  /** Every instance forgets the user's cached sessions (after any change that ends one). */
  const ended = <T>(userId: string, result: T): T => {
    cache.invalidateUser(userId);
    return result;
  };
  /** Runs `work` in the caller's transaction, or in one of its own when the caller gave none (`db`). */
  const within = <T>(tx: Database, work: (tx: Database) => Promise<T>): Promise<T> => (tx === db ? db.transaction(work) : work(tx));
  /** Tells the listener of the sessions just ended (in `tx`); their count. */
  const notify = async (tx: Database, endedSessions: repo.EndedSession[]): Promise<number> => {
    if (endedSessions.length && deps.onEnded) await deps.onEnded(tx, endedSessions);
    return endedSessions.length;
  };
  /** A session its tokens may still be used with: not revoked, not expired, its user not disabled. */
  const isLive = (s: repo.SessionWithUser) => !s.revokedAt && s.expiresAt > clock.now() && !s.disabledAt;

  async function issue(
    s: {
      sessionId: string;
      userId: string;
      generation: number;
      amr: string[];
      expiresAt: Date;
      email: string;
      emailVerifiedAt: Date | null;
      roles?: string[];
      permissions?: string[];
      scope?: string | null;
    },
    tx: Database = db,
    client: IssuingClient | null = null,
  ): Promise<TokenResponse> {
    // A refresh brings the grants with its compare-and-swap; sign-in and the grace path read them.
    const grants = s.roles && s.permissions ? { roles: s.roles, permissions: s.permissions } : await deps.grantsOf(s.userId, tx);
    const [access, refresh] = await Promise.all([
      signer.signAccess(
        {
          sub: s.userId,
          sid: s.sessionId,
          email: s.email,
          email_verified: s.emailVerifiedAt !== null,
          roles: grants.roles,
          permissions: grants.permissions,
          amr: s.amr,
          ...(client ? { client_id: client.clientId } : {}),
          ...(s.scope ? { scope: s.scope } : {}),
        },
        client?.accessTokenSeconds,
      ),
      signer.signRefresh({ sub: s.userId, sid: s.sessionId, gen: s.generation }, s.expiresAt),
    ]);
    return { access_token: access.token, token_type: 'Bearer', expires_in: access.expiresIn, refresh_token: refresh };
  }

  /** Ends one session of the user and records why; false when it was not live (nothing recorded). */
  async function endSession(userId: string, sessionId: string, type: 'logout' | 'session_revoked', meta?: ClientMeta): Promise<boolean> {
    const done = await db.transaction(async (tx) => {
      const reason = type === 'logout' ? 'logout' : 'revoked_by_user';
      const session = await repo.revokeSession(tx, sessionId, clock.now(), reason, userId);
      if (!session) return false;
      await notify(tx, [session]);
      await deps.audit.record(tx, { userId, type, ip: meta?.ip ?? null, userAgent: meta?.userAgent ?? null, details: { session: sessionId } });
      return true;
    });
    return done ? ended(userId, done) : done;
  }

  return {
    /** Opens a session for a user who just proved who they are; pass `tx` to join the caller's transaction. */
    async start(
      user: SessionOwner,
      amr: string[],
      meta: ClientMeta,
      tx: Database = db,
      client: IssuingClient | null = null,
      opts: SessionOptions = {},
    ): Promise<TokenResponse> {
      const now = clock.now();
      const session = await repo.insertSession(tx, {
        userId: user.id,
        amr,
        now,
        expiresAt: new Date(now.getTime() + (client?.refreshTokenDays ?? deps.refreshTokenDays) * DAY_MS),
        userAgent: meta.userAgent?.slice(0, MAX_USER_AGENT_LENGTH) ?? null,
        ip: meta.ip,
        clientId: client?.clientId ?? null,
        scope: opts.scope ?? null,
        parentSessionId: opts.parentSessionId ?? null,
      });
      return issue({ ...session, sessionId: session.id, email: user.email, emailVerifiedAt: user.emailVerifiedAt }, tx, client);
    },

    /**
     * Rotates a refresh token. Replaying the immediately previous token within
     * the grace window returns tokens for the current generation (parallel tabs,
     * retries); any other replay revokes the whole session (theft detection).
     * A refresh token works only for the client it was issued to (`client`; null =
     * the implicit first-party client): another client gets `invalid_grant` and
     * changes nothing.
     */
    async refresh(refreshToken: string, client: IssuingClient | null = null): Promise<TokenResponse> {
      const claims = await verifier.verifyRefresh(refreshToken);
      if (!claims) throw invalidGrant('The refresh token is invalid or expired.');
      const now = clock.now();
      const clientId = client?.clientId ?? null;
      const advanced = await repo.advanceGeneration(db, claims.sid, claims.gen, now, clientId);
      if (advanced) return issue(advanced, db, client);

      const current = await repo.findSessionWithUser(db, claims.sid);
      if (!current || current.userId !== claims.sub) throw invalidGrant('The refresh token is invalid or expired.');
      // Before any reuse detection: a client holding another client's token must not be able to end that session.
      if (current.clientId !== clientId) throw invalidGrant('The refresh token was not issued to this client.');
      if (current.revokedAt) throw invalidGrant('The session has ended; sign in again.');
      if (current.expiresAt <= now) throw invalidGrant('The session has expired; sign in again.');
      if (current.disabledAt) throw invalidGrant('This account is disabled.');
      if (claims.gen >= current.generation) throw invalidGrant('The refresh token is invalid or expired.');

      // A grace of 0 means none: not even a replay within the same millisecond is forgiven.
      const graceEnds = current.lastRefreshedAt.getTime() + deps.refreshReuseGraceSeconds * 1000;
      const inGrace = deps.refreshReuseGraceSeconds > 0 && now.getTime() <= graceEnds;
      if (claims.gen === current.generation - 1 && inGrace) return issue(current, db, client);

      await db.transaction(async (tx) => {
        const revoked = await repo.revokeSession(tx, current.sessionId, now, 'refresh_token_reuse');
        if (revoked) await notify(tx, [revoked]);
        await deps.audit.record(tx, { userId: current.userId, type: 'refresh_token_reuse', details: { session: current.sessionId } });
      });
      cache.invalidateUser(current.userId);
      deps.metrics.refreshReuse.inc();
      throw invalidGrant('The refresh token was already used; the session has been revoked.');
    },

    /** Verifies an access token and checks its session is still live and its user enabled. */
    async authenticate(accessToken: string): Promise<Authenticated> {
      const token = await verifier.verifyAccess(accessToken);
      if (!token) throw new AppError('invalid_token');
      const session = await cache.lookup(token.sid, () => repo.findSessionWithUser(db, token.sid), isLive);
      if (!session || session.userId !== token.sub) throw new AppError('invalid_token');
      if (!isLive(session)) throw new AppError('session_revoked');
      return { token, session };
    },

    /**
     * A refresh token that would be accepted now (token introspection): valid,
     * its session live, and the session's current generation. Null otherwise.
     */
    async inspectRefresh(refreshToken: string): Promise<{ claims: VerifiedRefreshToken; session: repo.SessionWithUser } | null> {
      const claims = await verifier.verifyRefresh(refreshToken);
      if (!claims) return null;
      const session = await repo.findSessionWithUser(db, claims.sid);
      if (!session || session.userId !== claims.sub || !isLive(session) || session.generation !== claims.gen) return null;
      return { claims, session };
    },

    /** Ends the session a refresh token belongs to; unknown or already-ended sessions are not an error. */
    async logoutWithRefreshToken(refreshToken: string, meta?: ClientMeta): Promise<boolean> {
      const claims = await verifier.verifyRefresh(refreshToken);
      if (!claims) return false;
      return endSession(claims.sub, claims.sid, 'logout', meta);
    },

    /**
     * Token revocation (RFC 7009) by the client `clientId` (null: the implicit first-party client).
     * A refresh or access token of a session issued to that client ends the session: its refresh
     * token stops at once, and so do its access tokens wherever Tessera checks them (an API call,
     * userinfo, introspection); a service verifying the JWT locally sees the end only at `exp`.
     * A token of another client changes nothing (`not_this_client`); an invalid, expired or unknown
     * token is `inactive`, another JWT of ours (an ID token) `unsupported_token_type`.
     */
    async revokeToken(token: string, hint: string | undefined, clientId: string | null, meta?: ClientMeta): Promise<RevocationOutcome> {
      const asRefresh = async () => {
        const c = await verifier.verifyRefresh(token);
        return c ? { sub: c.sub, sid: c.sid, type: 'refresh_token' } : null;
      };
      const asAccess = async () => {
        const c = await verifier.verifyAccess(token);
        return c ? { sub: c.sub, sid: c.sid, type: 'access_token' } : null;
      };
      // The hint orders the search; a wrong or unknown hint does not stop it (RFC 7009 §2.1).
      let found: { sub: string; sid: string; type: string } | null = null;
      for (const lookup of hint === 'access_token' ? [asAccess, asRefresh] : [asRefresh, asAccess]) if ((found = await lookup())) break;
      if (!found) return (await verifier.isOwnToken(token)) ? 'unsupported_token_type' : 'inactive';
      const session = await repo.findSessionWithUser(db, found.sid);
      if (!session || session.userId !== found.sub) return 'inactive';
      if (session.clientId !== clientId) return 'not_this_client';
      const { sub, sid, type } = found;
      const done = await db.transaction(async (tx) => {
        const revoked = await repo.revokeSession(tx, sid, clock.now(), 'token_revoked', sub);
        if (!revoked) return false;
        await notify(tx, [revoked]);
        await deps.audit.record(tx, {
          userId: sub,
          type: 'token_revoked',
          ip: meta?.ip ?? null,
          userAgent: meta?.userAgent ?? null,
          details: { session: sid, token_type: type, ...(clientId ? { client: clientId } : {}) },
        });
        return true;
      });
      return done ? ended(sub, 'revoked') : 'inactive';
    },

    async logout(userId: string, sessionId: string, meta?: ClientMeta): Promise<void> {
      await endSession(userId, sessionId, 'logout', meta);
    },

    async logoutAll(userId: string, meta?: ClientMeta): Promise<number> {
      const n = await db.transaction(async (tx) => {
        const n = await notify(tx, await repo.revokeUserSessions(tx, userId, clock.now(), 'logout_all'));
        await deps.emailTokens.revokeAllOfUser(tx, userId);
        await deps.audit.record(tx, { userId, type: 'logout_all', ip: meta?.ip ?? null, userAgent: meta?.userAgent ?? null, details: { sessions: n } });
        return n;
      });
      return ended(userId, n);
    },

    // Inside the caller's transaction: published before its commit, which session-cache.ts allows for.
    async revokeAll(userId: string, reason: string, tx: Database = db): Promise<number> {
      return ended(userId, await within(tx, async (t) => notify(t, await repo.revokeUserSessions(t, userId, clock.now(), reason))));
    },

    /**
     * Sign-out-everywhere done for the user (an administrator's revoke or disable): every
     * session ends and every emailed link of the account is void, as with the user's own
     * logout-all — a link asked for by whoever held a session (an email change to their
     * address above all) must not outlive the response to the incident.
     */
    async endEverywhere(userId: string, reason: string, tx: Database = db): Promise<number> {
      const n = await within(tx, async (t) => {
        const count = await notify(t, await repo.revokeUserSessions(t, userId, clock.now(), reason));
        await deps.emailTokens.revokeAllOfUser(t, userId);
        return count;
      });
      return ended(userId, n);
    },

    async revokeOthers(userId: string, keepSessionId: string, reason: string, tx: Database = db): Promise<number> {
      return ended(userId, await within(tx, async (t) => notify(t, await repo.revokeUserSessions(t, userId, clock.now(), reason, keepSessionId))));
    },

    /** Ends every session issued to a registered client (the client was deleted); the count ended. */
    async revokeByClient(clientId: string, reason: string, tx: Database = db): Promise<number> {
      const endedSessions = await within(tx, async (t) => {
        const rows = await repo.revokeClientSessions(t, clientId, clock.now(), reason);
        await notify(t, rows);
        return rows;
      });
      // Every instance forgets those users' cached sessions (session-cache.ts).
      for (const userId of new Set(endedSessions.map((e) => e.userId))) cache.invalidateUser(userId);
      return endedSessions.length;
    },

    /** Ends every session of the user opened with `method` (an `amr` value, e.g. "fed" for every third-party sign-in). */
    async revokeByMethod(userId: string, method: string, reason: string, tx: Database = db): Promise<number> {
      return ended(userId, await within(tx, async (t) => notify(t, await repo.revokeUserSessionsWithAmr(t, userId, method, clock.now(), reason))));
    },

    /** A session its tokens may be used with now (live, unexpired, its user enabled), or null. */
    async live(sessionId: string, tx: Database = db): Promise<repo.SessionWithUser | null> {
      const s = await repo.findSessionWithUser(tx, sessionId);
      return s && isLive(s) ? s : null;
    },

    /** Ends a browser session and every client session opened under it (single sign-on logout); the sessions ended. */
    async endFamily(parentSessionId: string, reason: string, tx: Database = db): Promise<string[]> {
      const rows = await within(tx, async (t) => {
        const ended = await repo.revokeSessionFamily(t, parentSessionId, clock.now(), reason);
        await notify(t, ended);
        return ended;
      });
      for (const userId of new Set(rows.map((r) => r.userId))) cache.invalidateUser(userId);
      return rows.map((r) => r.sessionId);
    },

    /** A new browser session of the same user replaces `from`: its client sessions move under `to`, and `from` ends. */
    async replaceParent(from: string, to: string, userId: string, tx: Database = db): Promise<void> {
      await within(tx, async (t) => {
        await repo.reparentSessions(t, from, to);
        const ended = await repo.revokeSession(t, from, clock.now(), 'replaced', userId);
        await notify(t, ended ? [ended] : []);
      });
      cache.invalidateUser(userId);
    },

    /** Ends the user's sessions of one client (the user withdrew its consent); how many. */
    async revokeUserClient(userId: string, clientId: string, reason: string, tx: Database = db): Promise<number> {
      return ended(userId, await within(tx, async (t) => notify(t, await repo.revokeUserClientSessions(t, userId, clientId, clock.now(), reason))));
    },

    /** Ends one session by its id (an authorization code came back: what it opened ends); false when it was not live. */
    async revokeById(sessionId: string, reason: string, tx: Database = db): Promise<boolean> {
      const endedSession = await within(tx, async (t) => {
        const e = await repo.revokeSession(t, sessionId, clock.now(), reason);
        await notify(t, e ? [e] : []);
        return e;
      });
      if (!endedSession) return false;
      cache.invalidateUser(endedSession.userId);
      return true;
    },

    /** Every instance forgets the user's cached sessions: for changes outside this service (an account deleted). */
    forgetUser(userId: string): void {
      cache.invalidateUser(userId);
    },

    async list(userId: string): Promise<SessionRow[]> {
      return repo.listLiveSessions(db, userId, clock.now());
    },

    async revokeOwn(userId: string, sessionId: string, meta?: ClientMeta): Promise<void> {
      if (!(await endSession(userId, sessionId, 'session_revoked', meta))) throw new AppError('session_not_found');
    },
  };
}
