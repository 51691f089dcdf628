import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Config } from './config/index.js';
import { SetupError } from './fatal.js';
import { openDatabase, type DatabaseHandle } from './infra/db/client.js';
import { describeConnectFailure, redactedUrl } from './infra/db/connect-failure.js';
import { KeyError } from './infra/keys.js';
import { loadKeyRing, type LoadedKeys } from './infra/key-store.js';

/** Opens the configured database (PostgreSQL, or PGlite in DATA_DIR/db). */
export function openConfiguredDatabase(config: Config, onIdleError?: (err: Error) => void): Promise<DatabaseHandle> {
  return openDatabase({
    url: config.database.url,
    pgliteDir: path.join(config.dataDir, 'db'),
    poolMax: config.database.poolMax,
    connectTimeoutMs: config.database.connectTimeoutMs,
    statementTimeoutMs: config.database.statementTimeoutMs,
    ...(onIdleError ? { onIdleError } : {}),
  });
}

/**
 * Opens the configured database and checks that it answers: at start, an
 * unreachable or misnamed PostgreSQL is one line naming the setting (without
 * the password) and the cause, instead of the first query's stack.
 */
export async function connectConfiguredDatabase(config: Config, onIdleError?: (err: Error) => void): Promise<DatabaseHandle> {
  const database = await openConfiguredDatabase(config, onIdleError);
  const url = config.database.url;
  if (!url) return database;
  try {
    await database.ping();
  } catch (err) {
    const cause = describeConnectFailure(err);
    // best effort: the connect failure below is what the operator must see
    await database.close().catch(() => undefined);
    if (!cause) throw err;
    const setting = process.env.DATABASE_URL ? 'DATABASE_URL' : 'DB_HOST, DB_PORT, DB_NAME, DB_USER, DB_PASSWORD';
    throw new SetupError(`cannot connect to PostgreSQL at ${redactedUrl(url)} (${setting}): ${cause}`);
  }
  return database;
}

/**
 * The key that encrypts TOTP secrets: MFA_ENCRYPTION_KEY, or outside production
 * one generated once into DATA_DIR/keys/mfa.key (0600) and reused.
 */
export function loadMfaKey(config: Config): Buffer {
  if (config.mfa.encryptionKey) return config.mfa.encryptionKey;
  if (config.env === 'production') throw new KeyError('MFA_ENCRYPTION_KEY is not set.');
  const dir = path.join(config.dataDir, 'keys');
  const file = path.join(dir, 'mfa.key');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  try {
    writeFileSync(file, randomBytes(32).toString('base64'), { mode: 0o600, flag: 'wx' });
  } catch (err) {
    // another process generated it first: use theirs
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  const key = Buffer.from(readFileSync(file, 'utf8').trim(), 'base64');
  if (key.length !== 32) throw new KeyError(`${file} does not hold a 32-byte base64 key.`);
  return key;
}

/** The directory the signing keys live in: KEYS_DIR, or outside production DATA_DIR/keys; null with PRIVATE_KEY. */
export function configuredKeysDir(config: Config): string | null {
  if (config.jwt.privateKeyPem) return null;
  if (config.jwt.keysDir) return config.jwt.keysDir;
  return config.env === 'production' ? null : path.join(config.dataDir, 'keys');
}

/**
 * Loads the signing keys: PRIVATE_KEY (+ PREVIOUS_PUBLIC_KEYS), or KEYS_DIR;
 * outside production a missing key is generated once into DATA_DIR/keys (or KEYS_DIR).
 */
export function loadConfiguredKeys(config: Config, clock?: { now(): Date }): Promise<LoadedKeys> {
  return loadKeyRing({
    algorithm: config.jwt.algorithm,
    privateKeyPem: config.jwt.privateKeyPem,
    publicKeyPem: config.jwt.publicKeyPem,
    previousPublicKeysPem: config.jwt.previousPublicKeysPem,
    keysDir: config.jwt.keysDir,
    devKeysDir: config.env === 'production' ? null : path.join(config.dataDir, 'keys'),
    ...(clock ? { clock } : {}),
  });
}

interface ReloadLog {
  info(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

/**
 * Keeps a process's keys in step with its keys directory: re-reads it every
 * KEYS_RELOAD_INTERVAL and on SIGHUP. A directory that cannot be read (a broken
 * new file) leaves the keys loaded before in place and logs an error. Returns
 * a function that stops watching.
 */
export function watchKeys(loaded: LoadedKeys, intervalSeconds: number, log: ReloadLog): () => void {
  const reload = loaded.reload;
  if (!reload) return () => undefined;
  let running = false;
  let lastError = '';
  const run = async (why: string) => {
    if (running) return;
    running = true;
    try {
      const { changed, ring } = await reload();
      lastError = '';
      if (changed) log.info({ why, kids: ring.all.map((k) => k.kid), signing: ring.current.kid }, 'signing keys reloaded');
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      // Once per distinct problem, not every interval.
      if (message !== lastError) log.error({ why, dir: loaded.dir, problem: message }, 'cannot reload the signing keys; keeping the keys loaded before');
      lastError = message;
    } finally {
      running = false;
    }
  };
  const timer = intervalSeconds > 0 ? setInterval(() => void run('interval'), intervalSeconds * 1000) : null;
  timer?.unref();
  const onHup = () => void run('SIGHUP');
  process.on('SIGHUP', onHup);
  return () => {
    if (timer) clearInterval(timer);
    process.off('SIGHUP', onHup);
  };
}
