import cluster, { type Worker } from 'node:cluster';
import type { Config } from './config/index.js';
import { migrateDatabase } from './migrate.js';
import { createRestartPolicy } from './cluster-restarts.js';
import { MIGRATED_MESSAGE, MIGRATED_QUESTION, WORKER_CRASHES_MESSAGE } from './cluster-stats.js';
import { configuredKeysDir, connectConfiguredDatabase, loadConfiguredKeys, loadMfaKey } from './runtime.js';

// Under load V8 lets the old space grow to several times the live heap (~40 MB here);
// a cap makes it collect sooner and keeps a worker's RSS near 140 MB instead of ~200 MB,
// at no measurable cost. The young generation is kept at 8 MB semi-spaces (16 MB by
// default on Node 20): requests allocate small, short-lived objects, and this takes
// another ~14 MB off each worker's RSS for a throughput change within noise (measured
// with autocannon on GET /users/me, WORKERS=2). `npm start` passes the same flags;
// NODE_OPTIONS or node's own flags win when given.
const HEAP_FLAGS = ['--max-old-space-size=128', '--max-semi-space-size=8'];

/** How long after SHUTDOWN_TIMEOUT the primary stops waiting for a worker that should have exited by itself. */
const STOP_GRACE_MS = 5000;

function workerExecArgv(): string[] {
  const given = [...process.execArgv, ...(process.env.NODE_OPTIONS ?? '').split(/\s+/)];
  const missing = HEAP_FLAGS.filter((flag) => !given.some((a) => a.startsWith(flag.slice(0, flag.indexOf('=')))));
  return [...process.execArgv, ...missing];
}

/**
 * The cluster primary of `WORKERS=n`: creates keys once, forks the HTTP workers,
 * migrates while they load their code (they start serving once it is done), replaces one that dies (with backoff, up to WORKER_CRASH_LIMIT),
 * and stops them all together. It never loads the HTTP application itself.
 * Its exit code is 0 only when every worker stopped cleanly.
 */
