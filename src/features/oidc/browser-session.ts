/**
 * The browser session of the hosted pages (single sign-on): a cookie holding 256 random bits,
 * stored as SHA-256, naming a Tessera session row of the implicit client (the one the hosted
 * sign-in opened). That row holds the sign-in time (`auth_time`) and methods (`amr`); ending it
 * (end-session, "sign out everywhere", revoking it at /users/me/sessions) ends the browser session.
 */
import type { Clock } from '../../infra/clock.js';
import type { Database } from '../../infra/db/client.js';
import { newOpaqueToken, sha256Hex } from '../../infra/opaque-token.js';
import type { SessionService } from '../sessions/service.js';
import * as repo from './repo.js';

export interface BrowserSession {
  /** The Tessera session row. */
  sessionId: string;
  userId: string;
  email: string;
  authTime: Date;
  amr: string[];
  secretHash: string;
}

const OPAQUE = /^[A-Za-z0-9_-]{43}$/;

export function createBrowserSessions(deps: { db: Database; clock: Clock; sessions: Pick<SessionService, 'live' | 'endFamily' | 'replaceParent'> }) {
  const { db, clock, sessions } = deps;
  return {
    /** The live browser session of this cookie value, or null. */
    async find(secret: string | null): Promise<BrowserSession | null> {
      if (!secret || !OPAQUE.test(secret)) return null;
      const secretHash = sha256Hex(secret);
      const row = await repo.findBrowserSession(db, secretHash);
      if (!row) return null;
      const s = await sessions.live(row.sessionId);
      if (!s || s.userId !== row.userId) return null;
      return { sessionId: s.sessionId, userId: s.userId, email: s.email, authTime: s.createdAt, amr: s.amr, secretHash };
    },

    /**
     * Makes `sessionId` (just signed in) this browser's session; returns the new cookie value.
     * The previous one of the same user hands its client sessions over and ends; another user's
     * ends with its client sessions (one account per browser).
     */
    async establish(sessionId: string, userId: string, previous: BrowserSession | null): Promise<string> {
      const secret = newOpaqueToken();
      await db.transaction(async (tx) => {
        if (previous && previous.sessionId !== sessionId) {
          if (previous.userId === userId) await sessions.replaceParent(previous.sessionId, sessionId, userId, tx);
          else await sessions.endFamily(previous.sessionId, 'signed_in_as_another_user', tx);
        }
        if (previous) await repo.deleteBrowserSession(tx, previous.secretHash);
        await repo.insertBrowserSession(tx, { secretHash: sha256Hex(secret), sessionId, userId, createdAt: clock.now() });
      });
      return secret;
    },

    /** Ends the browser session and every client session opened under it; the sessions ended. */
    async end(current: BrowserSession, reason: string, tx: Database): Promise<string[]> {
      await repo.deleteBrowserSession(tx, current.secretHash);
      return sessions.endFamily(current.sessionId, reason, tx);
    },
  };
}

export type BrowserSessions = ReturnType<typeof createBrowserSessions>;
