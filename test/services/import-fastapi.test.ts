import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import bcrypt from 'bcrypt';
import { sql } from 'drizzle-orm';
import { decodeJwt } from 'jose';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAuditService } from '../../src/features/audit/service.js';
import { readFastapiUsers } from '../../src/features/import/fastapi-source.js';
import type { SourceUser } from '../../src/features/import/record.js';
import { createImportService, type ImportConflict } from '../../src/features/import/service.js';
import { createRbacService } from '../../src/features/rbac/service.js';
import { ManualClock } from '../../src/infra/clock.js';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { runCli } from '../helpers/cli-process.js';
import { SmtpCatcher, tokenIn } from '../helpers/smtp.js';
import { createTestApp, json, type TestApp } from '../helpers/test-app.js';

// `tessera import fastapi-auth` against a real PostgreSQL database built with the original
// service's schema (SQLAlchemy models of the FastAPI service), then sign-ins over HTTP.

const base = process.env.TEST_DATABASE_URL ?? '';

// The original's users table, as its SQLAlchemy model and Alembic migration create it.
const DDL = `
  CREATE TYPE authprovider AS ENUM ('EMAIL', 'GOOGLE', 'APPLE');
  CREATE TABLE users (
    id serial PRIMARY KEY,
    uuid uuid NOT NULL UNIQUE,
    email varchar NOT NULL UNIQUE,
    is_active boolean DEFAULT false,
    confirmation_token varchar,
    hashed_password varchar,
    first_name varchar,
    last_name varchar,
    auth_provider authprovider NOT NULL DEFAULT 'EMAIL',
    third_party_id varchar UNIQUE,
    created_at timestamp DEFAULT now(),
    updated_at timestamp DEFAULT now()
  );`;

interface Row {
  email: string;
  active: boolean;
  password?: string;
  hash?: string | null;
  provider?: 'EMAIL' | 'GOOGLE' | 'APPLE';
  first?: string;
  last?: string;
}

/** A scratch database on the test server; dropped at the end. */
async function scratchDatabase(prefix: string): Promise<{ url: string; drop(): Promise<void> }> {
  const name = `${prefix}_${randomUUID().replace(/-/g, '').slice(0, 12)}`;
  const admin = new pg.Client({ connectionString: base });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = new URL(base);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop: async () => {
      const c = new pg.Client({ connectionString: base });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await c.end();
    },
  };
}

/** Creates the original's schema in a fresh database and inserts `rows` (in order: source ids 1…n); returns each row's uuid. */
async function sourceWith(rows: Row[]): Promise<{ url: string; uuids: string[]; drop(): Promise<void> }> {
  const db = await scratchDatabase('fastapi_src');
  const c = new pg.Client({ connectionString: db.url });
  await c.connect();
  await c.query(DDL);
  const uuids: string[] = [];
  for (const [i, r] of rows.entries()) {
    const uuid = randomUUID();
    uuids.push(uuid);
    const hash = r.hash !== undefined ? r.hash : r.password ? bcrypt.hashSync(r.password, 4 + (i % 2)) : null;
    await c.query(
      `INSERT INTO users (uuid, email, is_active, hashed_password, first_name, last_name, auth_provider, third_party_id, created_at, updated_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, '2023-05-01 10:00:00', '2024-02-03 04:05:06')`,
      [
        uuid,
        r.email,
        r.active,
        hash,
        r.first ?? null,
        r.last ?? null,
        r.provider ?? 'EMAIL',
        r.provider && r.provider !== 'EMAIL' ? `${r.provider}-${i}` : null,
      ],
    );
  }
  await c.end();
  return { url: db.url, uuids, drop: () => db.drop() };
}

const rowsOf = async (t: TestApp, q: string) => ((await t.db.handle.db.execute(sql.raw(q))) as unknown as { rows: Array<Record<string, unknown>> }).rows;

async function counts(t: TestApp): Promise<{ users: number; roles: number; audit: number; identities: number }> {
  const q = async (table: string) => Number((await rowsOf(t, `select count(*)::int as n from ${table}`))[0]?.n ?? -1);
  return {
    users: await q('users'),
    roles: await q('user_roles'),
    audit: await q(`audit_events where type = 'user_imported'`),
    identities: await q('identities'),
  };
}

