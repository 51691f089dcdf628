import path from 'node:path';
import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { PgDatabase, PgQueryResultHKT } from 'drizzle-orm/pg-core';
import { sql } from 'drizzle-orm';
import type { Pool, PoolClient } from 'pg';
import { currentDeadline, DeadlineExceededError } from '../deadline.js';
import { acquireDataDirLock, type DataDirLock } from './data-dir-lock.js';

/**
 * A drizzle database or transaction; repos take this so callers choose the transaction. Queries are
 * built from each feature's own tables (infra knows no feature; src/db-schema.ts lists them for drizzle-kit).
 */
export type Database = PgDatabase<PgQueryResultHKT>;

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

/**
 * REQUEST_DEADLINE_MS (infra/deadline.ts): inside a request whose deadline has
 * passed, no transaction starts, and one that is still running rolls back
 * instead of committing; a commit sent before the deadline is counted, so the
 * HTTP layer waits for it rather than answering 503 for a change that was made.
 */
function withDeadlines(db: Database): Database {
  const transaction = db.transaction.bind(db);
  db.transaction = async (fn: (tx: never) => Promise<unknown>, config?: unknown) => {
    const deadline = currentDeadline();
    if (!deadline) return transaction(fn as never, config as never);
    deadline.throwIfExpired();
    let endCommit = () => undefined as void;
    try {
      return await transaction(
        (async (tx: never) => {
          const result = await fn(tx);
          endCommit = deadline.beginCommit();
          return result;
        }) as never,
        config as never,
      );
    } finally {
      endCommit();
    }
  };
  return db;
}

/** A statement's text, whichever way pg's query() was called. */
const statementText = (arg: unknown): string =>
  typeof arg === 'string' ? arg : typeof (arg as { text?: unknown } | null)?.text === 'string' ? (arg as { text: string }).text : '';

/** Refuses a statement of a request whose deadline has passed (a ROLLBACK still goes through). */
function refusedByDeadline(arg: unknown): boolean {
  return currentDeadline()?.refusing === true && !/^\s*rollback/i.test(statementText(arg));
}

function handleFor(
  db: Database,
  kind: DatabaseHandle['kind'],
  migrate: (db: Database) => Promise<void>,
  close: () => Promise<void>,
  poolStats: DatabaseHandle['poolStats'] = () => null,
): DatabaseHandle {
  withDeadlines(db);
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
  const pool = new (transactionSafePool(pg.Pool))({
    connectionString: url,
    max: opts.poolMax ?? 10,
    connectionTimeoutMillis: opts.connectTimeoutMs ?? 5000,
    statement_timeout: opts.statementTimeoutMs ?? 10000,
    query_timeout: (opts.statementTimeoutMs ?? 10000) + 1000,
    idleTimeoutMillis: 30000,
    keepAlive: true,
  });
  pool.on('error', (err) => opts.onIdleError?.(err));
  // pg listens for a connection's errors only while it is idle in the pool: PostgreSQL
  // cutting a connection that a transaction holds would be an uncaught exception (the
  // process dies). The statement in flight fails on its own (→ 503) and the pool drops
  // the connection when it is released.
  pool.on('connect', (client) => client.on('error', () => undefined));
  const db = drizzle(pool) as unknown as Database;
  return handleFor(
    db,
    'postgres',
    (d) => migrate(d as never, { migrationsFolder }),
    () => pool.end(),
    () => ({ total: pool.totalCount, idle: pool.idleCount, waiting: pool.waitingCount }),
  );
}

/**
 * drizzle's `transaction()` sends BEGIN before the try/finally that releases the
 * connection (drizzle-orm 0.45, issues #6023/#6241): when BEGIN fails on a connection
 * that died while idle, the connection never goes back and the pool shrinks for good.
 * This pool releases (and so discards) a checked-out connection whose first statement
 * fails, and makes a second release harmless. `pool.query()` (the callback form of
 * connect) is untouched.
 */
function transactionSafePool(Base: typeof Pool): typeof Pool {
  return class TransactionSafePool extends Base {
    // Statements outside a transaction (pool.query) obey the request deadline too.
    override query(...args: unknown[]): never {
      if (refusedByDeadline(args[0])) {
        const callback = args.find((a) => typeof a === 'function') as ((err: Error) => void) | undefined;
        if (callback) return process.nextTick(callback, new DeadlineExceededError()) as never;
        return Promise.reject(new DeadlineExceededError()) as never;
      }
      return (super.query as (...a: unknown[]) => never)(...args);
    }

    override connect(): Promise<PoolClient>;
    override connect(callback: (err: Error | undefined, client: PoolClient | undefined, done: (release?: unknown) => void) => void): void;
    override connect(
      callback?: (err: Error | undefined, client: PoolClient | undefined, done: (release?: unknown) => void) => void,
    ): Promise<PoolClient> | void {
      if (callback) return super.connect(callback);
      const deadline = currentDeadline();
      return super.connect().then((client) => {
        // Waited for a connection past the deadline: give it straight back to the requests still in time.
        if (deadline?.refusing) {
          client.release();
          throw new DeadlineExceededError();
        }
        const release = client.release.bind(client);
        let released = false;
        client.release = (err?: Error | boolean) => {
          if (released) return;
          released = true;
          release(err);
        };
        const query = client.query.bind(client) as (...args: unknown[]) => unknown;
        let first = true;
        client.query = ((...args: unknown[]) => {
          // The next statement of a transaction whose request is past its deadline fails, so the transaction rolls back now.
          if (refusedByDeadline(args[0])) return Promise.reject(new DeadlineExceededError());
          const result = query(...args);
          if (first && result instanceof Promise) result.catch((err: unknown) => client.release(err instanceof Error ? err : true));
          first = false;
          return result;
        }) as typeof client.query;
        return client;
      });
    }
  };
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
    const db = drizzle(client) as unknown as Database;
    return handleFor(
      db,
      'pglite',
      (d) => migrate(d as never, { migrationsFolder }),
      async () => {
        await client.close();
        lock?.release();
      },
    );
  } catch (err) {
    lock?.release();
    throw err;
  }
}
