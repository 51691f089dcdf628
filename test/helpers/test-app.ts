import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import type { DestinationStream } from 'pino';
import { buildApp } from '../../src/app.js';
import { loadConfig, type Config, type JwtAlgorithm } from '../../src/config/index.js';
import { ManualClock } from '../../src/infra/clock.js';
import type { KeyRing } from '../../src/infra/keys.js';
import type { PasswordHasher } from '../../src/infra/password-hasher.js';
import { createTestDatabase, type TestDatabase } from './database.js';
import { testKeys } from './keys.js';

export interface TestApp {
  app: FastifyInstance;
  config: Config;
  clock: ManualClock;
  db: TestDatabase;
  close(): Promise<void>;
}

export interface TestAppOptions {
  env?: Record<string, string>;
  algorithm?: JwtAlgorithm;
  /** Reuse a database (e.g. several apps over one database); a fresh one otherwise. */
  db?: TestDatabase;
  /** Where the app's JSON log goes. */
  logStream?: DestinationStream;
  /** A password hasher the test owns (and closes); the app makes its own otherwise. */
  hasher?: PasswordHasher;
  /** Signing keys (e.g. a KEYS_DIR ring driven by `clock`); the shared test key otherwise. */
  keys?: KeyRing;
  /** The app's clock (pass it when `keys` follow it too); a ManualClock at 2026-01-15T12:00:00Z otherwise. */
  clock?: ManualClock;
}

export const TEST_ISSUER = 'http://tessera.test';

/** Builds the real app over a fresh database, with a frozen clock and bcrypt cost 4. */
export async function createTestApp(opts: TestAppOptions = {}): Promise<TestApp> {
  const algorithm = opts.algorithm ?? 'RS256';
  const dataDir = mkdtempSync(path.join(tmpdir(), 'tessera-test-'));
  const config = loadConfig({
    NODE_ENV: 'test',
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    PUBLIC_URL: TEST_ISSUER,
    JWT_AUDIENCE: 'tessera-test',
    JWT_ALGORITHM: algorithm,
    BCRYPT_ROUNDS: '4',
    // Most suites sign in right after registering; the email suites turn this back on.
    REQUIRE_EMAIL_VERIFICATION: 'false',
    // Suites sign in many times from one address (127.0.0.1); the rate-limit suites turn these back on.
    RATE_LIMIT_ENABLED: 'false',
    BRUTE_FORCE_ENABLED: 'false',
    // Mail without SMTP goes to DATA_DIR/mail: a directory of this app's own.
    DATA_DIR: dataDir,
    ...opts.env,
  });
  const db = opts.db ?? (await createTestDatabase());
  const clock = opts.clock ?? new ManualClock(new Date('2026-01-15T12:00:00Z'));
  const ring = opts.keys ?? (await testKeys(algorithm)).ring;
  const app = await buildApp(config, { database: db.handle, keys: ring, clock, mfaKey: randomBytes(32), logStream: opts.logStream, hasher: opts.hasher });
  await app.ready();
  return {
    app,
    config,
    clock,
    db,
    close: async () => {
      await app.close();
      if (!opts.db) await db.drop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export const json = (res: LightMyRequestResponse) => res.json() as Record<string, unknown>;

let counter = 0;
/** A unique email for this test file. */
export const uniqueEmail = (prefix = 'user') => `${prefix}.${process.pid}.${Date.now()}.${++counter}@example.com`;

export const PASSWORD = 'correct horse battery staple';

/** Registers and signs in a user; returns its tokens. */
export async function signUp(app: FastifyInstance, email = uniqueEmail(), password = PASSWORD) {
  const reg = await app.inject({ method: 'POST', url: '/auth/register', payload: { email, password } });
  if (reg.statusCode !== 201) throw new Error(`register failed: ${reg.statusCode} ${reg.body}`);
  const tok = await app.inject({ method: 'POST', url: '/auth/login', payload: { email, password } });
  if (tok.statusCode !== 200) throw new Error(`login failed: ${tok.statusCode} ${tok.body}`);
  const body = tok.json() as { access_token: string; refresh_token: string };
  return { email, password, userId: (reg.json() as { id: string }).id, access: body.access_token, refresh: body.refresh_token };
}

export const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
