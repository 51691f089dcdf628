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
