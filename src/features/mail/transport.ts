import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import nodemailer from 'nodemailer';
import type { Logger } from 'pino';
import type { SmtpConfig } from '../../config/index.js';
import type { OutageReporter } from '../../infra/outage-notice.js';

export interface OutgoingMail {
  /** The outbox row: names the .eml file and makes the Message-ID stable across retries. */
  id: string;
  messageId: string;
  from: string;
  to: string;
  subject: string;
  text: string;
  html: string;
}

export interface Mailer {
  /** Resolves once the message is accepted (by the SMTP server, or written to disk). */
  send(mail: OutgoingMail): Promise<void>;
  /** Connects once and reports the outcome to the outage notice (at start: a wrong host or password is said at once). */
  check?(): Promise<void>;
  close(): void;
}

/** A failure that retrying will not fix (an SMTP 5xx reply: unknown mailbox, bad credentials, rejected sender). */
export function isPermanentMailError(err: unknown): boolean {
  const code = (err as { responseCode?: unknown } | null)?.responseCode;
  return typeof code === 'number' && code >= 500 && code < 600;
}

/** One line about a send failure, without the message or credentials. */
export function describeMailError(err: unknown): string {
  const e = err as { responseCode?: number; response?: string; code?: string; message?: string } | null;
  if (e?.responseCode) return `SMTP ${e.responseCode}: ${(e.response ?? '').slice(0, 300)}`;
  return `${e?.code ? `${e.code}: ` : ''}${(e?.message ?? String(err)).slice(0, 300)}`;
}

const message = (mail: OutgoingMail) => ({
  messageId: mail.messageId,
  from: mail.from,
  to: mail.to,
  subject: mail.subject,
  text: mail.text,
  html: mail.html,
});

/** The server is away or refuses us (connection, DNS, TLS, login), as opposed to refusing one message. */
function isOutage(err: unknown): boolean {
  const e = err as { responseCode?: unknown; code?: unknown } | null;
  return typeof e?.responseCode !== 'number' || e.code === 'EAUTH';
}

/**
 * nodemailer over SMTP; a small connection pool so a busy worker reuses connections.
 * With a notice, an unreachable server or a refused login is said once, and once when it works again.
 */
export function createSmtpMailer(smtp: SmtpConfig, maxConnections: number, notice?: OutageReporter): Mailer {
  const transport = nodemailer.createTransport({
    pool: true,
    maxConnections,
    maxMessages: 100,
    host: smtp.host,
    port: smtp.port,
    secure: smtp.secure,
    ...(smtp.username ? { auth: { user: smtp.username, pass: smtp.password ?? '' } } : {}),
    connectionTimeout: smtp.timeoutMs,
    greetingTimeout: smtp.timeoutMs,
    socketTimeout: smtp.timeoutMs,
  });
  return {
    async send(mail) {
      try {
        await transport.sendMail(message(mail));
      } catch (err) {
        if (isOutage(err)) notice?.down(err);
        throw err;
      }
      notice?.up();
    },
    async check() {
      try {
        await transport.verify();
        notice?.up();
      } catch (err) {
        notice?.down(err);
      }
    },
    close: () => transport.close(),
  };
}

/** Writes a file whole or not at all: a crash never leaves half a message behind. */
function writeWhole(file: string, content: string | Buffer) {
  writeFileSync(`${file}.tmp`, content);
  renameSync(`${file}.tmp`, file);
}

/**
 * Development without SMTP: each message becomes DATA_DIR/mail/<id>.eml (open it
 * with any mail client) and <id>.txt, its plain-text part as is (the .eml's parts
 * are quoted-printable: long links are wrapped and `=` is `=3D` there, so a person
 * copies links from the .txt); its links are logged too, so the flows can be clicked through.
 */
export function createFileMailer(dir: string, logger: Pick<Logger, 'info'>): Mailer {
  const transport = nodemailer.createTransport({ streamTransport: true, buffer: true, newline: 'unix' });
  return {
    async send(mail) {
      const info = await transport.sendMail(message(mail));
      mkdirSync(dir, { recursive: true });
      const file = path.join(dir, `${mail.id}.eml`);
      const textFile = path.join(dir, `${mail.id}.txt`);
      // The .txt first: once the .eml is there, both are.
      writeWhole(textFile, `To: ${mail.to}\nSubject: ${mail.subject}\n\n${mail.text}${mail.text.endsWith('\n') ? '' : '\n'}`);
      writeWhole(file, info.message as Buffer);
      const links = mail.text.match(/https?:\/\/\S+/g) ?? [];
      logger.info({ to: mail.to, subject: mail.subject, file, text: textFile, links }, 'email written to a file (SMTP_SERVER is not set)');
    },
    close: () => transport.close(),
  };
}
