import { getPriority, setPriority } from 'node:os';

/**
 * Sets the nice value of the calling thread. On Linux nice is per thread: threads started
 * before keep theirs (the hashing threads), threads started after inherit this one.
 * An unprivileged process may only raise it: a lower value, or a refusal, leaves it as it is.
 * Returns the thread's nice value afterwards.
 */
export function niceCurrentThread(nice: number): number {
  try {
    if (nice > getPriority()) setPriority(nice);
  } catch {
    // not allowed here (or not supported): the thread keeps its priority
  }
  return getPriority();
}
