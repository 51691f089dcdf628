import type { Logger } from 'pino';
import { describeServiceFailure } from './service-failure.js';

/** One connection's view of an outside service: it failed, or it is ready. */
export interface OutageReporter {
  down(err: unknown): void;
  up(): void;
}

export interface OutageNotice {
  /** A reporter for one more connection to the same service. */
  connection(): OutageReporter;
}

/**
 * One warning when an outside service (Redis, SMTP) stops answering, naming where
 * it was looked for, the setting, the cause and what still works; one line when it
 * answers again. However many connections a process holds to it and however often
 * they retry, an outage is two lines, not one per attempt.
 */
export function createOutageNotice(opts: {
  /** "Redis at redis://host:6379/0 (REDIS_URL)": never a password. */
  what: string;
  /** "rate limits use this process's counters; email waits in the outbox". */
  stillWorks: string;
  logger: Pick<Logger, 'warn' | 'info'>;
  /** How long to collect errors before saying the most specific one (500 ms). */
  settleMs?: number;
}): OutageNotice {
  const failing = new Set<object>();
  let reported = false;
  let pending: { err: unknown; timer: NodeJS.Timeout } | null = null;
  // A connection timer can fire before the socket's own error while a process is busy starting:
  // a short wait lets the specific cause (refused, DNS, login) win over "timed out".
  const report = () => {
    if (!pending) return;
    const { err } = pending;
    pending = null;
    reported = true;
    opts.logger.warn(`cannot reach ${opts.what}: ${describeServiceFailure(err)}${opts.stillWorks ? ` (until it answers, ${opts.stillWorks})` : ''}`);
  };
  return {
    connection() {
      const self = {};
      return {
        down(err) {
          failing.add(self);
          if (reported) return;
          if (!pending) pending = { err, timer: setTimeout(report, opts.settleMs ?? 500).unref() };
          else if (isTimeout(pending.err) && !isTimeout(err)) pending.err = err;
        },
        up() {
          failing.delete(self);
          if (failing.size > 0) return;
          if (pending) {
            clearTimeout(pending.timer);
            pending = null;
          }
          if (!reported) return;
          reported = false;
          opts.logger.info(`${opts.what} answers again`);
        },
      };
    },
  };
}

const isTimeout = (err: unknown) => /timed out|timeout|ETIMEDOUT/i.test(describeServiceFailure(err));

/** Redis as a log line names it: the URL without its password, and the setting it came from. */
export function redisOutageNotice(redis: { url: string; setting: string }, stillWorks: string, logger: Pick<Logger, 'warn' | 'info'>): OutageNotice {
  const { url, setting } = redis;
  return createOutageNotice({ what: `Redis at ${redactedServiceUrl(url)} (${setting})`, stillWorks, logger });
}

/** The SMTP server as a log line names it: host, port and the settings, never the password. */
export function smtpOutageNotice(smtp: { host: string; port: number; username: string | null }, logger: Pick<Logger, 'warn' | 'info'>): OutageNotice {
  const user = smtp.username ? ` as ${smtp.username}` : '';
  const settings = smtp.username ? 'SMTP_SERVER, SMTP_PORT, SMTP_USERNAME, SMTP_PASSWORD' : 'SMTP_SERVER, SMTP_PORT';
  return createOutageNotice({
    what: `the SMTP server ${smtp.host}:${smtp.port}${user} (${settings})`,
    stillWorks: 'email waits in the outbox and is retried',
    logger,
  });
}

/** A URL without its password or query, fit for a log line. */
export function redactedServiceUrl(url: string): string {
  try {
    const u = new URL(url);
    u.password = '';
    u.search = '';
    return u.toString();
  } catch {
    return '(an unparseable URL)';
  }
}
