import path from 'node:path';
import type { Config } from './config.js';
import { openDatabase, type DatabaseHandle } from './infra/db/client.js';
import { loadKeyRing, type LoadedKeys } from './infra/keys.js';

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

/** Loads the signing keys; outside production a missing key is generated once into DATA_DIR/keys. */
export function loadConfiguredKeys(config: Config): Promise<LoadedKeys> {
  return loadKeyRing({
    algorithm: config.jwt.algorithm,
    privateKeyPem: config.jwt.privateKeyPem,
    publicKeyPem: config.jwt.publicKeyPem,
    devKeysDir: config.env === 'production' ? null : path.join(config.dataDir, 'keys'),
  });
}
