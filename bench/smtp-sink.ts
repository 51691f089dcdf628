import { SMTPServer, type SMTPServerDataStream, type SMTPServerSession } from 'smtp-server';

/**
 * A local SMTP server that accepts everything and records when each recipient's
 * message arrived. It does not parse messages: the bench measures Tessera, not a parser.
 */
export interface SmtpSink {
  port: number;
  count(): number;
  /** Arrival time (ms since epoch) of the first message to `to`, once it came. */
  arrival(to: string): Promise<number>;
  close(): Promise<void>;
}

export async function startSmtpSink(port: number): Promise<SmtpSink> {
  const arrivals = new Map<string, number>();
  const waiters = new Map<string, (at: number) => void>();
  let count = 0;
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    logger: false,
    size: 1024 * 1024,
    onData(stream: SMTPServerDataStream, session: SMTPServerSession, callback: (err?: Error | null) => void) {
      stream.on('data', () => {});
      stream.on('end', () => {
        const at = Date.now();
        count++;
        for (const rcpt of session.envelope.rcptTo) {
          arrivals.set(rcpt.address, at);
          waiters.get(rcpt.address)?.(at);
          waiters.delete(rcpt.address);
        }
        callback();
      });
    },
  });
  server.on('error', () => {});
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  return {
    port,
    count: () => count,
    arrival: (to) => {
      const at = arrivals.get(to);
      if (at !== undefined) return Promise.resolve(at);
      return new Promise((resolve) => waiters.set(to, resolve));
    },
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
