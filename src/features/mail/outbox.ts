import type { Clock } from '../../infra/clock.js';
import type { Database } from '../../infra/db/client.js';
import type { SecretBox } from '../../infra/secret-box.js';
import type { EmailKind } from './templates.js';
import * as repo from './outbox-repo.js';
import type { OutboxStatus } from './tables.js';

export interface OutboxMessage {
  kind: EmailKind;
  to: string;
  /** Template variables; never a secret (they stay readable in the database). */
  vars: Record<string, string>;
  /** The link token: kept encrypted until the message is sent, then erased. */
  secret?: string;
}

/**
 * A back-channel logout notice (OpenID Connect Back-Channel Logout 1.0): the outbox's one kind
 * that is not an email. Its row's recipient is the client's `backchannel_logout_uri`; the
 * logout token is signed when it is delivered (features/backchannel), so nothing secret is stored.
 */
export interface LogoutNotice {
  uri: string;
  clientId: string;
  sub: string;
  sid: string;
}

export const BACKCHANNEL_LOGOUT_KIND = 'backchannel_logout';

export interface SendCaps {
  /** Minimum seconds between two messages of this kind to one address. */
  intervalSeconds: number;
  hourlyLimit: number;
}

/** How long a message may be on its way before /metrics counts it as backlog. */
export const BACKLOG_GRACE_MS = 60_000;

export type OutboxService = ReturnType<typeof createOutboxService>;

export function createOutboxService(deps: { db: Database; clock: Clock; box: SecretBox }) {
  const { clock, box } = deps;
  const listeners = new Set<() => void>();

  return {
    /** Writes a message in the caller's transaction: it is sent if and only if that transaction commits. */
    async add(tx: Database, m: OutboxMessage): Promise<string> {
      return repo.insertMessage(tx, { kind: m.kind, recipient: m.to, payload: m.vars, sealedSecret: m.secret ? box.seal(m.secret) : null, now: clock.now() });
    },

    /** Writes a back-channel logout notice in the caller's transaction: delivered if and only if it commits. */
    async addLogoutNotice(tx: Database, n: LogoutNotice): Promise<string> {
      return repo.insertMessage(tx, {
        kind: BACKCHANNEL_LOGOUT_KIND,
        recipient: n.uri,
        payload: { client_id: n.clientId, sub: n.sub, sid: n.sid },
        sealedSecret: null,
        now: clock.now(),
      });
    },

    /**
     * Whether one more message of `kind` may go to `to` now (resend and forgot
     * caps). Serialises concurrent requests for one address; call it inside the
     * transaction that writes the message.
     */
    async allowed(tx: Database, to: string, kind: EmailKind, caps: SendCaps): Promise<boolean> {
      await repo.lockRecipient(tx, to);
      const now = clock.now().getTime();
      const recent = await repo.recentTo(tx, to, kind, new Date(now - 3600_000));
      if (recent.count >= caps.hourlyLimit) return false;
      return !recent.latest || recent.latest.getTime() <= now - caps.intervalSeconds * 1000;
    },

    /** Call after the transaction commits: the sender looks at once instead of at its next poll. */
    committed(): void {
      for (const listener of listeners) listener();
    },

    onCommitted(listener: () => void): void {
      listeners.add(listener);
    },

    /**
     * What /metrics shows of the outbox: messages still unsent a minute after they
     * were written, and failed ones. A message on its way (seconds) is left out, so a
     * forgot-password to a known address moves nothing a scrape can see (docs/security.md).
     */
    backlog: () => repo.backlog(deps.db, new Date(clock.now().getTime() - BACKLOG_GRACE_MS)),

    /** `tessera outbox status`: messages by status, the oldest unsent one, and the first `limit` failed ones. */
    async status(limit: number) {
      return { counts: await repo.countByStatus(deps.db), failed: await repo.listFailed(deps.db, limit) };
    },

    /**
     * `tessera outbox retry`: re-queues failed messages (all, or those of `ids`) with a fresh attempt
     * budget. An id that does not exist re-queues nothing at all (`unknown`): a script must not read a
     * typo as done. Messages that are not failed are left as they are (`notFailed`).
     */
    async retryFailed(ids?: string[]): Promise<{ requeued: number; unknown: string[]; notFailed: Array<[string, OutboxStatus]> }> {
      return deps.db.transaction(async (tx) => {
        const statuses = ids ? await repo.statusesOf(tx, ids) : new Map<string, OutboxStatus>();
        const unknown = ids?.filter((id) => !statuses.has(id)) ?? [];
        if (unknown.length) return { requeued: 0, unknown, notFailed: [] };
        const notFailed = [...statuses].filter(([, status]) => status !== 'failed');
        return { requeued: await repo.requeueFailed(tx, clock.now(), ids), unknown, notFailed };
      });
    },
  };
}
