/** Mail: the SMTP server, the sender, templates, the links and lifetimes of emailed tokens, and delivery retries. */
import path from 'node:path';
import type { Reader } from './reader.js';

export interface SmtpConfig {
  host: string;
  port: number;
  /** TLS from the first byte (port 465); otherwise STARTTLS when the server offers it. */
  secure: boolean;
  username: string | null;
  password: string | null;
  /** Bounds each SMTP step (connect, greeting, idle socket). */
  timeoutMs: number;
}

export interface EmailConfig {
  /** null = write messages to DATA_DIR/mail (development only). */
  smtp: SmtpConfig | null;
  from: string;
  templatesDir: string | null;
  confirmTtlSeconds: number;
  passwordResetTtlSeconds: number;
  emailConfirmedRedirectUrl: string | null;
  passwordResetUrl: string | null;
  /** Minimum time between two resend/forgot mails to one address. */
  resendIntervalSeconds: number;
  /** At most this many resend/forgot mails of one kind per address per hour. */
  hourlyLimit: number;
  maxAttempts: number;
  retryDelayMs: number;
  workerConcurrency: number;
  pollIntervalMs: number;
}

/** `publicUrl`: its host names the default sender (`no-reply@host`). */
export function emailConfig(r: Reader, publicUrl: string): EmailConfig {
  return {
    smtp: smtpConfig(r),
    from: r.string('SMTP_FROM', `${r.string('APP_NAME', 'Tessera')} <no-reply@${new URL(publicUrl || 'http://localhost').hostname}>`),
    templatesDir: r.raw('EMAIL_TEMPLATES_DIR') ? path.resolve(r.string('EMAIL_TEMPLATES_DIR', '')) : null,
    confirmTtlSeconds: r.duration('EMAIL_CONFIRM_TTL', 24 * 3600, 60, 30 * 86400),
    passwordResetTtlSeconds: r.duration('PASSWORD_RESET_TTL', 30 * 60, 60, 7 * 86400),
    emailConfirmedRedirectUrl: r.url('EMAIL_CONFIRMED_REDIRECT_URL', null, ['http:', 'https:']),
    passwordResetUrl: r.url('PASSWORD_RESET_URL', null, ['http:', 'https:']),
    resendIntervalSeconds: r.duration('EMAIL_RESEND_INTERVAL', 60, 0, 86400),
    hourlyLimit: r.int('EMAIL_HOURLY_LIMIT', 5, 1, 1000),
    maxAttempts: r.int('EMAIL_MAX_ATTEMPTS', 8, 1, 50),
    retryDelayMs: r.int('EMAIL_RETRY_DELAY_MS', 5000, 10, 3600000),
    workerConcurrency: r.int('WORKER_CONCURRENCY', 5, 1, 256),
    pollIntervalMs: r.int('OUTBOX_POLL_INTERVAL_MS', 1000, 10, 60000),
  };
}

function smtpConfig(r: Reader): SmtpConfig | null {
  const host = r.raw('SMTP_SERVER');
  if (!host) return null;
  const port = r.int('SMTP_PORT', 587, 1, 65535);
  return {
    host,
    port,
    secure: r.bool('SMTP_SECURE', port === 465),
    username: r.raw('SMTP_USERNAME') ?? null,
    password: r.raw('SMTP_PASSWORD') ?? null,
    timeoutMs: r.int('SMTP_TIMEOUT_MS', 20000, 100, 300000),
  };
}
