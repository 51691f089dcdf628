/**
 * The mail subsystem: everything an email goes through, one file per step, in
 * the order a message travels (README, "How a message travels"):
 *
 *   outbox.ts        a feature writes a message in its own transaction (the service below)
 *   outbox-repo.ts   the outbox queries; tables.ts the `outbox` table
 *   sender.ts        what the API server does with the outbox: relay to Redis, or drain it itself
 *   setup.ts         builds the relay, the delivery and the transport from the config
 *   relay.ts         outbox rows → BullMQ jobs (queue.ts: the `email` queue over infra/queue.ts)
 *   job-handler.ts   what `npm run worker` runs for each job (src/worker-process.ts runs the process)
 *   drainer.ts       the no-Redis path: the server delivers due rows itself
 *   delivery.ts      claims a row, composes it, sends it once, records the outcome (rows of another
 *                    kind — back-channel logout notices — go to their own sender instead)
 *   compose.ts       row → message (link from the sealed token); templates.ts the templates
 *   transport.ts     nodemailer: SMTP, or .eml files in development
 *   purge.ts         deletes sent rows after a week
 *
 * Other features import from this file only: the outbox service and its types.
 */
export {
  BACKCHANNEL_LOGOUT_KIND,
  BACKLOG_GRACE_MS,
  createOutboxService,
  type LogoutNotice,
  type OutboxMessage,
  type OutboxService,
  type SendCaps,
} from './outbox.js';
export type { NoticeSender } from './delivery.js';
export type { OutboxRow, OutboxStatus } from './tables.js';
export { EMAIL_KINDS, TemplateError, type EmailKind } from './templates.js';
export { signInSecret } from './compose.js';
export { createEmailSender, type EmailSender } from './sender.js';
export { startMailWorker, type MailWorker } from './job-handler.js';
