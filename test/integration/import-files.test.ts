import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import bcrypt from 'bcrypt';
import { sql } from 'drizzle-orm';
import { decodeJwt } from 'jose';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createAuditService } from '../../src/features/audit/service.js';
import { readFileUsers } from '../../src/features/import/file-source.js';
import { idForEmail } from '../../src/features/import/record.js';
import { createImportService, type ImportConflict } from '../../src/features/import/service.js';
import { createRbacService } from '../../src/features/rbac/service.js';
import { createTestApp, json, type TestApp } from '../helpers/test-app.js';

// `tessera import csv|jsonl`: the same import as fastapi-auth, from a file; then sign-ins over HTTP.

let t: TestApp;
let dir: string;

beforeAll(async () => {
  t = await createTestApp({ env: { REQUIRE_EMAIL_VERIFICATION: 'true' } });
  dir = mkdtempSync(path.join(tmpdir(), 'tessera-import-files-'));
  const db = t.db.handle.db;
  await createRbacService({ db, clock: t.clock, defaultRole: 'user' }).create(db, null, { name: 'editor', permissions: ['posts:write'] });
});
afterAll(async () => {
  await t?.close();
  rmSync(dir, { recursive: true, force: true });
});

async function importFile(format: 'csv' | 'jsonl', text: string, dryRun = false) {
  const file = path.join(dir, `users-${Math.random().toString(36).slice(2)}.${format}`);
  writeFileSync(file, text);
  const db = t.db.handle.db;
  const service = createImportService({
    db,
    clock: t.clock,
    rbac: createRbacService({ db, clock: t.clock, defaultRole: 'user' }),
    audit: createAuditService({ db, clock: t.clock }),
  });
  const conflicts: ImportConflict[] = [];
  const summary = await service.run(readFileUsers(format, file, 2), { source: format, dryRun, onConflict: (c) => conflicts.push(c) });
  return { summary, conflicts };
}

const rows = async (q: string) => ((await t.db.handle.db.execute(sql.raw(q))) as unknown as { rows: Array<Record<string, unknown>> }).rows;
const countUsers = async () => Number((await rows('select count(*)::int as n from users'))[0]?.n);
const signIn = (email: string, password: string) => t.app.inject({ method: 'POST', url: '/auth/login', payload: { email, password } });

it('imports a CSV file (quoted fields, roles, verified flag); conflicts carry reasons; a second run changes nothing', async () => {
  const hash = bcrypt.hashSync('csv user password 1', 4);
  const csv = [
    'email,password_hash,first_name,last_name,email_verified,roles',
    `Ann@Example.com,${hash},"Ann, the first","O""Neil",true,"user editor"`,
    `ben@example.com,${hash},"Ben`,
    `Second line",,false,`,
    `ann@example.com,${hash},,,true,`,
    `cat@example.com,"$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA",,,true,`,
    `dan@example.com,${hash},,,true,superuser`,
    `eve@example.com,,Eve,,true,`,
    `not-an-address,${hash},,,true,`,
    '',
  ].join('\r\n');
  const before = await countUsers();
  const dry = await importFile('csv', csv, true);
  expect(dry.summary, JSON.stringify(dry.conflicts)).toMatchObject({ read: 7, imported: 3, conflicts: 4 });
  expect(await countUsers()).toBe(before);

  const { summary, conflicts } = await importFile('csv', csv);
  expect(summary).toMatchObject({ read: 7, imported: 3, alreadyPresent: 0, conflicts: 4, mustProveAddress: 0 });
  expect(conflicts.map((c) => `${c.sourceRef}: ${c.reason}`)).toEqual([
    expect.stringMatching(/^line 6: argon2 password hash/),
    // Another spelling of line 2's mailbox (batches of 2: line 2 was committed in the batch before).
    `line 5: the address ann@example.com already belongs to the Tessera account ${idForEmail('Ann@Example.com')}; never merged`,
    'line 7: no such role: superuser (create it first: POST /admin/roles)',
    'line 9: invalid email address (not a plain local@domain)',
  ]);
  expect(await countUsers()).toBe(before + 3);

  const ann = await signIn('ann@example.com', 'csv user password 1');
  expect(ann.statusCode, ann.body).toBe(200);
  expect(decodeJwt(json(ann).access_token as string)).toMatchObject({ sub: idForEmail('Ann@Example.com'), roles: ['editor', 'user'], email_verified: true });
  const me = await t.app.inject({ method: 'GET', url: '/users/me', headers: { authorization: `Bearer ${json(ann).access_token as string}` } });
  expect(json(me)).toMatchObject({ first_name: 'Ann, the first', last_name: 'O"Neil' });
  expect(json(await signIn('ben@example.com', 'csv user password 1')).error).toBe('email_not_verified');
  // Imported without a hash: no password sign-in (a reset sets one).
  expect((await signIn('eve@example.com', 'anything at all 1')).statusCode).toBe(400);

  const again = await importFile('csv', csv);
  expect(again.summary).toMatchObject({ read: 7, imported: 0, alreadyPresent: 3, conflicts: 4 });
  expect(await countUsers()).toBe(before + 3);
});

it('imports JSON Lines with the same checks', async () => {
  const hash = bcrypt.hashSync('jsonl user password 2', 5).replace(/^\$2b\$/, '$2a$');
  const id = '0b9e5b3c-3f8e-4e3c-9d55-0d6f1f0c2a11';
  const lines = [
    JSON.stringify({ id, email: 'jo@example.com', password_hash: hash, email_verified: true, created_at: '2021-03-04T05:06:07Z' }),
    '{"email": "broken"',
    JSON.stringify({ email: 'kim@example.com', password_hash: 'md5:abc', email_verified: true }),
  ].join('\n');
  const { summary, conflicts } = await importFile('jsonl', lines);
  expect(summary).toMatchObject({ read: 3, imported: 1, conflicts: 2 });
  expect(conflicts.map((c) => c.sourceRef)).toEqual(['line 2', 'line 3']);
  const jo = await signIn('jo@example.com', 'jsonl user password 2');
  expect(jo.statusCode, jo.body).toBe(200);
  expect(decodeJwt(json(jo).access_token as string).sub).toBe(id);
  expect((await importFile('jsonl', lines)).summary).toMatchObject({ imported: 0, alreadyPresent: 1, conflicts: 2 });
});
