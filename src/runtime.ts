import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Config } from './config.js';
import { openDatabase, type DatabaseHandle } from './infra/db/client.js';
import { KeyError, loadKeyRing, type LoadedKeys } from './infra/keys.js';

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

/** Loads the signing keys; outside production a missing key is generated once into DATA_DIR/keys. */
export function loadConfiguredKeys(config: Config): Promise<LoadedKeys> {
  return loadKeyRing({
    algorithm: config.jwt.algorithm,
    privateKeyPem: config.jwt.privateKeyPem,
    publicKeyPem: config.jwt.publicKeyPem,
    devKeysDir: config.env === 'production' ? null : path.join(config.dataDir, 'keys'),
  });
}
