import type { Database } from '../../infra/db/client.js';
import type { OutboxService } from '../mail/index.js';
import type { EndedSession } from '../sessions/service.js';

export interface BackchannelLogoutDeps {
  /** The registered back-channel logout URIs of those clients that have one (clients feature). */
  urisOf: (tx: Database, clientIds: string[]) => Promise<Map<string, string>>;
  outbox: Pick<OutboxService, 'addLogoutNotice'>;
}

export type BackchannelLogout = ReturnType<typeof createBackchannelLogout>;

/**
 * OpenID Connect Back-Channel Logout 1.0: every session that ends, bound to a client that
 * registered a `backchannel_logout_uri`, gets one outbox notice, written in the transaction
 * that ends it (the sessions service calls `sessionsEnded` whatever the cause). Delivery —
 * the signed logout token, the POST, retries — is the outbox's (post-notice.ts).
 */
export function createBackchannelLogout(deps: BackchannelLogoutDeps) {
  return {
    async sessionsEnded(tx: Database, ended: EndedSession[]): Promise<void> {
      const clientIds = [...new Set(ended.map((e) => e.clientId).filter((id): id is string => id !== null))];
      if (clientIds.length === 0) return;
      const uris = await deps.urisOf(tx, clientIds);
      for (const e of ended) {
        const uri = e.clientId === null ? undefined : uris.get(e.clientId);
        if (uri && e.clientId) await deps.outbox.addLogoutNotice(tx, { uri, clientId: e.clientId, sub: e.userId, sid: e.sessionId });
      }
    },
  };
}
