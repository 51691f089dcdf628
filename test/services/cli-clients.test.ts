import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { decodeJwt } from 'jose';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { runCli } from '../helpers/cli-process.js';
import { testKeys } from '../helpers/keys.js';
import { PASSWORD, createTestApp, json, signUp, type TestApp } from '../helpers/test-app.js';

// `tessera clients create|list|show|rotate-secret|delete` as real processes on PostgreSQL; the
// secrets they print authenticate at the token endpoint of a server on the same database.

let db: TestDatabase;
let t: TestApp;
let dataDir: string;

beforeAll(async () => {
  db = await createTestDatabase();
  t = await createTestApp({ db });
  dataDir = mkdtempSync(path.join(tmpdir(), 'tessera-cli-clients-'));
});
afterAll(async () => {
  await t?.close();
  await db?.drop();
  rmSync(dataDir, { recursive: true, force: true });
});

async function cli(args: string[]): Promise<{ code: number | null; out: string }> {
  return runCli(args, { DATABASE_URL: db.url ?? '', DATA_DIR: dataDir, PRIVATE_KEY: (await testKeys('RS256')).privateKey, BCRYPT_ROUNDS: '4' });
}

const basic = (id: string, secret: string) => ({ authorization: `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}` });

it('create prints the secret once; rotate-secret --overlap keeps the old one working; delete ends it', async () => {
  const u = await signUp(t.app);
  const grant = (id: string, secret: string) =>
    t.app.inject({
      method: 'POST',
      url: '/auth/token',
      headers: basic(id, secret),
      payload: { grant_type: 'password', username: u.email, password: PASSWORD },
    });

  const created = await cli([
    'clients',
    'create',
    '--name',
    'Backend',
    '--type',
    'confidential',
    '--first-party',
    '--grant',
    'password,refresh_token',
    '--access-token-ttl',
    '5m',
    '--json',
  ]);
  expect(created.code, created.out).toBe(0);
  const body = JSON.parse(created.out) as { client: { client_id: string; access_token_seconds: number; grant_types: string[] }; client_secret: string };
  expect(body.client).toMatchObject({ access_token_seconds: 300, grant_types: ['password', 'refresh_token'] });
  const id = body.client.client_id;
  const first = await grant(id, body.client_secret);
  expect(first.statusCode, first.body).toBe(200);
  expect(decodeJwt(json(first).access_token as string).client_id).toBe(id);

  const bad = await cli(['clients', 'create', '--name', 'Bad', '--type', 'confidential', '--redirect-uri', 'http://localhost:3000/cb']);
  expect(bad.code).toBe(1);
  expect(bad.out).toContain('localhost');

  const rotated = await cli(['clients', 'rotate-secret', id, '--overlap', '24h', '--json']);
  expect(rotated.code, rotated.out).toBe(0);
  const r = JSON.parse(rotated.out) as { client_secret: string; previous_secret_valid_until: string };
  expect(r.previous_secret_valid_until).toEqual(expect.any(String));
  expect((await grant(id, body.client_secret)).statusCode).toBe(200);
  expect((await grant(id, r.client_secret)).statusCode).toBe(200);

  const list = await cli(['clients', 'list', '--json']);
  expect((JSON.parse(list.out) as { clients: Array<{ client_id: string }> }).clients.map((c) => c.client_id)).toEqual([id]);
  const shown = await cli(['clients', 'show', id]);
  expect(shown.code, shown.out).toBe(0);
  expect(shown.out).toContain('(current)');
  expect(shown.out).not.toContain(r.client_secret);

  expect((await cli(['clients', 'delete', id])).code).toBe(0);
  expect((await grant(id, r.client_secret)).statusCode).toBe(401);
  const missing = await cli(['clients', 'show', id]);
  expect(missing.code).toBe(1);
  // Seven CLI processes (tsx, each builds the app): slow on a loaded machine.
}, 240_000);
