import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../helpers/free-port.js';
import { testKeys } from '../helpers/keys.js';

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

async function start(env: Record<string, string>): Promise<{ code: number | null; stderr: string; stdout: string }> {
  const child = spawn(process.execPath, entry, {
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
    expectOneClearLine(res, /^tessera: cannot connect to PostgreSQL/, new RegExp(`postgres://tessera@127\\.0\\.0\\.1:${port}/tessera`), /DATABASE_URL/, /ECONNREFUSED/);
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
