import { sql } from 'drizzle-orm';
import { index, integer, jsonb, pgTable, text, timestamp, uuid } from 'drizzle-orm/pg-core';

/**
 * Every email starts as a row here, written in the transaction of the change
 * that causes it. status: pending (waiting for the relay or the in-process
 * sender, not before `available_at`) → queued (a BullMQ job exists) → sending
 * (claimed until `locked_until`) → sent | failed. A row is sent at most once:
 * only a claim moves it to `sending`, and nothing leaves `sent`.
 */
export const outbox = pgTable(
  'outbox',
  {
    id: uuid('id')
      .primaryKey()
      .default(sql`gen_random_uuid()`),
    /** The template (confirm_email, password_reset, …), or `backchannel_logout`: a notice POSTed to a client (recipient = its URI). */
    kind: text('kind').notNull(),
    recipient: text('recipient').notNull(),
    /** Template variables (never a secret). */
    payload: jsonb('payload').$type<Record<string, string>>().notNull(),
    /** The link token, encrypted (see secret-box.ts); erased once the message is sent. */
    sealedSecret: text('sealed_secret'),
    status: text('status').$type<OutboxStatus>().notNull().default('pending'),
    attempts: integer('attempts').notNull().default(0),
    lastError: text('last_error'),
    availableAt: timestamp('available_at', { withTimezone: true }).notNull(),
    lockedUntil: timestamp('locked_until', { withTimezone: true }),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull(),
    queuedAt: timestamp('queued_at', { withTimezone: true }),
    sentAt: timestamp('sent_at', { withTimezone: true }),
    /** The Message-ID the SMTP server accepted. */
    messageId: text('message_id'),
  },
  (t) => [
    index('outbox_due_idx')
      .on(t.availableAt)
      .where(sql`status = 'pending'`),
    index('outbox_queued_idx')
      .on(t.queuedAt)
      .where(sql`status in ('queued', 'sending')`),
    index('outbox_recipient_idx').on(t.recipient, t.kind, t.createdAt),
  ],
);

export type OutboxStatus = 'pending' | 'queued' | 'sending' | 'sent' | 'failed';
export type OutboxRow = typeof outbox.$inferSelect;
