import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { SMTPServer } from 'smtp-server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { freePort } from '../helpers/free-port.js';
import { testKeys } from '../helpers/keys.js';
import { OwnRedis } from '../helpers/redis-server.js';
import { SmtpCatcher } from '../helpers/smtp.js';

// A database that cannot be reached at start: one line on stderr naming the setting (without
// the password) and the cause, a non-zero exit; no driver stack, no `CREATE SCHEMA "drizzle"`.
// Runs `src/main.ts` through tsx; TESSERA_TEST_DIST=1 runs the built `dist/main.js` (`npm run build` first).

const repo = path.resolve(import.meta.dirname, '../..');
const entry = process.env.TESSERA_TEST_DIST === '1' ? [path.join(repo, 'dist/main.js')] : ['--import', 'tsx', path.join(repo, 'src/main.ts')];

let dataDir: string;
beforeAll(() => {
  dataDir = mkdtempSync(path.join(tmpdir(), 'tessera-startup-'));
});
afterAll(() => {
  rmSync(dataDir, { recursive: true, force: true });
});

async function spawnServer(env: Record<string, string>) {
  return spawn(process.execPath, entry, {
    cwd: repo,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      NODE_ENV: 'development',
      LOG_LEVEL: 'warn',
      SERVER: '127.0.0.1',
      SERVER_PORT: String(await freePort()),
      PRIVATE_KEY: (await testKeys('RS256')).privateKey,
      DATA_DIR: dataDir,
      DB_CONNECT_TIMEOUT_MS: '3000',
      ...env,
    },
  });
}

async function start(env: Record<string, string>): Promise<{ code: number | null; stderr: string; stdout: string }> {
  const child = await spawnServer(env);
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  return { code, stderr, stdout };
}

function expectOneClearLine(res: { code: number | null; stderr: string }, ...expected: RegExp[]) {
  expect(res.code, res.stderr).not.toBe(0);
  const lines = res.stderr.trim().split('\n');
  expect(lines, res.stderr).toHaveLength(1);
  for (const re of expected) expect(lines[0]).toMatch(re);
  expect(res.stderr).not.toMatch(/secret-pw|CREATE SCHEMA|DrizzleQueryError|\bat .+:\d+:\d+/);
}

describe('an unreachable database at start', () => {
  it('connection refused: names DATABASE_URL without the password, and ECONNREFUSED', async () => {
    const port = await freePort(); // nothing listens there
    const res = await start({ DATABASE_URL: `postgres://tessera:secret-pw@127.0.0.1:${port}/tessera` });
    expectOneClearLine(
      res,
      /^tessera: cannot connect to PostgreSQL/,
      new RegExp(`postgres://tessera@127\\.0\\.0\\.1:${port}/tessera`),
      /DATABASE_URL/,
      /ECONNREFUSED/,
    );
  });

  it('DB_HOST & co.: names those variables', async () => {
    const port = await freePort();
    const res = await start({ DB_HOST: '127.0.0.1', DB_PORT: String(port), DB_USER: 'tessera', DB_PASSWORD: 'secret-pw', DB_NAME: 'tessera' });
    expectOneClearLine(res, /DB_HOST, DB_PORT, DB_NAME, DB_USER, DB_PASSWORD/, /ECONNREFUSED/);
  });

  it.skipIf(!process.env.TEST_DATABASE_URL)('a database that does not exist: says so', async () => {
    const url = new URL(process.env.TEST_DATABASE_URL as string);
    url.pathname = '/tessera_no_such_database';
    url.password = 'secret-pw';
    const res = await start({ DATABASE_URL: url.toString() });
    expectOneClearLine(res, /DATABASE_URL/, /database "tessera_no_such_database" does not exist/);
  });
});

describe('a port already in use at start', () => {
  let database: TestDatabase;
  beforeAll(async () => {
    database = await createTestDatabase();
  });
  afterAll(async () => {
    await database?.drop();
  });

  it('EADDRINUSE: one line naming SERVER and SERVER_PORT and what to do, exit 1', async () => {
    // Another server on the port (a FastAPI service on 8000, say), on the same address.
    const other = createServer();
    const port = await freePort();
    await new Promise<void>((resolve) => other.listen(port, '127.0.0.1', resolve));
    try {
      const res = await start({ DATABASE_URL: database.url as string, SERVER_PORT: String(port) });
      expect(res.code, res.stderr).toBe(1);
      expect(res.stderr).toBe(
        `tessera: cannot listen on 127.0.0.1:${port} (SERVER, SERVER_PORT): the port is in use by another process (EADDRINUSE): stop it, or set SERVER_PORT to a free port\n`,
      );
    } finally {
      await new Promise((resolve) => other.close(resolve));
    }
  });

  it('WORKERS=2: the primary says it once and exits 1, no worker is started (and restarted)', async () => {
    const other = createServer();
    const port = await freePort();
    await new Promise<void>((resolve) => other.listen(port, '127.0.0.1', resolve));
    try {
      const res = await start({ DATABASE_URL: database.url as string, SERVER_PORT: String(port), WORKERS: '2' });
      expect(res.code, res.stderr).toBe(1);
      expect(res.stderr).toBe(
        `tessera: cannot listen on 127.0.0.1:${port} (SERVER, SERVER_PORT): the port is in use by another process (EADDRINUSE): stop it, or set SERVER_PORT to a free port\n`,
      );
      expect(res.stdout).not.toMatch(/started \d+ workers/);
    } finally {
      await new Promise((resolve) => other.close(resolve));
    }
  });

  it('an address this machine does not have: says what SERVER should be', async () => {
    const res = await start({ DATABASE_URL: database.url as string, SERVER: '192.0.2.1' }); // TEST-NET-1: nobody's address
    expect(res.code, res.stderr).toBe(1);
    expect(res.stderr).toMatch(/^tessera: cannot listen on 192\.0\.2\.1:\d+ \(SERVER, SERVER_PORT\): this machine has no such address \(EADDRNOTAVAIL\)/);
    expect(res.stderr.trim().split('\n')).toHaveLength(1);
  });
});