function importer(t: TestApp) {
  const db = t.db.handle.db;
  const clock = new ManualClock(new Date('2026-01-15T12:00:00Z'));
  return createImportService({ db, clock, rbac: createRbacService({ db, clock, defaultRole: 'user' }), audit: createAuditService({ db, clock }) });
}

async function importFrom(t: TestApp, batches: AsyncIterable<SourceUser[]>, dryRun = false) {
  const conflicts: ImportConflict[] = [];
  const summary = await importer(t).run(batches, { source: 'fastapi-auth', dryRun, onConflict: (c) => conflicts.push(c) });
  return { summary, conflicts };
}

async function cli(t: TestApp, args: string[], dataDir: string): Promise<{ code: number | null; out: string }> {
  return runCli(args, { DATABASE_URL: t.db.url ?? '', DATA_DIR: dataDir });
}

const signIn = (t: TestApp, email: string, password: string) => t.app.inject({ method: 'POST', url: '/auth/login', payload: { email, password } });

const ROWS: Row[] = [
  /* 1 */ { email: 'alice@example.com', active: true, password: 'alice original pw 1', first: 'Alice', last: 'Liddell' },
  /* 2 */ { email: 'bob@example.com', active: false, password: 'bob original pw 22' },
  /* 3 */ { email: 'carol@example.com', active: true, password: 'carol random pw 333', provider: 'GOOGLE', first: 'Carol' },
  /* 4 */ { email: 'dave@example.com', active: true, provider: 'APPLE' },
  /* 5 */ { email: 'Erin@Example.com', active: true, password: 'erin original pw 5' },
  /* 6 */ { email: 'erin@example.com', active: true, password: 'someone else pw 6' },
  /* 7 */ { email: 'frank@example.com', active: true, hash: '$2b$12$tooshort' },
  /* 8 */ { email: 'grace@example.com', active: true, hash: 'plaintext-password' },
  /* 9 */ { email: 'heidi@example.com', active: true, hash: '$argon2id$v=19$m=65536,t=3,p=4$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG' },
  /* 10 */ { email: 'not an email', active: true, password: 'ivan original pw 10' },
  /* 11 */ { email: 'judy@localhost', active: true, password: 'judy original pw 11' },
  /* 12 */ { email: 'mallory@example.com', active: true, hash: null },
  /* 13 */ { email: 'php@example.com', active: true, hash: bcrypt.hashSync('php original pw 13', 4).replace(/^\$2b\$/, '$2y$') },
  /* 14 */ { email: 'taken@example.com', active: true, password: 'taken original pw 14' },
  /* 15 */ { email: 'ｅｒｉｎ@example.com', active: true, password: 'fullwidth erin pw 15' },
];
// 6 and 15 (same mailbox as 5: case, fullwidth), 7, 8, 9 (hashes), 10, 11 (addresses), 12 (no hash), 14 (taken)
const EXPECTED_CONFLICTS = 9;

