import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { simpleParser } from 'mailparser';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { humanDuration } from '../../src/features/accounts/account-mail.js';
import { backoffMs } from '../../src/features/mail/delivery.js';
import { createFileMailer, describeMailError, isPermanentMailError, type OutgoingMail } from '../../src/features/mail/transport.js';
import { createPoller, type Poller } from '../../src/infra/poller.js';

/** Resolves once `cond()` holds; fails after `timeoutMs`. */
async function waitFor(cond: () => boolean, timeoutMs = 1000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(2);
  }
}

describe('humanDuration', () => {
  it.each([
    [86400, '24 hours'],
    [1800, '30 minutes'],
    [60, '1 minute'],
    [172800, '2 days'],
    [90, '90 seconds'],
    [3600, '1 hour'],
    [1, '1 second'],
    [7200, '2 hours'],
    [604800, '7 days'],
    [5400, '90 minutes'],
    [90000, '25 hours'],
  ])('%i s is "%s"', (seconds, text) => {
    expect(humanDuration(seconds)).toBe(text);
  });
});

describe('backoffMs', () => {
  it('starts at the retry delay and doubles each attempt', () => {
    expect([1, 2, 3, 4, 5].map((attempt) => backoffMs(5000, attempt))).toEqual([5000, 10000, 20000, 40000, 80000]);
    expect(backoffMs(10, 8)).toBe(1280);
  });

  it('never goes below the retry delay for attempt 0 or less', () => {
    expect(backoffMs(5000, 0)).toBe(5000);
    expect(backoffMs(5000, -3)).toBe(5000);
  });
});

describe('isPermanentMailError', () => {
  const smtpError = (responseCode: number, response: string) =>
    Object.assign(new Error(`Message failed: ${response}`), { code: 'EMESSAGE', responseCode, response });
  const socketError = (code: string, message: string) => Object.assign(new Error(message), { code });

  it('an SMTP 5xx reply is permanent', () => {
    expect(isPermanentMailError(smtpError(550, '550 5.1.1 <nobody@example.com>: Recipient address rejected'))).toBe(true);
    expect(isPermanentMailError(smtpError(535, '535 5.7.8 Authentication credentials invalid'))).toBe(true);
    expect(isPermanentMailError(smtpError(500, '500 syntax error'))).toBe(true);
    expect(isPermanentMailError(smtpError(554, '554 Transaction failed'))).toBe(true);
  });

  it('a 4xx reply, a network error or anything else is not', () => {
    expect(isPermanentMailError(smtpError(451, '451 4.3.0 Try again later'))).toBe(false);
    expect(isPermanentMailError(smtpError(421, '421 Service not available'))).toBe(false);
    expect(isPermanentMailError(socketError('ECONNREFUSED', 'connect ECONNREFUSED 127.0.0.1:25'))).toBe(false);
    expect(isPermanentMailError(socketError('ETIMEDOUT', 'Connection timeout'))).toBe(false);
    expect(isPermanentMailError({ responseCode: '550' })).toBe(false);
    expect(isPermanentMailError({ responseCode: 600 })).toBe(false);
    expect(isPermanentMailError(new Error('boom'))).toBe(false);
    expect(isPermanentMailError(null)).toBe(false);
    expect(isPermanentMailError(undefined)).toBe(false);
    expect(isPermanentMailError('550')).toBe(false);
  });
});