// Redis and SMTP are not needed to serve: unreachable at start, they are one warning naming the
// setting (no password), the cause and what still works; an outage is one line, and one when it ends.

interface Running {
  /** The log lines so far, parsed. */
  lines: Array<{ level: number; msg: string }>;
  stderr: () => string;
  waitFor(re: RegExp, timeoutMs?: number): Promise<{ level: number; msg: string }>;
  stop(): Promise<void>;
}

async function run(env: Record<string, string>): Promise<Running> {
  const child = await spawnServer({ LOG_LEVEL: 'info', ...env });
  const lines: Running['lines'] = [];
  let buffer = '';
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  child.stdout.setEncoding('utf8').on('data', (d: string) => {
    buffer += d;
    for (let i = buffer.indexOf('\n'); i >= 0; i = buffer.indexOf('\n')) {
      lines.push(JSON.parse(buffer.slice(0, i)) as { level: number; msg: string });
      buffer = buffer.slice(i + 1);
    }
  });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  return {
    lines,
    stderr: () => stderr,
    async waitFor(re, timeoutMs = 45_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const line = lines.find((l) => re.test(l.msg));
        if (line) return line;
        if (child.exitCode !== null) throw new Error(`the server exited (${child.exitCode}): ${stderr}`);
        if (Date.now() > deadline) throw new Error(`no log line matching ${re}; got:\n${lines.map((l) => l.msg).join('\n')}\n${stderr}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}

describe('Redis or SMTP unreachable at start: a warning, and the server serves', () => {
  let database: TestDatabase;
  let redis: OwnRedis;
  beforeAll(async () => {
    database = await createTestDatabase();
    redis = await OwnRedis.start();
    await redis.down();
  });
  afterAll(async () => {
    await redis?.stop();
    await database?.drop();
  });

  it('Redis: one line naming REDIS_URL without the password, ECONNREFUSED and what still works; one line when it is back', async () => {
    const url = `redis://:secret-pw@127.0.0.1:${redis.port}/0`;
    const server = await run({ DATABASE_URL: database.url as string, REDIS_URL: url, RATE_LIMIT_ENABLED: 'true', REDIS_RECONNECT_MAX_DELAY_MS: '100' });
    try {
      const warning = await server.waitFor(/Redis/);
      expect(warning.level).toBe(40);
      expect(warning.msg).toMatch(
        new RegExp(`^cannot reach Redis at redis://127\\.0\\.0\\.1:${redis.port}/0 \\(REDIS_URL\\): connection refused \\(ECONNREFUSED\\)`),
      );
      expect(warning.msg).toMatch(/rate limits use this process's counters and email waits in the outbox/);
      await server.waitFor(/Server listening/);
      // Reconnecting every 100 ms for a second more: still that one line.
      await new Promise((r) => setTimeout(r, 1000));
      await redis.up();
      await server.waitFor(/answers again/);
      const aboutRedis = server.lines.filter((l) => /Redis/.test(l.msg)).map((l) => l.msg);
      expect(aboutRedis).toEqual([warning.msg, `Redis at redis://127.0.0.1:${redis.port}/0 (REDIS_URL) answers again`]);
      expect(JSON.stringify(server.lines) + server.stderr()).not.toMatch(/secret-pw|\bat .+:\d+:\d+/);
      expect(server.stderr()).toBe('');
    } finally {
      await server.stop();
      await redis.down();
    }
  });

  it('Redis: a host name that does not resolve says so, once', async () => {
    const server = await run({
      DATABASE_URL: database.url as string,
      REDIS_URL: 'redis://:secret-pw@no-such-host.invalid:6379/0',
      RATE_LIMIT_ENABLED: 'true',
      REDIS_RECONNECT_MAX_DELAY_MS: '100',
    });
    try {
      const warning = await server.waitFor(/Redis/);
      expect(warning.level).toBe(40);
      expect(warning.msg).toMatch(
        /^cannot reach Redis at redis:\/\/no-such-host\.invalid:6379\/0 \(REDIS_URL\): host (not found \(ENOTFOUND\)|name lookup failed \(EAI_AGAIN\))/,
      );
      await server.waitFor(/Server listening/);
      // Reconnecting every 100 ms for a second more: still that one line.
      await new Promise((r) => setTimeout(r, 1000));
      expect(server.lines.filter((l) => /Redis/.test(l.msg))).toHaveLength(1);
      expect(JSON.stringify(server.lines) + server.stderr()).not.toMatch(/secret-pw|\bat .+:\d+:\d+/);
    } finally {
      await server.stop();
    }
  });

  it('SMTP: one line naming the SMTP settings without the password, and the cause', async () => {
    const port = await freePort(); // nothing listens there
    const server = await run({
      DATABASE_URL: database.url as string,
      SMTP_SERVER: '127.0.0.1',
      SMTP_PORT: String(port),
      SMTP_USERNAME: 'mailer',
      SMTP_PASSWORD: 'secret-pw',
    });
    try {
      const warning = await server.waitFor(/SMTP/);
      expect(warning.level).toBe(40);
      expect(warning.msg).toBe(
        `cannot reach the SMTP server 127.0.0.1:${port} as mailer (SMTP_SERVER, SMTP_PORT, SMTP_USERNAME, SMTP_PASSWORD): connection refused (ECONNREFUSED): is it running, on this host and port? (until it answers, email waits in the outbox and is retried)`,
      );
      await server.waitFor(/Server listening/);
      expect(JSON.stringify(server.lines) + server.stderr()).not.toMatch(/secret-pw/);
    } finally {
      await server.stop();
    }
  });

  it('SMTP: a host name that does not resolve says so', async () => {
    const server = await run({ DATABASE_URL: database.url as string, SMTP_SERVER: 'no-such-host.invalid', SMTP_PORT: '587' });
    try {
      const warning = await server.waitFor(/SMTP/);
      expect(warning.level).toBe(40);
      expect(warning.msg).toMatch(
        /^cannot reach the SMTP server no-such-host\.invalid:587 \(SMTP_SERVER, SMTP_PORT\): host (not found \(ENOTFOUND\)|name lookup failed \(EAI_AGAIN\))/,
      );
      await server.waitFor(/Server listening/);
      expect(server.lines.filter((l) => /SMTP/.test(l.msg))).toHaveLength(1);
    } finally {
      await server.stop();
    }
  });

  it('SMTP: SMTP_SECURE=true on a port without TLS says TLS failed and why, without OpenSSL internals', async () => {
    const smtp = await SmtpCatcher.start(); // plain SMTP (STARTTLS off)
    const server = await run({ DATABASE_URL: database.url as string, SMTP_SERVER: '127.0.0.1', SMTP_PORT: String(smtp.port), SMTP_SECURE: 'true' });
    try {
      const warning = await server.waitFor(/SMTP/);
      expect(warning.level).toBe(40);
      expect(warning.msg).toMatch(
        new RegExp(`^cannot reach the SMTP server 127\\.0\\.0\\.1:${smtp.port} \\(SMTP_SERVER, SMTP_PORT\\): TLS failed \\([^)]+\\): TLS on one side only\\?`),
      );
      expect(warning.msg).not.toMatch(/SSL routines|openssl|\.c:\d+/);
      await server.waitFor(/Server listening/);
    } finally {
      await server.stop();
      await smtp.close();
    }
  });

  it('SMTP: a refused login says authentication failed', async () => {
    const port = await freePort();
    const smtp = new SMTPServer({
      authMethods: ['PLAIN', 'LOGIN'],
      allowInsecureAuth: true,
      disabledCommands: ['STARTTLS'],
      logger: false,
      onAuth: (_auth, _session, callback) => callback(new Error('Invalid username or password')),
    });
    await new Promise<void>((resolve) => smtp.listen(port, '127.0.0.1', () => resolve()));
    const server = await run({
      DATABASE_URL: database.url as string,
      SMTP_SERVER: '127.0.0.1',
      SMTP_PORT: String(port),
      SMTP_USERNAME: 'mailer',
      SMTP_PASSWORD: 'secret-pw',
    });
    try {
      const warning = await server.waitFor(/SMTP/);
      expect(warning.msg).toMatch(
        new RegExp(
          `^cannot reach the SMTP server 127\\.0\\.0\\.1:${port} as mailer \\(SMTP_SERVER, SMTP_PORT, SMTP_USERNAME, SMTP_PASSWORD\\): authentication failed`,
        ),
      );
      expect(JSON.stringify(server.lines)).not.toMatch(/secret-pw/);
    } finally {
      await server.stop();
      await new Promise<void>((resolve) => smtp.close(() => resolve()));
    }
  });
});