describe.skipIf(!base)('import fastapi-auth (real PostgreSQL)', () => {
  let src: Awaited<ReturnType<typeof sourceWith>>;
  let t: TestApp;
  let dataDir: string;
  let smtp: SmtpCatcher;

  beforeAll(async () => {
    src = await sourceWith(ROWS);
    smtp = await SmtpCatcher.start();
    t = await createTestApp({
      env: {
        REQUIRE_EMAIL_VERIFICATION: 'true',
        SMTP_SERVER: '127.0.0.1',
        SMTP_PORT: String(smtp.port),
        SMTP_TIMEOUT_MS: '5000',
        OUTBOX_POLL_INTERVAL_MS: '50',
      },
    });
    dataDir = mkdtempSync(path.join(tmpdir(), 'tessera-import-'));
    // An account that signed up on Tessera before the import: its address is never taken over.
    expect(
      (await t.app.inject({ method: 'POST', url: '/auth/register', payload: { email: 'taken@example.com', password: 'the tessera owner pw' } })).statusCode,
    ).toBe(201);
  });
  afterAll(async () => {
    await t?.close();
    await smtp?.close();
    await src?.drop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('--dry-run counts exactly what it would do and writes nothing', async () => {
    const before = await counts(t);
    const { summary, conflicts } = await importFrom(t, readFastapiUsers(src.url, 4), true);
    expect(summary).toMatchObject({ read: 15, imported: 6, alreadyPresent: 0, conflicts: EXPECTED_CONFLICTS, mustProveAddress: 2 });
    expect(conflicts).toHaveLength(EXPECTED_CONFLICTS);
    expect(await counts(t)).toEqual(before);
  });

  it('the CLI imports, reports every conflict with its reason and exits 1; the users sign in with their original passwords', async () => {
    const before = await counts(t);
    const run = await cli(t, ['import', 'fastapi-auth', '--from', src.url, '--batch-size', '4'], dataDir);
    expect(run.code, run.out).toBe(1);
    expect(run.out).toContain('read 15, imported 6, skipped (already present) 0, conflicts 9');
    expect(run.out).toContain(`conflict: id 6 "erin@example.com": the same mailbox as id 5 (imported as ${src.uuids[4]})`);
    expect(run.out).toMatch(/id 7 .*not a bcrypt hash/);
    expect(run.out).toMatch(/id 8 .*not a bcrypt hash/);
    expect(run.out).toMatch(/id 9 .*argon2/);
    expect(run.out).toMatch(/id 10 .*invalid email address/);
    expect(run.out).toMatch(/id 11 .*invalid email address/);
    expect(run.out).toMatch(/id 12 .*without a password hash/);
    expect(run.out).toMatch(/id 14 "taken@example.com": the address taken@example.com already belongs/);
    expect(run.out).toContain(`conflict: id 15 "ｅｒｉｎ@example.com": the address erin@example.com already belongs to the Tessera account ${src.uuids[4]}`);
    expect(run.out).toContain('2 imported accounts have no password and an unconfirmed address');
    const after = await counts(t);
    expect(after).toEqual({ users: before.users + 6, roles: before.roles + 6, audit: 6, identities: 0 });

    // Active users sign in with their original password; `sub` is the original uuid.
    for (const [i, email, password] of [
      [0, 'alice@example.com', 'alice original pw 1'],
      [4, 'erin@example.com', 'erin original pw 5'],
      [12, 'php@example.com', 'php original pw 13'],
    ] as const) {
      const res = await signIn(t, email, password);
      expect(res.statusCode, `${email}: ${res.body}`).toBe(200);
      expect(decodeJwt(json(res).access_token as string)).toMatchObject({ sub: src.uuids[i], email, email_verified: true, roles: ['user'] });
    }
    const me = await t.app.inject({
      method: 'GET',
      url: '/users/me',
      headers: { authorization: `Bearer ${json(await signIn(t, 'alice@example.com', 'alice original pw 1')).access_token as string}` },
    });
    expect(json(me)).toMatchObject({ id: src.uuids[0], first_name: 'Alice', last_name: 'Liddell', created_at: '2023-05-01T10:00:00.000Z' });

    // The inactive user has the right password but must confirm the address first.
    const bob = await signIn(t, 'bob@example.com', 'bob original pw 22');
    expect(bob.statusCode).toBe(403);
    expect(json(bob).error).toBe('email_not_verified');
    // The social user has no password here (whatever the original stored) and no identity was linked.
    const carol = await signIn(t, 'carol@example.com', 'carol random pw 333');
    expect(carol.statusCode).toBe(400);
    expect(json(carol).error).toBe('invalid_grant');
    const social = await rowsOf(
      t,
      `select email, password_hash, email_verified_at from users where id in ('${src.uuids[2]}', '${src.uuids[3]}') order by email`,
    );
    expect(social).toEqual([
      { email: 'carol@example.com', password_hash: null, email_verified_at: null },
      { email: 'dave@example.com', password_hash: null, email_verified_at: null },
    ]);
    // The second spelling of Erin's mailbox and the Tessera account of taken@ are untouched.
    expect((await signIn(t, 'erin@example.com', 'someone else pw 6')).statusCode).toBe(400);
    expect((await signIn(t, 'taken@example.com', 'taken original pw 14')).statusCode).toBe(400);
    // (Its owner's password still opens it: it is unconfirmed, so the answer past the password check is email_not_verified.)
    expect(json(await signIn(t, 'taken@example.com', 'the tessera owner pw')).error).toBe('email_not_verified');
  });

  it('a social user of the original proves the address with a password reset, then signs in as the same uuid', async () => {
    const post = (url: string, payload: object) => t.app.inject({ method: 'POST', url, payload });
    expect((await post('/auth/password/forgot', { email: 'dave@example.com' })).statusCode).toBe(202);
    const token = tokenIn(await smtp.waitFor('dave@example.com', /reset/i));
    expect((await post('/auth/password/reset', { token, password: 'dave chose this pw 4' })).statusCode).toBe(204);
    const dave = await signIn(t, 'dave@example.com', 'dave chose this pw 4');
    expect(dave.statusCode, dave.body).toBe(200);
    expect(decodeJwt(json(dave).access_token as string)).toMatchObject({ sub: src.uuids[3], email_verified: true });
  });

  it('a second run changes nothing: every imported row is already present, the conflicts are reported again', async () => {
    const before = await counts(t);
    const { summary, conflicts } = await importFrom(t, readFastapiUsers(src.url, 5));
    expect(summary).toMatchObject({ read: 15, imported: 0, alreadyPresent: 6, conflicts: EXPECTED_CONFLICTS, mustProveAddress: 0 });
    expect(conflicts).toHaveLength(EXPECTED_CONFLICTS);
    expect(await counts(t)).toEqual(before);
  });

  it('a hash of a lower cost than BCRYPT_ROUNDS is upgraded at the next sign-in', async () => {
    const stronger = await createTestApp({ db: t.db, env: { BCRYPT_ROUNDS: '6' } });
    try {
      const hashOf = async () => String((await rowsOf(t, `select password_hash from users where id = '${src.uuids[0]}'`))[0]?.password_hash);
      expect(await hashOf()).toMatch(/^\$2b\$04\$/);
      expect((await signIn(stronger, 'alice@example.com', 'alice original pw 1')).statusCode).toBe(200);
      expect(await hashOf()).toMatch(/^\$2b\$06\$/);
      expect((await signIn(stronger, 'alice@example.com', 'alice original pw 1')).statusCode).toBe(200);
    } finally {
      await stronger.app.close();
    }
  });
});

describe.skipIf(!base)('a run that stops half-way', () => {
  let src: Awaited<ReturnType<typeof sourceWith>>;
  let target: TestDatabase;
  let t: TestApp;
  beforeAll(async () => {
    src = await sourceWith(
      Array.from({ length: 10 }, (_, i) => ({
        email: `user${i}@example.com`,
        active: true,
        hash: '$2b$04$abcdefghijklmnopqrstuu5F7r8/bK3h1WQm0k3sV2VvCwAqgmLRi',
      })),
    );
    target = await createTestDatabase();
    t = await createTestApp({ db: target });
  });
  afterAll(async () => {
    await t?.close();
    await target?.drop();
    await src?.drop();
  });

  it('continues after a crash: the next run imports the rest, and nothing twice', async () => {
    // The process dies after the second batch of 3 (its transaction committed, the third never started).
    async function* crashAfterTwo() {
      let n = 0;
      for await (const batch of readFastapiUsers(src.url, 3)) {
        if (++n > 2) throw new Error('killed');
        yield batch;
      }
    }
    await expect(importFrom(t, crashAfterTwo())).rejects.toThrow('killed');
    expect((await counts(t)).users).toBe(6);
    const again = await importFrom(t, readFastapiUsers(src.url, 3));
    expect(again.summary).toMatchObject({ read: 10, imported: 4, alreadyPresent: 6, conflicts: 0 });
    // Or from where it stopped (the last source id the progress printed).
    const resumed = await importFrom(t, readFastapiUsers(src.url, 3, 6));
    expect(resumed.summary).toMatchObject({ read: 4, imported: 0, alreadyPresent: 4, conflicts: 0 });
    expect(await counts(t)).toEqual({ users: 10, roles: 10, audit: 10, identities: 0 });
    const ids = (await rowsOf(t, 'select id from users order by email')).map((r) => r.id);
    expect(ids).toEqual(src.uuids);
  });
});
