import type { Rate } from './config/index.js';

/** What to do about a worker that died: start another after `delayMs`, or give up (too many crashes). */
export type CrashVerdict = { restart: true; delayMs: number; recent: number } | { restart: false; recent: number };

/** The first replacement starts at once; each further crash within the window doubles the wait, from 0.5 s up to this. */
export const MAX_RESTART_DELAY_MS = 10_000;

/**
 * The cluster primary's restart policy (WORKER_CRASH_LIMIT): crashes are counted
 * over a sliding window; the first in a window is replaced at once, the next ones
 * after 0.5 s, 1 s, 2 s … (a worker that dies while starting does not spin the
 * CPU), and the crash that reaches the limit stops the cluster so that its
 * supervisor (systemd, Kubernetes) sees a failure instead of an endless loop.
 */
export function createRestartPolicy(limit: Rate | null, windowWithoutLimitMs = 60_000) {
  const windowMs = limit ? limit.windowSeconds * 1000 : windowWithoutLimitMs;
  let times: number[] = [];
  let total = 0;
  return {
    /** Records a crash at `now` (epoch ms). */
    crashed(now: number): CrashVerdict {
      total += 1;
      times = [...times.filter((t) => t > now - windowMs), now];
      const recent = times.length;
      if (limit && recent >= limit.max) return { restart: false, recent };
      return { restart: true, recent, delayMs: recent <= 1 ? 0 : Math.min(MAX_RESTART_DELAY_MS, 500 * 2 ** (recent - 2)) };
    },
    /** Crashes since the primary started. */
    get total(): number {
      return total;
    },
    windowSeconds: windowMs / 1000,
  };
}
