import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { BenchOptions } from './args.js';
import type { Cleanup } from './cleanup.js';
import { createBenchDatabase } from './database.js';
import type { Machine } from './machine.js';
import { OwnRedis } from '../test/helpers/redis-server.js';
import { sampleRss, type RssSampler } from './rss-sampler.js';
import { buildServer, freePort, startServer, type RunningServer } from './server.js';

const DEFAULT_DATABASE_URL = 'postgres://postgres@127.0.0.1:5432/postgres';
const log = (msg: string) => console.error(`bench: ${msg}`);

export interface FreshServer {
  server: RunningServer;
  rss: RssSampler;
  databaseUrl: string;
  dataDir: string;
  /** Starts another server on the same database, data dir and Redis (`viaNpm`: with `npm start`); stopped at cleanup. */
  another: (settings: { workers: number; viaNpm?: boolean }) => Promise<RunningServer>;
}

/** What a measuring mode (bench/run.ts, bench/soak.ts) gets once its fresh server is ready. */
export interface BenchRun {
  opts: BenchOptions;
  machine: Machine;
  command: string;
  base: string;
  pid: number;
  rss: RssSampler;
}

export interface FreshServerSettings {
  /** Names the temp data dir (`tessera-bench-<label>-`). */
  label: string;
  workers: number;
  rounds: number;
  extra?: Record<string, string>;
  nodeFlags?: string[];
  /** A redis-server of the bench's own (REDIS_URL): the session cache and the job queue, as in production. */
  redis?: boolean;
}

/**
 * Every bench mode's setup: the build (when dist/ is stale), a fresh PostgreSQL database (from
 * BENCH_DATABASE_URL), a temp data dir, `node dist/main.js` with RSS sampling,
 * all registered for cleanup; runs `fn` once the server is ready, and prints the
 * end of the server log when it fails.
 */
export async function runOnFreshServer<T>(repoRoot: string, cleanup: Cleanup, s: FreshServerSettings, fn: (fresh: FreshServer) => Promise<T>): Promise<T> {
  log('building unless dist/ is up to date (bin/build-if-stale.js)');
  buildServer(repoRoot);

  const db = await createBenchDatabase(process.env.BENCH_DATABASE_URL ?? DEFAULT_DATABASE_URL);
  cleanup.add(`drop database ${db.name}`, db.drop);
  log(`created database ${db.name}`);

  const dataDir = mkdtempSync(path.join(tmpdir(), `tessera-bench-${s.label}-`));
  cleanup.add('remove data dir', async () => rmSync(dataDir, { recursive: true, force: true }));

  const extra = { ...s.extra };
  if (s.redis) {
    const redis = await OwnRedis.start();
    cleanup.add('stop redis-server', () => redis.stop());
    extra.REDIS_URL = redis.url;
  }
  const env = { databaseUrl: db.url, port: await freePort(), workers: s.workers, rounds: s.rounds, dataDir, extra };
  const server = startServer(repoRoot, env, s.nodeFlags ?? []);
  cleanup.add('stop server', () => server.stop());
  const rss = sampleRss(server.pid);
  cleanup.add('stop RSS sampling', async () => void rss.stop());
  try {
    await server.ready();
    const another = async (a: { workers: number; viaNpm?: boolean }) => {
      const next = startServer(repoRoot, { ...env, port: await freePort(), workers: a.workers }, [], a.viaNpm ?? false);
      cleanup.add('stop another server', () => next.stop());
      await next.ready();
      return next;
    };
    return await fn({ server, rss, databaseUrl: db.url, dataDir, another });
  } catch (err) {
    const tail = readFileSync(server.logFile, 'utf8').trim().split('\n').slice(-20).join('\n');
    if (tail) log(`the server log ends with:\n${tail}`);
    throw err;
  }
}
