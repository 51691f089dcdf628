import { availableParallelism } from 'node:os';
import bcrypt from 'bcrypt';

/**
 * The machine's bcrypt ceiling: one `bcrypt.compare` loop per core, at the
 * server's cost, for `seconds`, in this process (before any load). Logins can
 * never beat this, so logins/s ÷ this is how much of the CPU logins turn into hashes.
 * (bcrypt runs on libuv's thread pool, 4 threads by default: enough up to 4 cores.)
 */
export async function measureBcryptLimit(rounds: number, seconds: number): Promise<{ hashesPerSecond: number; threads: number }> {
  const threads = availableParallelism();
  const hash = await bcrypt.hash('bench-password-limit', rounds);
  const start = performance.now();
  const until = start + seconds * 1000;
  let count = 0;
  await Promise.all(
    Array.from({ length: threads }, async () => {
      while (performance.now() < until) {
        await bcrypt.compare('bench-password-limit', hash);
        count++;
      }
    }),
  );
  return { hashesPerSecond: count / ((performance.now() - start) / 1000), threads };
}
