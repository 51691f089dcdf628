import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { inArray } from 'drizzle-orm';
import { decodeJwt } from 'jose';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { users } from '../../src/features/accounts/tables.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { runCli } from '../helpers/cli-process.js';
import { testKeys } from '../helpers/keys.js';
import { bearer, createTestApp, json, uniqueEmail, type TestApp } from '../helpers/test-app.js';

// Bootstrapping the first admin without SQL: `tessera users create --admin` (password on
// stdin), `users set-role`, `roles list`, as real processes on PostgreSQL; the admin then
// signs in through the API and can use /admin.

let db: TestDatabase;
let t: TestApp;
let dataDir: string;

beforeAll(async () => {
  db = await createTestDatabase();
  t = await createTestApp({ db });
  dataDir = mkdtempSync(path.join(tmpdir(), 'tessera-cli-admin-'));
});
afterAll(async () => {
  await t?.close();
  await db?.drop();
  rmSync(dataDir, { recursive: true, force: true });
});

async function cli(args: string[], stdin = ''): Promise<{ code: number | null; out: string }> {
  return runCli(args, { DATABASE_URL: db.url ?? '', DATA_DIR: dataDir, PRIVATE_KEY: (await testKeys('RS256')).privateKey, BCRYPT_ROUNDS: '4' }, stdin);
}

it('users create --admin → the admin signs in and administers; set-role and roles list work', async () => {
  const email = uniqueEmail('first-admin');
  const password = 'the first admin passphrase 7';
  const created = await cli(['users', 'create', '--email', email, '--admin'], `${password}\n`);
  expect(created.code, created.out).toBe(0);
  expect(created.out).toContain('with the admin role');

  const login = await t.app.inject({ method: 'POST', url: '/auth/login', payload: { email, password } });
  expect(login.statusCode, login.body).toBe(200);
  const access = json(login).access_token as string;
  expect(decodeJwt(access)).toMatchObject({ roles: ['admin', 'user'], permissions: ['*'], email_verified: true });
  expect((await t.app.inject({ method: 'GET', url: '/admin/users', headers: bearer(access) })).statusCode).toBe(200);

  const weak = await cli(['users', 'create', '--email', uniqueEmail('weak')], 'password\n');
  expect(weak.code).toBe(1);
  expect(weak.out).toContain('too common');
  const duplicate = await cli(['users', 'create', '--email', email], `${password}\n`);
  expect(duplicate.code).toBe(1);
  expect(duplicate.out).toContain('already exists');

  const other = uniqueEmail('helper');
  expect((await cli(['users', 'create', '--email', other], `${password}\n`)).code).toBe(0);
  const granted = await cli(['users', 'set-role', '--email', other, '--role', 'admin']);
  expect(granted.code, granted.out).toBe(0);
  const tokens = json(await t.app.inject({ method: 'POST', url: '/auth/login', payload: { email: other, password } }));
  expect(decodeJwt(tokens.access_token as string).roles).toContain('admin');
  expect((await cli(['users', 'set-role', '--email', other, '--role', 'admin', '--remove'])).code).toBe(0);
  expect((await cli(['users', 'set-role', '--email', other, '--role', 'nope'])).out).toContain('No such role');
  expect((await cli(['users', 'set-role', '--email', uniqueEmail('ghost'), '--role', 'admin'])).out).toContain('no user with the email');

  const roles = await cli(['roles', 'list']);
  expect(roles.code).toBe(0);
  expect(roles.out).toMatch(/^admin\t1 user\t\*\t\(built-in\)/m);
  expect(roles.out).toMatch(/^user\t\d+ users?\t-\t\(built-in\)/m);
});

it('users create reads the password as one line, or two equal lines, from a pipe; never all of stdin', async () => {
  const signIn = (email: string, password: string) => t.app.inject({ method: 'POST', url: '/auth/login', payload: { email, password } });
  const pw = 'a piped passphrase 42';

  // Both prompts answered through a pipe: the password is the line, not "line\nline".
  const twice = uniqueEmail('piped-twice');
  const created = await cli(['users', 'create', '--email', twice], `${pw}\n${pw}\n`);
  expect(created.code, created.out).toBe(0);
  expect((await signIn(twice, pw)).statusCode).toBe(200);
  expect((await signIn(twice, `${pw}\n${pw}`)).statusCode).toBe(400);

  // CRLF line ends (a file written on Windows) end lines too; no final line break is fine.
  const crlf = uniqueEmail('piped-crlf');
  expect((await cli(['users', 'create', '--email', crlf], `${pw}\r\n${pw}`)).code).toBe(0);
  expect((await signIn(crlf, pw)).statusCode).toBe(200);

  // Refused before anything is written: a mismatch, a third line, a carriage return inside, nothing at all.
  const refusals: Array<[string, string]> = [
    [`${pw}\nsomething else\n`, 'the two passwords differ'],
    [`${pw}\n${pw}\n${pw}\n`, 'more than two lines'],
    [`${pw}\rX\n`, 'carriage return'],
    ['', 'no password on stdin'],
    ['\n', 'empty'],
  ];
  const refused = await Promise.all(
    refusals.map(async ([stdin]) => {
      const email = uniqueEmail('piped-bad');
      return { email, res: await cli(['users', 'create', '--email', email], stdin) };
    }),
  );
  for (const [i, { email, res }] of refused.entries()) {
    expect(res.code, res.out).toBe(1);
    expect(res.out).toContain(refusals[i]![1]);
    expect((await signIn(email, pw)).statusCode).toBe(400);
  }
  const rows = await t.db.handle.db
    .select({ email: users.email })
    .from(users)
    .where(
      inArray(
        users.email,
        refused.map((r) => r.email),
      ),
    );
  expect(rows).toEqual([]);
});
