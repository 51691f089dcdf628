import { AppError } from '../../errors.js';
import type { Clock } from '../../infra/clock.js';
import type { Database } from '../../infra/db/client.js';
import { newOpaqueToken, sha256Hex } from '../../infra/opaque-token.js';
import * as repo from './repo.js';
import type { EmailTokenPurpose, EmailTokenRow } from './tables.js';

/** 256 random bits, base64url: 43 characters. */
const TOKEN_PATTERN = /^[A-Za-z0-9_-]{43}$/;

export type EmailTokenService = ReturnType<typeof createEmailTokenService>;

export function createEmailTokenService(deps: { db: Database; clock: Clock }) {
  const { db, clock } = deps;

  /** The token row if `token` is live for one of `purposes`; a clear, stable error otherwise. */
  async function check(token: string, purposes: readonly EmailTokenPurpose[], tx: Database): Promise<EmailTokenRow> {
    const row = TOKEN_PATTERN.test(token) ? await repo.findByHash(tx, sha256Hex(token)) : null;
    // A token for another purpose is as good as unknown: it says nothing about what it was for.
    if (!row || !purposes.includes(row.purpose)) throw new AppError('email_token_invalid');
    if (row.consumedAt) throw new AppError('email_token_used');
    if (row.expiresAt <= clock.now()) throw new AppError('email_token_expired');
    return row;
  }

  return {
    /**
     * Creates a token inside the caller's transaction and returns it (the only
     * time it exists in clear). `replace` consumes older tokens of the purpose.
     */
    async issue(tx: Database, t: { userId: string; purpose: EmailTokenPurpose; email: string; ttlSeconds: number; replace: boolean }): Promise<string> {
      const now = clock.now();
      if (t.replace) await repo.consumeAllOfPurpose(tx, t.userId, t.purpose, now);
      const token = newOpaqueToken();
      await repo.insertToken(tx, {
        userId: t.userId,
        purpose: t.purpose,
        tokenHash: sha256Hex(token),
        email: t.email,
        now,
        expiresAt: new Date(now.getTime() + t.ttlSeconds * 1000),
      });
      return token;
    },

    /** Checks a token without using it (the reset form shows an error page up front). */
    peek: (token: string, purposes: readonly EmailTokenPurpose[]) => check(token, purposes, db),

    /** Checks and uses a token inside the caller's transaction; exactly one concurrent caller wins. */
    async consume(tx: Database, token: string, purposes: readonly EmailTokenPurpose[]): Promise<EmailTokenRow> {
      const row = await check(token, purposes, tx);
      if (!(await repo.consumeToken(tx, row.id, clock.now()))) throw new AppError('email_token_used');
      return row;
    },

    /** Consumes every live token of a purpose (e.g. pending reset links once the password changed). */
    revokeAll: (tx: Database, userId: string, purpose: EmailTokenPurpose) => repo.consumeAllOfPurpose(tx, userId, purpose, clock.now()),

    /**
     * Consumes every live token of the user, whatever its purpose (reset, confirmation,
     * email change): after a reset, a password change or "sign out everywhere", a link
     * mailed before it (perhaps asked for by whoever had the old password) is void.
     */
    revokeAllOfUser: (tx: Database, userId: string) => repo.consumeAllOfUser(tx, userId, clock.now()),
  };
}