export async function runClusterPrimary(config: Config): Promise<void> {
  await loadConfiguredKeys(config);
  // Generated once here, so the workers do not race to create it.
  loadMfaKey(config);
  // Connections are accepted by the workers themselves from the shared listening socket,
  // not by the primary and handed over (round-robin, Node's default on Linux). Round-robin
  // keeps the primary's copy of a connection open until the worker acknowledges it: a worker
  // that dies (kill -9, OOM) before it does leaves that connection open with nobody to serve
  // it, and its client waits forever (measured: 0.6 hung connections per kill at 600 req/s,
  // each still held by the primary). With SCHED_NONE a dead worker's connections are closed
  // by the kernel (the client sees a reset) and the ones not accepted yet wait in the
  // listening socket's queue for the other workers. Spread over two workers
  // (autocannon, 14,500 req/s): 52/48 % of keep-alive requests, 55/45 % of new connections.
  cluster.schedulingPolicy = cluster.SCHED_NONE;
  cluster.setupPrimary({ execArgv: workerExecArgv() });

  const restarts = createRestartPolicy(config.workerCrashLimit);
  let stopping = false;
  const timers = new Set<NodeJS.Timeout>();
  const live = () => Object.values(cluster.workers ?? {}).filter((w): w is Worker => w !== undefined);
  // The workers report the primary's crash count in their /metrics (tessera_cluster_worker_crashes_total).
  const tell = (w: Worker) => {
    if (w.isConnected()) w.send({ type: WORKER_CRASHES_MESSAGE, total: restarts.total });
  };
  const fork = () => {
    const w = cluster.fork();
    // Once it listens, its message listener is in place (it is set up before the server starts).
    w.on('listening', () => tell(w));
  };
  // The workers load their code while the database is migrated here; each starts once it is (primaryMigrated).
  let migrated = false;
  const waiting = new Set<Worker>();
  cluster.on('message', (w, m: unknown) => {
    if ((m as { type?: unknown } | null)?.type !== MIGRATED_QUESTION) return;
    if (migrated) w.send({ type: MIGRATED_MESSAGE });
    else waiting.add(w);
  });
  for (let i = 0; i < config.workers; i++) fork();

  let failedWorkers = 0;
  const stop = (reason: string, code: number) => {
    if (stopping) return;
    stopping = true;
    for (const t of timers) clearTimeout(t);
    const workers = live();
    if (workers.length === 0) process.exit(code);
    console.error(`tessera: primary stopping (${reason}); waiting for ${workers.length} worker${workers.length === 1 ? '' : 's'}`);
    let left = workers.length;
    cluster.on('exit', (_w, exitCode, signal) => {
      // A worker cut off by SHUTDOWN_TIMEOUT exits 1: the primary reports it the same way. One
      // still starting when SIGTERM came (no handler yet: ended by the signal) served nothing.
      if ((exitCode !== null && exitCode !== 0) || (signal !== null && signal !== 'SIGTERM')) failedWorkers += 1;
      left -= 1;
      if (left <= 0) {
        if (failedWorkers) console.error(`tessera: ${failedWorkers} worker${failedWorkers === 1 ? '' : 's'} did not stop cleanly; exiting 1`);
        process.exit(failedWorkers ? 1 : code);
      }
    });
    for (const w of workers) w.process.kill('SIGTERM');
    // Each worker ends itself at SHUTDOWN_TIMEOUT; one that does not is killed a little later.
    setTimeout(() => {
      const stuck = live();
      console.error(
        `tessera: ${stuck.length} worker${stuck.length === 1 ? '' : 's'} still running ${STOP_GRACE_MS} ms after SHUTDOWN_TIMEOUT; killing and exiting 1`,
      );
      for (const w of stuck) w.process.kill('SIGKILL');
      process.exit(1);
    }, config.shutdownTimeoutMs + STOP_GRACE_MS).unref();
  };

  cluster.on('exit', (worker, code, signal) => {
    if (stopping) return;
    const verdict = restarts.crashed(Date.now());
    for (const w of live()) tell(w);
    const crashes = `${verdict.recent} crash${verdict.recent === 1 ? '' : 'es'} within ${restarts.windowSeconds} s`;
    if (!verdict.restart) {
      console.error(`tessera: worker ${worker.process.pid} exited (${signal ?? code}); ${crashes} reaches WORKER_CRASH_LIMIT: giving up`);
      stop('too many worker crashes', 1);
      return;
    }
    console.error(
      `tessera: worker ${worker.process.pid} exited (${signal ?? code}); starting another in ${verdict.delayMs} ms (${crashes}, ${restarts.total} since start)`,
    );
    if (verdict.delayMs === 0) return fork();
    const timer = setTimeout(() => {
      timers.delete(timer);
      if (!stopping) fork();
    }, verdict.delayMs);
    timers.add(timer);
  });
  process.on('SIGTERM', () => stop('SIGTERM', 0));
  process.on('SIGINT', () => stop('SIGINT', 0));
  // `kill -HUP <primary>`: every worker re-reads its keys directory now (KEYS_DIR).
  if (configuredKeysDir(config))
    process.on('SIGHUP', () => {
      for (const w of live()) w.process.kill('SIGHUP');
    });
  if (config.migrateOnStart) {
    try {
      const database = await connectConfiguredDatabase(config);
      await migrateDatabase(database, (line) => console.warn(`tessera: ${line}`));
      await database.close();
    } catch (err) {
      // The workers are still waiting for this: they go with the primary, having served nothing.
      stopping = true;
      for (const w of live()) w.process.kill('SIGKILL');
      throw err;
    }
  }
  migrated = true;
  for (const w of waiting) if (w.isConnected()) w.send({ type: MIGRATED_MESSAGE });
  waiting.clear();
  console.log(`tessera: primary ${process.pid} started ${config.workers} workers on ${config.host}:${config.port}`);
}
