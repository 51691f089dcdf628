import type { Logger } from 'pino';
import type { Clock } from '../../infra/clock.js';
import type { Database } from '../../infra/db/client.js';
import { describeMailError, isPermanentMailError, type Mailer, type OutgoingMail } from './transport.js';
import type { OutboxRow } from './tables.js';
import * as repo from './outbox-repo.js';

export type DeliveryOutcome =
  | { kind: 'sent' }
  /** Failed this time; tried again after `retryAt`. */
  | { kind: 'retry'; error: string; retryAt: Date }
  /** Given up: the row is `failed` with its last error (`tessera outbox retry` re-queues it). */
  | { kind: 'failed'; error: string }
  /** Another sender holds the row until `until`. */
  | { kind: 'busy'; until: Date }
  /** Nothing to do: already sent, failed, or gone. */
  | { kind: 'skipped' };

/**
 * How an outbox row of a kind other than email leaves (a back-channel logout notice: an HTTP POST).
 * Resolves to a reference recorded like a Message-ID; throws to be retried, or an error with
 * `permanent: true` to give up at once.
 */
export type NoticeSender = (row: OutboxRow) => Promise<string>;

/** Whether a failed notice should not be tried again (its sender said so). */
const isPermanentNotice = (err: unknown) => (err as { permanent?: unknown } | null)?.permanent === true;

export interface DeliveryOptions {
  db: Database;
  clock: Clock;
  mailer: Mailer;
  compose: (row: OutboxRow) => OutgoingMail;
  /** Senders of the outbox's other kinds, by kind; every other row is an email. */
  notices?: Readonly<Record<string, NoticeSender>>;
  maxAttempts: number;
  /** First retry delay; doubles each attempt (the same curve as BullMQ's exponential backoff). */
  retryDelayMs: number;
  /** How long a claim lasts: longer than any send can take, so a live sender is never doubled. */
  leaseMs: number;
  logger: Pick<Logger, 'info' | 'warn' | 'error'>;
}

/** One line about a failed notice: its message (the sender keeps response bodies out of it). */
const describeNoticeError = (err: unknown) => {
  const e = err as { name?: string; code?: string; cause?: { code?: string }; message?: string } | null;
  const code = e?.cause?.code ?? e?.code ?? (e?.name === 'TimeoutError' ? 'timeout' : undefined);
  return `${code ? `${code}: ` : ''}${(e?.message ?? String(err)).slice(0, 300)}`;
};

export const backoffMs = (retryDelayMs: number, attempt: number) => retryDelayMs * 2 ** Math.max(0, attempt - 1);

/**
 * Sends one outbox row, at most once. A claim (an atomic UPDATE) makes the row
 * this sender's until the lease ends; only then is the message sent, and `sent`
 * is recorded right after SMTP accepts it. A duplicate job finds the row sent
 * or claimed and does nothing.
 */
export function createDelivery(opts: DeliveryOptions) {
  const { db, clock, logger } = opts;

  /**
   * The message is out: recording it must not be lost to a database blip, or the
   * row would be sent again when its claim runs out. Retried for a while.
   */
  async function recordSent(id: string, messageId: string): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        await repo.markSent(db, id, clock.now(), messageId);
        return;
      } catch (err) {
        if (attempt >= 6) throw err;
        logger.warn({ outboxId: id, err }, 'email sent but not yet recorded; retrying');
        await new Promise((resolve) => setTimeout(resolve, 250 * 2 ** attempt));
      }
    }
  }

  return async function deliver(id: string, retryAs: 'pending' | 'queued'): Promise<DeliveryOutcome> {
    const now = clock.now();
    const row = await repo.claim(db, id, now, new Date(now.getTime() + opts.leaseMs));
    if (!row) {
      const current = await repo.findMessage(db, id);
      if (current?.status === 'sending' && current.lockedUntil) return { kind: 'busy', until: current.lockedUntil };
      return { kind: 'skipped' };
    }

    // The kind dispatch: a notice has its own sender; everything else is an email (compose, then SMTP).
    const notice = opts.notices && Object.hasOwn(opts.notices, row.kind) ? opts.notices[row.kind] : undefined;
    let send: () => Promise<string>;
    if (notice) {
      send = () => notice(row);
    } else {
      let mail: OutgoingMail;
      try {
        mail = opts.compose(row);
      } catch (err) {
        const error = `cannot render: ${(err as Error).message}`;
        await repo.markFailed(db, id, error);
        logger.error({ outboxId: id, kind: row.kind, err }, 'email cannot be rendered; marked failed');
        return { kind: 'failed', error };
      }
      send = async () => {
        await opts.mailer.send(mail);
        return mail.messageId;
      };
    }
    const what = notice ? 'notice' : 'email';

    let reference: string;
    try {
      reference = await send();
    } catch (err) {
      const error = notice ? describeNoticeError(err) : describeMailError(err);
      if ((notice ? isPermanentNotice(err) : isPermanentMailError(err)) || row.attempts >= opts.maxAttempts) {
        await repo.markFailed(db, id, error);
        logger.error({ outboxId: id, kind: row.kind, attempts: row.attempts, error }, `${what} failed for good; \`tessera outbox retry\` re-queues it`);
        return { kind: 'failed', error };
      }
      const retryAt = new Date(clock.now().getTime() + backoffMs(opts.retryDelayMs, row.attempts));
      await repo.markRetry(db, id, retryAs, retryAt, error);
      logger.warn({ outboxId: id, kind: row.kind, attempts: row.attempts, error, retryAt }, `${what} not sent; will retry`);
      return { kind: 'retry', error, retryAt };
    }

    await recordSent(id, reference);
    logger.info({ outboxId: id, kind: row.kind, attempts: row.attempts }, `${what} sent`);
    return { kind: 'sent' };
  };
}

export type Deliver = ReturnType<typeof createDelivery>;
