/** The database: DATABASE_URL (or DB_HOST and friends), the pool and its timeouts; null = embedded PGlite. */
import type { Reader } from './reader.js';

export interface DatabaseConfig {
  /** null = embedded PGlite in `${dataDir}/db`. */
  url: string | null;
  poolMax: number;
  connectTimeoutMs: number;
  statementTimeoutMs: number;
}

export function databaseConfig(r: Reader): DatabaseConfig {
  return {
    url: databaseUrl(r),
    poolMax: r.int('DB_POOL_MAX', 10, 1, 1000),
    connectTimeoutMs: r.int('DB_CONNECT_TIMEOUT_MS', 5000, 100, 120000),
    statementTimeoutMs: r.int('DB_STATEMENT_TIMEOUT_MS', 10000, 100, 600000),
  };
}

function databaseUrl(r: Reader): string | null {
  const url = r.url('DATABASE_URL', null, ['postgres:', 'postgresql:']);
  if (url) return url;
  const host = r.raw('DB_HOST');
  if (!host) return null;
  const port = r.int('DB_PORT', 5432, 1, 65535);
  const user = encodeURIComponent(r.string('DB_USER', 'postgres'));
  const password = r.raw('DB_PASSWORD');
  const name = encodeURIComponent(r.string('DB_NAME', 'tessera'));
  const auth = password === undefined ? user : `${user}:${encodeURIComponent(password)}`;
  return `postgresql://${auth}@${host}:${port}/${name}`;
}
