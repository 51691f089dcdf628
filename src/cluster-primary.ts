import cluster from 'node:cluster';
import type { Config } from './config.js';
import { migrateDatabase } from './migrate.js';
import { configuredKeysDir, loadConfiguredKeys, loadMfaKey, openConfiguredDatabase } from './runtime.js';

// Under load V8 lets the old space grow to several times the live heap (~40 MB here);
// a cap makes it collect sooner and keeps a worker's RSS near 140 MB instead of ~200 MB,
// at no measurable cost. The young generation is kept at 8 MB semi-spaces (16 MB by
// default on Node 20): requests allocate small, short-lived objects, and this takes
// another ~14 MB off each worker's RSS for a throughput change within noise (measured
// with autocannon on GET /users/me, WORKERS=2). `npm start` passes the same flags;
// NODE_OPTIONS or node's own flags win when given.
const HEAP_FLAGS = ['--max-old-space-size=128', '--max-semi-space-size=8'];

function workerExecArgv(): string[] {
  const given = [...process.execArgv, ...(process.env.NODE_OPTIONS ?? '').split(/\s+/)];
  const missing = HEAP_FLAGS.filter((flag) => !given.some((a) => a.startsWith(flag.slice(0, flag.indexOf('=')))));
  return [...process.execArgv, ...missing];
}

/**
 * The cluster primary of `WORKERS=n`: migrates and creates keys once, forks the
 * HTTP workers, replaces one that dies, and stops them all together. It never
 * loads the HTTP application itself.
 */
export async function runClusterPrimary(config: Config): Promise<void> {
  await loadConfiguredKeys(config);
  // Generated once here, so the workers do not race to create it.
  loadMfaKey(config);
  if (config.migrateOnStart) {
    const database = await openConfiguredDatabase(config);
    await migrateDatabase(database, (line) => console.warn(`tessera: ${line}`));
    await database.close();
  }
  let stopping = false;
  cluster.setupPrimary({ execArgv: workerExecArgv() });
  const fork = () => cluster.fork();
  for (let i = 0; i < config.workers; i++) fork();
  cluster.on('exit', (worker, code, signal) => {
    if (stopping) return;
    console.error(`tessera: worker ${worker.process.pid} exited (${signal ?? code}); starting another`);
    fork();
  });
  const stop = () => {
    stopping = true;
    let left = Object.keys(cluster.workers ?? {}).length;
    if (left === 0) process.exit(0);
    cluster.on('exit', () => {
      left -= 1;
      if (left <= 0) process.exit(0);
    });
    for (const w of Object.values(cluster.workers ?? {})) w?.process.kill('SIGTERM');
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  // `kill -HUP <primary>`: every worker re-reads its keys directory now (KEYS_DIR).
  if (configuredKeysDir(config)) process.on('SIGHUP', () => {
    for (const w of Object.values(cluster.workers ?? {})) w?.process.kill('SIGHUP');
  });
  console.log(`tessera: primary ${process.pid} started ${config.workers} workers on ${config.host}:${config.port}`);
}
