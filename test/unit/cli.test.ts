import { spawn, type ChildProcess } from 'node:child_process';
import { createPrivateKey, createPublicKey, randomBytes, type KeyObject } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { PGlite } from '@electric-sql/pglite';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/index.js';
import { toSigningKey } from '../../src/infra/keys.js';
import { freePort } from '../helpers/free-port.js';

// The built CLI and server, run as a user runs them: `node bin/tessera.js …`, `node dist/main.js`.
const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const bin = path.join(repo, 'bin/tessera.js');
const main = path.join(repo, 'dist/main.js');
const journal = JSON.parse(readFileSync(path.join(repo, 'migrations/meta/_journal.json'), 'utf8')) as { entries: unknown[] };

let tmp: string;
/** cwd of every child: an empty directory, so a developer's `.env` in the repo cannot leak into the tests. */
let cwd: string;
const children = new Set<ChildProcess>();

interface Result {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** A fresh directory under this file's temp dir. */
function freshDir(name: string): string {
  return mkdtempSync(path.join(tmp, `${name}-`));
}

/** A clean environment: nothing inherited but PATH, so no DATABASE_URL etc. from the shell. */
function envWith(vars: Record<string, string>): NodeJS.ProcessEnv {
  return { PATH: process.env.PATH ?? '/usr/bin:/bin', LOG_LEVEL: 'info', ...vars };
}

function start(script: string, args: string[], env: NodeJS.ProcessEnv) {
  const child = spawn(process.execPath, [script, ...args], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  const out = { stdout: '', stderr: '' };
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out.stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (out.stderr += d));
  const exited = new Promise<Result>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => {
      children.delete(child);
      resolve({ code, signal, ...out });
    });
  });
  return { child, out, exited };
}

/** Runs a script to completion; kills it and fails after `timeoutMs`. */
async function run(script: string, args: string[], env: Record<string, string>, timeoutMs = 20_000): Promise<Result> {
  const { child, out, exited } = start(script, args, envWith(env));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  try {
    const res = await exited;
    if (res.signal === 'SIGKILL') throw new Error(`${path.basename(script)} ${args.join(' ')} timed out\nstdout: ${out.stdout}\nstderr: ${out.stderr}`);
    return res;
  } finally {
    clearTimeout(timer);
  }
}

const tessera = (args: string[], env: Record<string, string> = {}, timeoutMs?: number) => run(bin, args, env, timeoutMs);

