import { simpleParser, type ParsedMail } from 'mailparser';
import { SMTPServer, type SMTPServerDataStream, type SMTPServerSession } from 'smtp-server';
import { freePort } from './free-port.js';

export interface ReceivedMail {
  to: string;
  /** The SMTP envelope's recipients (RCPT TO): where the message was actually delivered. */
  rcptTo: string[];
  from: string;
  subject: string;
  text: string;
  html: string;
  messageId: string;
  raw: string;
  parsed: ParsedMail;
}

/** What to do with the next message: accept it, refuse it with an SMTP reply, or hold it (no reply) until released. */
export type Verdict = ({ accept: true } | { code: number; message: string } | { hold: true }) & {
  /** Applies to the next message to this address only (others pass it by); any message when absent. */
  to?: string;
};

/**
 * A real SMTP server for tests (smtp-server), listening on a free loopback port.
 * A message counts as delivered only when the server answered 250 on a socket
 * that was still open: what a real MTA would have accepted.
 */
export class SmtpCatcher {
  readonly received: ReceivedMail[] = [];
  /** Verdicts for the next messages, in order; when empty, messages are accepted. */
  readonly plan: Verdict[] = [];
  /** Sessions that delivered a DATA payload, whatever the verdict (attempts). */
  attempts = 0;
  private held: Array<{ release: () => void; session: SMTPServerSession }> = [];
  private waiters: Array<() => void> = [];
  private constructor(
    private readonly server: SMTPServer,
    readonly port: number,
  ) {}

  static async start(): Promise<SmtpCatcher> {
    const port = await freePort();
    let catcher: SmtpCatcher | null = null;
    const server = new SMTPServer({
      authOptional: true,
      disabledCommands: ['STARTTLS'],
      logger: false,
      onData(stream: SMTPServerDataStream, session: SMTPServerSession, callback: (err?: Error | null) => void) {
        const chunks: Buffer[] = [];
        stream.on('data', (c: Buffer) => chunks.push(c));
        stream.on('end', () => void catcher?.onMessage(Buffer.concat(chunks), session, callback));
      },
    });
    catcher = new SmtpCatcher(server, port);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
    server.on('error', () => {});
    return catcher;
  }

  private async onMessage(raw: Buffer, session: SMTPServerSession, callback: (err?: Error | null) => void) {
    this.attempts++;
    const recipients = session.envelope.rcptTo.map((r) => r.address);
    const at = this.plan.findIndex((v) => v.to === undefined || recipients.includes(v.to));
    const verdict = at < 0 ? { accept: true as const } : this.plan.splice(at, 1)[0]!;
    if ('code' in verdict) {
      const err = Object.assign(new Error(verdict.message), { responseCode: verdict.code });
      callback(err);
      this.notify();
      return;
    }
    const accept = async () => {
      const parsed = await simpleParser(raw);
      const to = Array.isArray(parsed.to) ? parsed.to[0] : parsed.to;
      this.received.push({
        to: to?.value[0]?.address ?? '',
        rcptTo: session.envelope.rcptTo.map((r) => r.address),
        from: parsed.from?.text ?? '',
        subject: parsed.subject ?? '',
        text: parsed.text ?? '',
        html: typeof parsed.html === 'string' ? parsed.html : '',
        messageId: parsed.messageId ?? '',
        raw: raw.toString('utf8'),
        parsed,
      });
      callback();
      this.notify();
    };
    if ('hold' in verdict) {
      this.held.push({ release: () => void accept(), session });
      this.notify();
      return;
    }
    await accept();
  }

  /** How many messages are held without an answer. */
  get heldCount(): number {
    return this.held.length;
  }

  /** Drops the held messages without accepting them (their client is gone). */
  dropHeld(): void {
    this.held = [];
  }

  private notify() {
    for (const w of this.waiters.splice(0)) w();
  }

  /** Resolves when `check()` holds, re-checked after each SMTP event (and every 50 ms). */
  async until(check: () => boolean, timeoutMs = 15_000, what = 'condition'): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!check()) {
      if (Date.now() > deadline) throw new Error(`SMTP catcher: timed out waiting for ${what} (received ${this.received.length}, attempts ${this.attempts})`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 50);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** Waits for a message to `to` (and matching `subject`), and returns it. */
  async waitFor(to: string, subject?: RegExp, timeoutMs?: number): Promise<ReceivedMail> {
    const find = () => this.received.find((m) => m.to === to && (!subject || subject.test(m.subject)));
    await this.until(() => find() !== undefined, timeoutMs, `a message to ${to}${subject ? ` matching ${subject}` : ''}`);
    return find() as ReceivedMail;
  }

  messagesTo(to: string): ReceivedMail[] {
    return this.received.filter((m) => m.to === to);
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** The first link in a message's text part. */
export function linkIn(mail: ReceivedMail): string {
  const m = /https?:\/\/\S+/.exec(mail.text);
  if (!m) throw new Error(`no link in "${mail.subject}"`);
  return m[0];
}

/** The token of the first link in a message. */
export const tokenIn = (mail: ReceivedMail): string => new URL(linkIn(mail)).searchParams.get('token') ?? '';
