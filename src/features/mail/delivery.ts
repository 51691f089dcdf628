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

export interface DeliveryOptions {
  db: Database;
  clock: Clock;
  mailer: Mailer;
  compose: (row: OutboxRow) => OutgoingMail;
  maxAttempts: number;
  /** First retry delay; doubles each attempt (the same curve as BullMQ's exponential backoff). */
  retryDelayMs: number;
  /** How long a claim lasts: longer than any send can take, so a live sender is never doubled. */
  leaseMs: number;
  logger: Pick<Logger, 'info' | 'warn' | 'error'>;
}

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

    let mail: OutgoingMail;
    try {
      mail = opts.compose(row);
    } catch (err) {
      const error = `cannot render: ${(err as Error).message}`;
      await repo.markFailed(db, id, error);
      logger.error({ outboxId: id, kind: row.kind, err }, 'email cannot be rendered; marked failed');
      return { kind: 'failed', error };
    }

    try {
      await opts.mailer.send(mail);
    } catch (err) {
      const error = describeMailError(err);
      if (isPermanentMailError(err) || row.attempts >= opts.maxAttempts) {
        await repo.markFailed(db, id, error);
        logger.error({ outboxId: id, kind: row.kind, attempts: row.attempts, error }, 'email failed for good; `tessera outbox retry` re-queues it');
        return { kind: 'failed', error };
      }
      const retryAt = new Date(clock.now().getTime() + backoffMs(opts.retryDelayMs, row.attempts));
      await repo.markRetry(db, id, retryAs, retryAt, error);
      logger.warn({ outboxId: id, kind: row.kind, attempts: row.attempts, error, retryAt }, 'email not sent; will retry');
      return { kind: 'retry', error, retryAt };
    }

    await recordSent(id, mail.messageId);
    logger.info({ outboxId: id, kind: row.kind, attempts: row.attempts }, 'email sent');
    return { kind: 'sent' };
  };
}

export type Deliver = ReturnType<typeof createDelivery>;