/** Polls `check` (every 50 ms) until it is true; fails with `what` after `timeoutMs`. */
async function waitFor(what: string, check: () => boolean, timeoutMs = 20_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Like waitFor, for an async check. */
async function waitForAsync(what: string, check: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** The private and public PEM blocks printed by `keys generate`. */
function parsePems(stdout: string): { privateKey: KeyObject; publicKey: KeyObject } {
  const priv = /-----BEGIN PRIVATE KEY-----\n[\s\S]+?\n-----END PRIVATE KEY-----\n/.exec(stdout);
  const pub = /-----BEGIN PUBLIC KEY-----\n[\s\S]+?\n-----END PUBLIC KEY-----\n/.exec(stdout);
  expect(priv, stdout).not.toBeNull();
  expect(pub, stdout).not.toBeNull();
  expect(stdout).toBe(priv![0] + pub![0]);
  return { privateKey: createPrivateKey(priv![0]), publicKey: createPublicKey(pub![0]) };
}

function expectPair(privateKey: KeyObject, publicKey: KeyObject): void {
  const der = (k: KeyObject) => k.export({ type: 'spki', format: 'der' });
  expect(der(createPublicKey(privateKey)).equals(der(publicKey))).toBe(true);
}

async function pgliteTables(dataDir: string): Promise<{ tables: string[]; migrations: number }> {
  const db = await PGlite.create(path.join(dataDir, 'db'));
  try {
    const tables = await db.query<{ table_name: string }>("select table_name from information_schema.tables where table_schema = 'public'");
    const applied = await db.query<{ n: number }>('select count(*)::int as n from drizzle.__drizzle_migrations');
    return { tables: tables.rows.map((r) => r.table_name), migrations: applied.rows[0]!.n };
  } finally {
    await db.close();
  }
}

beforeAll(async () => {
  tmp = mkdtempSync(path.join(tmpdir(), 'tessera-cli-'));
  cwd = path.join(tmp, 'cwd');
  mkdirSync(cwd);
  // Build what users run. tsc emits even with type errors, so its exit code is checked.
  const build = await run(path.join(repo, 'node_modules/typescript/bin/tsc'), ['-p', path.join(repo, 'tsconfig.build.json')], {}, 120_000);
  expect(build.code, `tsc failed:\n${build.stdout}${build.stderr}`).toBe(0);
}, 130_000);

afterAll(() => {
  for (const child of children) child.kill('SIGKILL');
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe('tessera keys generate', () => {
  it('prints an RS256 (RSA-2048) PEM pair by default', async () => {
    const res = await tessera(['keys', 'generate']);
    expect(res.code, res.stderr).toBe(0);
    const { privateKey, publicKey } = parsePems(res.stdout);
    expect(privateKey.asymmetricKeyType).toBe('rsa');
    expect(privateKey.asymmetricKeyDetails?.modulusLength).toBe(2048);
    expectPair(privateKey, publicKey);
  });

  it.each([
    ['ES256', 'ec'],
    ['EdDSA', 'ed25519'],
  ])('prints a PEM pair for --alg %s', async (alg, type) => {
    const res = await tessera(['keys', 'generate', '--alg', alg]);
    expect(res.code, res.stderr).toBe(0);
    const { privateKey, publicKey } = parsePems(res.stdout);
    expect(privateKey.asymmetricKeyType).toBe(type);
    if (alg === 'ES256') expect(privateKey.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
    expectPair(privateKey, publicKey);
    // The key is accepted by the server's key loader for that algorithm.
    await expect(toSigningKey(privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), alg as 'ES256' | 'EdDSA', 'generated')).resolves.toBeTruthy();
  });

  it('follows JWT_ALGORITHM when --alg is not given', async () => {
    const res = await tessera(['keys', 'generate'], { JWT_ALGORITHM: 'EdDSA' });
    expect(res.code, res.stderr).toBe(0);
    expect(parsePems(res.stdout).privateKey.asymmetricKeyType).toBe('ed25519');
  });

  it('--out DIR writes private.pem (0600) and public.pem, usable as PRIVATE_KEY_FILE, and refuses to overwrite', async () => {
    const out = path.join(freshDir('keys'), 'nested', 'keys');
    const res = await tessera(['keys', 'generate', '--alg', 'ES256', '--out', out]);
    expect(res.code, res.stderr).toBe(0);
    const privatePath = path.join(out, 'private.pem');
    const publicPath = path.join(out, 'public.pem');
    expect(statSync(privatePath).mode & 0o777).toBe(0o600);
    const privatePem = readFileSync(privatePath, 'utf8');
    const publicPem = readFileSync(publicPath, 'utf8');
    expectPair(createPrivateKey(privatePem), createPublicKey(publicPem));
    expect(createPrivateKey(privatePem).asymmetricKeyType).toBe('ec');
    expect(res.stdout).toContain(`PRIVATE_KEY_FILE=${privatePath} JWT_ALGORITHM=ES256`);

    // What it says to do works.
    const config = loadConfig({ PRIVATE_KEY_FILE: privatePath, PUBLIC_KEY_FILE: publicPath, JWT_ALGORITHM: 'ES256' });
    await expect(toSigningKey(config.jwt.privateKeyPem!, 'ES256', 'PRIVATE_KEY_FILE', config.jwt.publicKeyPem)).resolves.toBeTruthy();

    const again = await tessera(['keys', 'generate', '--alg', 'ES256', '--out', out]);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain(`${privatePath} already exists; refusing to overwrite it.`);
    expect(readFileSync(privatePath, 'utf8')).toBe(privatePem);
    expect(readFileSync(publicPath, 'utf8')).toBe(publicPem);
  });

  it('reads .env from the working directory; real environment variables win', async () => {
    const { writeFileSync } = await import('node:fs');
    writeFileSync(path.join(cwd, '.env'), 'JWT_ALGORITHM=ES256\n');
    try {
      const fromFile = await tessera(['keys', 'generate']);
      expect(fromFile.code, fromFile.stderr).toBe(0);
      expect(parsePems(fromFile.stdout).privateKey.asymmetricKeyType).toBe('ec');
      const fromEnv = await tessera(['keys', 'generate'], { JWT_ALGORITHM: 'EdDSA' });
      expect(parsePems(fromEnv.stdout).privateKey.asymmetricKeyType).toBe('ed25519');
    } finally {
      rmSync(path.join(cwd, '.env'));
    }
  });

  it('--alg HS256 exits 1 with the supported algorithms and prints no key', async () => {
    const res = await tessera(['keys', 'generate', '--alg', 'HS256']);
    expect(res.code).toBe(1);
    expect(res.stderr).toContain('--alg must be one of RS256, ES256, EdDSA, got "HS256"');
    expect(res.stdout).toBe('');
  });
});

describe('tessera usage', () => {
  it('an unknown command exits 2 with the usage', async () => {
    for (const args of [['frobnicate'], ['keys'], ['keys', 'rotate-everything']]) {
      const res = await tessera(args);
      expect(res.code, args.join(' ')).toBe(2);
      expect(res.stderr).toContain(`unknown command "${args.join(' ')}"`);
      expect(res.stderr).toContain('Usage: tessera <command>');
      expect(res.stdout).toBe('');
    }
  });

  it('help prints the usage and exits 0', async () => {
    const res = await tessera(['help']);
    expect(res.code).toBe(0);
    expect(res.stdout).toContain('Usage: tessera <command>');
    expect(res.stdout).toContain('keys generate');
  });
});

describe('tessera migrate', () => {
  it('creates the embedded database in DATA_DIR and is idempotent', async () => {
    const dataDir = freshDir('data');
    for (let i = 0; i < 2; i++) {
      const res = await tessera(['migrate'], { DATA_DIR: dataDir }, 60_000);
      expect(res.code, res.stderr).toBe(0);
      expect(res.stdout).toContain(`migrations applied (embedded database in ${path.join(dataDir, 'db')})`);
      expect(existsSync(path.join(dataDir, 'db', 'tessera.lock'))).toBe(false);
    }
    const { tables, migrations } = await pgliteTables(dataDir);
    expect(tables).toEqual(expect.arrayContaining(['users', 'sessions']));
    expect(migrations).toBe(journal.entries.length);
  });

  it('rewrites stored emails that alone reach their mailbox, reports colliding accounts; `users check-emails` lists them and exits 1', async () => {
    const dataDir = freshDir('emails');
    expect((await tessera(['migrate'], { DATA_DIR: dataDir }, 60_000)).code).toBe(0);
    const clean = await tessera(['users', 'check-emails'], { DATA_DIR: dataDir }, 60_000);
    expect(clean.code, clean.stderr).toBe(0);
    expect(clean.stdout).toContain('every stored email address is canonical');

    const db = await PGlite.create(path.join(dataDir, 'db'));
    await db.query("insert into users (email) values ('x@example.test'), ('\"x\"@example.test'), ('y <x@example.test>'), ('z@bücher.example')");
    await db.close();
    const before = await tessera(['users', 'check-emails'], { DATA_DIR: dataDir }, 60_000);
    expect(before.code).toBe(1);
    expect(before.stdout).toContain('not canonical: "z@bücher.example" → "z@xn--bcher-kva.example"');
    expect(before.stdout).toContain('COLLISION: 3 accounts reach the mailbox x@example.test');

    const migrated = await tessera(['migrate'], { DATA_DIR: dataDir }, 60_000);
    expect(migrated.code, migrated.stderr).toBe(0);
    expect(migrated.stderr).toContain('rewritten: "z@bücher.example" → "z@xn--bcher-kva.example"');
    expect(migrated.stderr).toContain('COLLISION: 3 accounts reach the mailbox x@example.test');
    const after = await tessera(['users', 'check-emails'], { DATA_DIR: dataDir }, 60_000);
    expect(after.code).toBe(1);
    expect(after.stdout).not.toContain('bücher');
    expect(after.stdout).toContain('COLLISION: 3 accounts reach the mailbox x@example.test');
  });

  it('a bad configuration exits 1 and names the variable', async () => {
    const res = await tessera(['migrate'], { DATA_DIR: freshDir('data'), DATABASE_URL: 'mysql://u:hunter2@db/x' });
    expect(res.code).toBe(1);
    expect(res.stderr).toContain('DATABASE_URL');
    expect(res.stderr).not.toContain('hunter2');
  });

  describe.skipIf(!process.env.TEST_DATABASE_URL)('on PostgreSQL', () => {
    const admin = process.env.TEST_DATABASE_URL ?? '';
    const name = `tessera_cli_${randomBytes(6).toString('hex')}`;
    let url = '';
    let created = false;

    beforeAll(async () => {
      const c = new pg.Client({ connectionString: admin });
      await c.connect();
      try {
        await c.query(`CREATE DATABASE ${name}`);
        created = true;
      } finally {
        await c.end();
      }
      const u = new URL(admin);
      u.pathname = `/${name}`;
      url = u.toString();
    });

    afterAll(async () => {
      if (!created) return;
      const c = new pg.Client({ connectionString: admin });
      await c.connect();
      try {
        await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await c.end();
      }
    });

    it('WORKERS=2: a primary with two workers (heap capped), a killed worker is replaced, SIGTERM stops all with exit 0', async () => {
      const port = await freePort();
      const base = `http://127.0.0.1:${port}`;
      const server = start(
        main,
        [],
        envWith({ DATA_DIR: freshDir('cluster'), DATABASE_URL: url, SERVER: '127.0.0.1', SERVER_PORT: String(port), WORKERS: '2', BCRYPT_ROUNDS: '4' }),
      );
      const primary = server.child.pid!;
      let exited = false;
      const markExited = () => (exited = true);
      server.exited.then(markExited, markExited);
      const workers = () => readFileSync(`/proc/${primary}/task/${primary}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
      const ready = async () => (await fetch(`${base}/health/ready`).catch(() => null))?.status === 200;
      try {
        await waitFor('two workers', () => exited || workers().length === 2, 30_000);
        expect(exited, server.out.stderr).toBe(false);
        await waitForAsync('the cluster to serve', ready);
        const first = workers();
        for (const pid of first) {
          const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
          expect(cmdline).toContain('--max-old-space-size=128');
          expect(cmdline).toContain('--max-semi-space-size=8');
        }

        process.kill(first[0]!, 'SIGKILL');
        await waitFor('a replacement worker', () => workers().length === 2 && !workers().includes(first[0]!), 30_000);
        await waitForAsync('the cluster to serve again', ready);
        expect(server.out.stderr).toContain(`worker ${first[0]} exited (SIGKILL); starting another`);

        const all = workers();
        server.child.kill('SIGTERM');
        const stopped = await server.exited;
        expect(stopped.code, stopped.stderr).toBe(0);
        for (const pid of all) expect(existsSync(`/proc/${pid}`)).toBe(false);
      } finally {
        if (!exited) server.child.kill('SIGKILL');
      }
    }, 90_000);

    it('creates the users and sessions tables in a fresh database, idempotently', async () => {
      const dataDir = freshDir('pgdata');
      for (let i = 0; i < 2; i++) {
        const res = await tessera(['migrate'], { DATA_DIR: dataDir, DATABASE_URL: url }, 60_000);
        expect(res.code, res.stderr).toBe(0);
        expect(res.stdout).toContain('migrations applied (PostgreSQL)');
      }
      // Nothing embedded was created on the side.
      expect(existsSync(path.join(dataDir, 'db'))).toBe(false);
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      try {
        const tables = await c.query<{ table_name: string }>("select table_name from information_schema.tables where table_schema = 'public'");
        expect(tables.rows.map((r) => r.table_name)).toEqual(expect.arrayContaining(['users', 'sessions']));
        const applied = await c.query<{ n: number }>('select count(*)::int as n from drizzle.__drizzle_migrations');
        expect(applied.rows[0]!.n).toBe(journal.entries.length);
      } finally {
        await c.end();
      }
    });
  });
});

describe('the embedded database lock', () => {
  it('migrate refuses while a server holds DATA_DIR, naming its PID; works again once it stopped', async () => {
    const dataDir = freshDir('locked');
    const lockFile = path.join(dataDir, 'db', 'tessera.lock');
    const server = start(main, [], envWith({ DATA_DIR: dataDir, SERVER: '127.0.0.1', SERVER_PORT: '0' }));
    const pid = server.child.pid!;
    let exited = false;
    const markExited = () => (exited = true);
    server.exited.then(markExited, markExited);
    try {
      await waitFor(`the server to take ${lockFile}`, () => exited || existsSync(lockFile));
      expect(exited, server.out.stderr).toBe(false);
      expect(readFileSync(lockFile, 'utf8')).toBe(String(pid));

      const res = await tessera(['migrate'], { DATA_DIR: dataDir });
      expect(res.code).toBe(1);
      expect(res.stderr).toContain(`in use by process ${pid}`);
      expect(res.stderr).toContain('Stop that process first');
      expect(res.stderr).toContain('DATABASE_URL');
      // The refused command left the server's lock alone.
      expect(readFileSync(lockFile, 'utf8')).toBe(String(pid));

      // Stop the server once it is listening (its SIGTERM handler is installed by then).
      await waitFor('the server to listen', () => exited || server.out.stdout.includes('Server listening'));
      expect(exited, server.out.stderr).toBe(false);
      server.child.kill('SIGTERM');
      await waitFor('the server to stop on SIGTERM', () => exited, 15_000);
      const stopped = await server.exited;
      expect(stopped.code, stopped.stderr).toBe(0);
      expect(existsSync(lockFile)).toBe(false);
    } finally {
      if (!exited) server.child.kill('SIGKILL');
    }

    const after = await tessera(['migrate'], { DATA_DIR: dataDir }, 60_000);
    expect(after.code, after.stderr).toBe(0);
  });
});

describe('the server in production', () => {
  it('with nothing configured, exits 1 naming PUBLIC_URL, PRIVATE_KEY and DATABASE_URL', async () => {
    const dataDir = freshDir('prod');
    const res = await run(main, [], { NODE_ENV: 'production', DATA_DIR: dataDir });
    expect(res.code).toBe(1);
    expect(res.stderr).toContain('PUBLIC_URL: required when NODE_ENV=production');
    expect(res.stderr).toContain('PRIVATE_KEY');
    expect(res.stderr).toContain('DATABASE_URL');
    // It failed before generating a key or opening an embedded database.
    expect(existsSync(path.join(dataDir, 'keys'))).toBe(false);
    expect(existsSync(path.join(dataDir, 'db'))).toBe(false);
  });
});