describe('describeMailError', () => {
  it('an SMTP reply: "SMTP <code>: <reply>"', () => {
    const err = Object.assign(new Error('Message failed: 550 5.1.1 User unknown'), { code: 'EMESSAGE', responseCode: 550, response: '550 5.1.1 User unknown' });
    expect(describeMailError(err)).toBe('SMTP 550: 550 5.1.1 User unknown');
    expect(describeMailError({ responseCode: 451 })).toBe('SMTP 451: ');
  });

  it('a network error: "<code>: <message>"; without a code, the message', () => {
    expect(describeMailError(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:25'), { code: 'ECONNREFUSED' }))).toBe(
      'ECONNREFUSED: connect ECONNREFUSED 127.0.0.1:25',
    );
    expect(describeMailError(new Error('boom'))).toBe('boom');
    expect(describeMailError('plain string')).toBe('plain string');
    expect(describeMailError(null)).toBe('null');
  });

  it('stays short: the reply or message is cut at 300 characters', () => {
    const long = 'x'.repeat(1000);
    expect(describeMailError({ responseCode: 550, response: long })).toBe(`SMTP 550: ${'x'.repeat(300)}`);
    expect(describeMailError(Object.assign(new Error(long), { code: 'ESOCKET' }))).toBe(`ESOCKET: ${'x'.repeat(300)}`);
  });
});

describe('createPoller', () => {
  const pollers: Poller[] = [];
  /** A poller stopped after the test whatever happens. */
  function poller(tick: () => Promise<boolean>, intervalMs: number, onError: (err: unknown) => void = () => {}): Poller {
    const p = createPoller(tick, intervalMs, onError);
    pollers.push(p);
    return p;
  }
  /** A poller whose tick only counts its runs. */
  function counting(intervalMs: number): { p: Poller; readonly ticks: number } {
    let ticks = 0;
    const p = poller(async () => {
      ticks++;
      return false;
    }, intervalMs);
    return {
      p,
      get ticks() {
        return ticks;
      },
    };
  }
  afterAll(async () => {
    await Promise.all(pollers.map((p) => p.stop()));
  });

  it('does nothing before start()', async () => {
    const c = counting(5);
    c.p.wake();
    await sleep(40);
    expect(c.ticks).toBe(0);
    await c.p.stop();
  });

  it('start() runs a tick at once, then waits for the interval', async () => {
    const c = counting(10_000);
    const started = Date.now();
    c.p.start();
    c.p.start(); // a second start() changes nothing
    await waitFor(() => c.ticks === 1, 500, 'the first tick');
    expect(Date.now() - started).toBeLessThan(200);
    await sleep(60);
    expect(c.ticks).toBe(1);
    await c.p.stop();
  });

  it('ticks again every interval', async () => {
    const c = counting(25);
    c.p.start();
    await sleep(200);
    await c.p.stop();
    // About 8; generous bounds for a busy machine, but more than one and not a busy loop.
    expect(c.ticks).toBeGreaterThanOrEqual(3);
    expect(c.ticks).toBeLessThanOrEqual(10);
  });

  it('wake() runs another tick soon, without waiting for the interval', async () => {
    const c = counting(10_000);
    c.p.start();
    await waitFor(() => c.ticks === 1, 500, 'the first tick');
    await sleep(10);
    const woken = Date.now();
    c.p.wake();
    await waitFor(() => c.ticks === 2, 500, 'the woken tick');
    expect(Date.now() - woken).toBeLessThan(200);
    await sleep(40);
    expect(c.ticks).toBe(2);
    await c.p.stop();
  });

  it('wake() during a tick runs exactly one more tick after it', async () => {
    let ticks = 0;
    let release: () => void = () => {};
    const p = poller(async () => {
      ticks++;
      if (ticks === 1) await new Promise<void>((resolve) => (release = resolve));
      return false;
    }, 10_000);
    p.start();
    await waitFor(() => ticks === 1, 500, 'the first tick');
    p.wake();
    p.wake();
    p.wake();
    await sleep(20);
    expect(ticks).toBe(1);
    release();
    await waitFor(() => ticks === 2, 500, 'the tick after the wake');
    await sleep(40);
    expect(ticks).toBe(2);
    await p.stop();
  });

  it('a tick that reports more work runs again at once', async () => {
    let ticks = 0;
    const p = poller(async () => {
      ticks++;
      return ticks < 4;
    }, 10_000);
    const started = Date.now();
    p.start();
    await waitFor(() => ticks === 4, 500, 'four ticks');
    expect(Date.now() - started).toBeLessThan(300);
    await sleep(50);
    expect(ticks).toBe(4);
    await p.stop();
  });

  it('ticks never overlap, whatever wake() and the interval do', async () => {
    let active = 0;
    let maxActive = 0;
    let ticks = 0;
    const p = poller(async () => {
      active++;
      maxActive = Math.max(maxActive, active);
      ticks++;
      await sleep(8);
      active--;
      return ticks % 3 === 0;
    }, 1);
    p.start();
    const deadline = Date.now() + 200;
    while (Date.now() < deadline) {
      p.wake();
      await sleep(1);
    }
    await p.stop();
    expect(ticks).toBeGreaterThan(3);
    expect(maxActive).toBe(1);
    expect(active).toBe(0);
  });

  it('a failing tick goes to onError and the loop carries on', async () => {
    const errors: unknown[] = [];
    let ticks = 0;
    const p = poller(
      async () => {
        ticks++;
        if (ticks <= 2) throw new Error(`tick ${ticks} failed`);
        return false;
      },
      5,
      (err) => errors.push(err),
    );
    p.start();
    await waitFor(() => ticks >= 4, 1000, 'ticks after the failures');
    await p.stop();
    expect(errors).toHaveLength(2);
    expect(errors.map((e) => (e as Error).message)).toEqual(['tick 1 failed', 'tick 2 failed']);
  });

  it('stop() waits for the running tick, and no tick runs after it', async () => {
    let ticks = 0;
    let finished = 0;
    const p = poller(async () => {
      ticks++;
      await sleep(60);
      finished++;
      return true; // more work: would run again at once if not stopped
    }, 1);
    p.start();
    await waitFor(() => ticks === 1, 500, 'the first tick');
    await p.stop();
    expect(finished).toBe(1);
    p.wake();
    await sleep(80);
    expect(ticks).toBe(1);
    expect(finished).toBe(1);
    // stop() again, with nothing running, resolves.
    await p.stop();
  });

  it('stop() before any tick prevents the first one', async () => {
    const c = counting(5);
    c.p.start();
    await c.p.stop();
    await sleep(40);
    expect(c.ticks).toBe(0);
  });

  it('can start again after stop()', async () => {
    const c = counting(10_000);
    c.p.start();
    await waitFor(() => c.ticks === 1, 500, 'the first tick');
    await c.p.stop();
    c.p.start();
    await waitFor(() => c.ticks === 2, 500, 'the tick after the restart');
    await c.p.stop();
  });
});

describe('createFileMailer', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'tessera-mailer-'));
  });
  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  const link = 'https://auth.example.com/auth/confirm-email?token=abc-123';
  const mail: OutgoingMail = {
    id: '6f1c2a44-2f0e-4c43-9d0b-0d6b1e4f7a10',
    messageId: '<6f1c2a44-2f0e-4c43-9d0b-0d6b1e4f7a10@auth.example.com>',
    from: 'Tessera <no-reply@auth.example.com>',
    to: 'ada@example.com',
    subject: 'Confirm your email address for Tessera ✓',
    text: `Hello Ada,\n\nOpen this link:\n\n${link}\n\nAnd this one: https://example.com/help\n`,
    html: `<p>Hello Ada,</p><p><a href="${link}">Confirm</a></p><p>${'a long line of html '.repeat(10)}</p>`,
  };

  function fakeLogger() {
    const calls: unknown[][] = [];
    return { calls, logger: { info: (...args: unknown[]) => void calls.push(args) } };
  }

  it('writes <dir>/<id>.eml with the headers and both parts, no .tmp left, and logs the links', async () => {
    const mailDir = path.join(dir, 'mail'); // created on the first send
    const { calls, logger } = fakeLogger();
    const mailer = createFileMailer(mailDir, logger);
    await mailer.send(mail);
    mailer.close();

    const file = path.join(mailDir, `${mail.id}.eml`);
    const textFile = path.join(mailDir, `${mail.id}.txt`);
    expect(readdirSync(mailDir).sort()).toEqual([`${mail.id}.eml`, `${mail.id}.txt`]);
    expect(existsSync(`${file}.tmp`)).toBe(false);
    expect(existsSync(`${textFile}.tmp`)).toBe(false);
    // The plain text as is, for a person to copy the link from (the .eml's is quoted-printable).
    expect(readFileSync(textFile, 'utf8')).toBe(`To: ${mail.to}\nSubject: ${mail.subject}\n\n${mail.text}`);
    expect(readFileSync(textFile, 'utf8').split('\n')).toContain(link);

    const raw = readFileSync(file);
    const parsed = await simpleParser(raw);
    expect(parsed.subject).toBe(mail.subject);
    expect(parsed.messageId).toBe(mail.messageId);
    expect(parsed.from?.value).toEqual([{ name: 'Tessera', address: 'no-reply@auth.example.com' }]);
    const to = Array.isArray(parsed.to) ? parsed.to[0] : parsed.to;
    expect(to?.value[0]?.address).toBe('ada@example.com');
    expect(parsed.text?.trim()).toBe(mail.text.trim());
    expect(parsed.html).toBe(mail.html);
    const source = raw.toString('utf8');
    expect(source).toMatch(/^Content-Type: multipart\/alternative/im);
    expect(source).toMatch(/^Content-Type: text\/plain/im);
    expect(source).toMatch(/^Content-Type: text\/html/im);
    expect(source).not.toContain('\r\n'); // newline: 'unix', so any mail client or editor opens it

    expect(calls).toHaveLength(1);
    const [fields, message] = calls[0] as [Record<string, unknown>, string];
    expect(fields).toEqual({ to: mail.to, subject: mail.subject, file, text: textFile, links: [link, 'https://example.com/help'] });
    expect(message).toContain('SMTP_SERVER');
  });

  it('a retry of the same message replaces its file', async () => {
    const mailDir = path.join(dir, 'retry');
    const { calls, logger } = fakeLogger();
    const mailer = createFileMailer(mailDir, logger);
    await mailer.send({ ...mail, text: 'first, no link' });
    await mailer.send({ ...mail, text: 'second, no link' });
    mailer.close();
    expect(readdirSync(mailDir).sort()).toEqual([`${mail.id}.eml`, `${mail.id}.txt`]);
    const parsed = await simpleParser(readFileSync(path.join(mailDir, `${mail.id}.eml`)));
    expect(parsed.text?.trim()).toBe('second, no link');
    expect(readFileSync(path.join(mailDir, `${mail.id}.txt`), 'utf8')).toContain('second, no link');
    expect(calls).toHaveLength(2);
    expect((calls[1]![0] as { links: string[] }).links).toEqual([]);
  });
});
