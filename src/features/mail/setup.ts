import path from 'node:path';
import type { Logger } from 'pino';
import type { Config } from '../../config/index.js';
import type { Clock } from '../../infra/clock.js';
import type { Database } from '../../infra/db/client.js';
import type { KeyRing } from '../../infra/keys.js';
import { smtpOutageNotice, type OutageReporter } from '../../infra/outage-notice.js';
import { createFileMailer, createSmtpMailer, type Mailer } from './transport.js';
import { createSecretBox } from '../../infra/secret-box.js';
import type { Poller } from '../../infra/poller.js';
import { createEmailQueue, type EmailQueue } from './queue.js';
import { createDelivery, type Deliver, type NoticeSender } from './delivery.js';
import { createRelay } from './relay.js';
import { createComposer } from './compose.js';
import { loadTemplates } from './templates.js';

/** SMTP when SMTP_SERVER is set; otherwise .eml files in DATA_DIR/mail (refused in production by the config). */
export function createConfiguredMailer(config: Config, logger: Pick<Logger, 'info' | 'warn'>): Mailer {
  return config.email.smtp
    ? createSmtpMailer(config.email.smtp, config.email.workerConcurrency, smtpOutageNotice(config.email.smtp, logger).connection())
    : createFileMailer(path.join(config.dataDir, 'mail'), logger);
}

/**
 * How long a sender owns a row it claimed: three SMTP timeouts (connect,
 * greeting, the exchange). A claim outliving its sender delays a retry; one
 * shorter than a real send would let a second sender in.
 */
export function claimLeaseMs(config: Config): number {
  return config.email.smtp ? config.email.smtp.timeoutMs * 3 : 60_000;
}

/** The one way a message leaves the outbox, for the in-process sender and the worker alike. */
export function createConfiguredDelivery(
  config: Config,
  deps: {
    db: Database;
    clock: Clock;
    keys: KeyRing;
    mailer: Mailer;
    logger: Pick<Logger, 'info' | 'warn' | 'error'>;
    /** The senders of the outbox's other kinds (back-channel logout notices). */
    notices?: Readonly<Record<string, NoticeSender>>;
  },
): Deliver {
  const compose = createComposer({
    templates: loadTemplates(config.email.templatesDir),
    box: createSecretBox(deps.keys),
    publicUrl: config.publicUrl,
    appName: config.appName,
    from: config.email.from,
  });
  return createDelivery({
    db: deps.db,
    clock: deps.clock,
    mailer: deps.mailer,
    compose,
    ...(deps.notices ? { notices: deps.notices } : {}),
    maxAttempts: config.email.maxAttempts,
    retryDelayMs: config.email.retryDelayMs,
    leaseMs: claimLeaseMs(config),
    logger: deps.logger,
  });
}

/** The relay from the outbox to the BullMQ queue (REDIS_URL), with the queue it owns. */
export function createConfiguredRelay(
  config: Config & { redisUrl: string },
  deps: { db: Database; clock: Clock; logger: Pick<Logger, 'info' | 'warn'>; redisNotice?: OutageReporter },
): { relay: Poller; queue: EmailQueue; close: () => Promise<void> } {
  // BullMQ's attempts leave room for a stalled job; the outbox row decides when a message has failed.
  const queue = createEmailQueue({
    redisUrl: config.redisUrl,
    attempts: config.email.maxAttempts + 2,
    retryDelayMs: config.email.retryDelayMs,
    reconnectMaxDelayMs: config.redisReconnectMaxDelayMs,
    logger: deps.logger,
    ...(deps.redisNotice ? { notice: deps.redisNotice } : {}),
  });
  const relay = createRelay({
    db: deps.db,
    clock: deps.clock,
    queue,
    pollIntervalMs: config.email.pollIntervalMs,
    staleAfterMs: Math.max(120_000, claimLeaseMs(config) * 2),
    logger: deps.logger,
  });
  return { relay, queue, close: () => queue.close() };
}
