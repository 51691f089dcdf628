import path from 'node:path';
import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { PgDatabase, PgQueryResultHKT } from 'drizzle-orm/pg-core';
import { sql } from 'drizzle-orm';
import * as schema from './schema.js';
import { acquireDataDirLock, type DataDirLock } from './data-dir-lock.js';

export type Schema = typeof schema;
/** A drizzle database or transaction; repos take this so callers choose the transaction. */
export type Database = PgDatabase<PgQueryResultHKT, Schema>;

export interface DatabaseHandle {
  readonly db: Database;
  readonly kind: 'postgres' | 'pglite';
  ping(): Promise<void>;
  /** Connections of the pool (null on the embedded database, which has one). */
  poolStats(): { total: number; idle: number; waiting: number } | null;
  migrate(): Promise<void>;
  close(): Promise<void>;
}

export interface DatabaseOptions {
  /** PostgreSQL URL; null = embedded PGlite. */
  url: string | null;
  /** Where PGlite keeps its files; null = in memory (tests). */
  pgliteDir?: string | null;
  poolMax?: number;
  connectTimeoutMs?: number;
  statementTimeoutMs?: number;
  /** Called when a pooled connection fails while idle (logged, never fatal). */
  onIdleError?: (err: Error) => void;
}

export const migrationsFolder = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../migrations');

export async function openDatabase(opts: DatabaseOptions): Promise<DatabaseHandle> {
  return opts.url ? openPostgres(opts.url, opts) : openPglite(opts.pgliteDir ?? null);
}

function handleFor(
  db: Database,
  kind: DatabaseHandle['kind'],
  migrate: (db: Database) => Promise<void>,
  close: () => Promise<void>,
  poolStats: DatabaseHandle['poolStats'] = () => null,
): DatabaseHandle {
  return {
    db,
    kind,
    ping: async () => {
      await db.execute(sql`select 1`);
    },
    poolStats,
    migrate: () => migrate(db),
    close,
  };
}

async function openPostgres(url: string, opts: DatabaseOptions): Promise<DatabaseHandle> {
  const { default: pg } = await import('pg');
  const { drizzle } = await import('drizzle-orm/node-postgres');
  const { migrate } = await import('drizzle-orm/node-postgres/migrator');
  const pool = new pg.Pool({
    connectionString: url,
    max: opts.poolMax ?? 10,
    connectionTimeoutMillis: opts.connectTimeoutMs ?? 5000,
    statement_timeout: opts.statementTimeoutMs ?? 10000,
    query_timeout: (opts.statementTimeoutMs ?? 10000) + 1000,
    idleTimeoutMillis: 30000,
    keepAlive: true,
  });
  pool.on('error', (err) => opts.onIdleError?.(err));
  const db = drizzle(pool, { schema }) as unknown as Database;
  return handleFor(
    db,
    'postgres',
    (d) => migrate(d as never, { migrationsFolder }),
    () => pool.end(),
    () => ({ total: pool.totalCount, idle: pool.idleCount, waiting: pool.waitingCount }),
  );
}

async function openPglite(dir: string | null): Promise<DatabaseHandle> {
  const { PGlite } = await import('@electric-sql/pglite');
  const { drizzle } = await import('drizzle-orm/pglite');
  const { migrate } = await import('drizzle-orm/pglite/migrator');
  let lock: DataDirLock | null = null;
  if (dir) {
    mkdirSync(dir, { recursive: true });
    lock = acquireDataDirLock(dir);
  }
  try {
    const client = dir ? await PGlite.create(dir) : await PGlite.create();
    const db = drizzle(client, { schema }) as unknown as Database;
    return handleFor(db, 'pglite', (d) => migrate(d as never, { migrationsFolder }), async () => {
      await client.close();
      lock?.release();
    });
  } catch (err) {
    lock?.release();
    throw err;
  }
}
