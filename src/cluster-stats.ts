import cluster from 'node:cluster';

/** The IPC message in which the cluster primary tells its workers how many workers have crashed. */
export const WORKER_CRASHES_MESSAGE = 'tessera:worker-crashes';

/**
 * In a cluster worker: the primary's count of crashed workers, as last told
 * (for /metrics); null in a single process, which has no primary.
 */
export function watchWorkerCrashes(): (() => number) | null {
  if (!cluster.isWorker) return null;
  let total = 0;
  process.on('message', (m: unknown) => {
    const msg = m as { type?: unknown; total?: unknown } | null;
    if (msg?.type === WORKER_CRASHES_MESSAGE && typeof msg.total === 'number') total = msg.total;
  });
  return () => total;
}

/** A worker asks whether the database is migrated; the primary answers with MIGRATED_MESSAGE once it is. */
export const MIGRATED_QUESTION = 'tessera:migrated?';
export const MIGRATED_MESSAGE = 'tessera:migrated';

/**
 * In a cluster worker: resolves once the primary has migrated the database. The worker
 * loads its code meanwhile (most of its start), so a restart takes the longer of the
 * two, not their sum. It asks after listening, so the answer cannot come too early.
 */
export function primaryMigrated(): Promise<void> {
  return new Promise((resolve) => {
    const onMessage = (m: unknown) => {
      if ((m as { type?: unknown } | null)?.type !== MIGRATED_MESSAGE) return;
      process.off('message', onMessage);
      resolve();
    };
    process.on('message', onMessage);
    process.send?.({ type: MIGRATED_QUESTION });
  });
}
