import { describe, expect, it } from 'vitest';
import { MAX_RESTART_DELAY_MS, createRestartPolicy } from '../../src/cluster-restarts.js';

describe('the cluster restart policy (WORKER_CRASH_LIMIT)', () => {
  it('replaces the first crash at once, backs off on the next ones, and gives up at the limit', () => {
    const policy = createRestartPolicy({ max: 5, windowSeconds: 60 });
    const t = 1_000_000;
    expect(policy.crashed(t)).toEqual({ restart: true, recent: 1, delayMs: 0 });
    expect(policy.crashed(t + 1000)).toEqual({ restart: true, recent: 2, delayMs: 500 });
    expect(policy.crashed(t + 2000)).toEqual({ restart: true, recent: 3, delayMs: 1000 });
    expect(policy.crashed(t + 3000)).toEqual({ restart: true, recent: 4, delayMs: 2000 });
    expect(policy.crashed(t + 4000)).toEqual({ restart: false, recent: 5 });
    expect(policy.total).toBe(5);
  });

  it('forgets crashes older than the window', () => {
    const policy = createRestartPolicy({ max: 3, windowSeconds: 60 });
    policy.crashed(0);
    policy.crashed(1000);
    expect(policy.crashed(60_500)).toEqual({ restart: true, recent: 2, delayMs: 500 });
    expect(policy.crashed(200_000)).toEqual({ restart: true, recent: 1, delayMs: 0 });
  });

  it('off: never gives up, the delay stops growing at its ceiling', () => {
    const policy = createRestartPolicy(null);
    let last = { restart: true } as ReturnType<typeof policy.crashed>;
    for (let i = 0; i < 30; i++) last = policy.crashed(i * 100);
    expect(last).toEqual({ restart: true, recent: 30, delayMs: MAX_RESTART_DELAY_MS });
  });
});
