import type { Clock } from '../../infra/clock.js';
import type { KeyRing } from '../../infra/keys.js';
import { BACKCHANNEL_LOGOUT_KIND, type NoticeSender, type OutboxRow } from '../mail/index.js';
import { createLogoutTokenSigner } from './logout-token.js';

/** How long a client's back-channel logout endpoint gets to answer. */
export const BACKCHANNEL_TIMEOUT_MS = 5000;

/** A refusal of the client's endpoint; `permanent` ones are not tried again (the outbox marks them failed). */
export class NoticeRefused extends Error {
  override name = 'NoticeRefused';
  constructor(
    message: string,
    readonly permanent: boolean,
  ) {
    super(message);
  }
}

/** RFC 9110: 4xx is the client's last word, except 408 (Request Timeout) and 429 (Too Many Requests). */
const isFinal = (status: number) => status >= 400 && status < 500 && status !== 408 && status !== 429;

export interface BackchannelNoticeOptions {
  keys: KeyRing;
  clock: Clock;
  issuer: string;
  timeoutMs?: number;
  /** The fetch to use (tests); the global one otherwise. */
  fetch?: typeof fetch;
}

/**
 * Delivers a back-channel logout notice (OpenID Connect Back-Channel Logout 1.0 §2.5): POSTs
 * `logout_token=<JWT>` form-encoded to the client's URI. Bounded: a timeout, no redirect followed,
 * and the response body never read (a 2xx is success; the status is all that counts). Failures
 * throw: the outbox retries them with its back-off, and gives up at once on a final 4xx.
 */
export function createBackchannelNoticeSender(opts: BackchannelNoticeOptions): NoticeSender {
  const sign = createLogoutTokenSigner(opts.keys, opts.clock, opts.issuer);
  const doFetch = opts.fetch ?? fetch;
  return async (row: OutboxRow) => {
    const { client_id: clientId, sub, sid } = row.payload;
    if (!clientId || !sub || !sid) throw new NoticeRefused('the notice lacks client_id, sub or sid', true);
    const token = await sign({ clientId, sub, sid });
    const res = await doFetch(row.recipient, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
      body: new URLSearchParams({ logout_token: token }).toString(),
      redirect: 'manual',
      signal: AbortSignal.timeout(opts.timeoutMs ?? BACKCHANNEL_TIMEOUT_MS),
    });
    // The body is not read: drop it (and the connection's pending bytes).
    await res.body?.cancel().catch(() => undefined);
    if (res.status >= 200 && res.status < 300) return `HTTP ${res.status}`;
    throw new NoticeRefused(`HTTP ${res.status} from the back-channel logout URI`, isFinal(res.status));
  };
}

/** The outbox's notice senders, by kind (for the delivery of the server and of the worker). */
export function backchannelNotices(opts: BackchannelNoticeOptions): Readonly<Record<string, NoticeSender>> {
  return { [BACKCHANNEL_LOGOUT_KIND]: createBackchannelNoticeSender(opts) };
}
