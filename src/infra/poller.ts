import { AsyncResource } from 'node:async_hooks';

/**
 * Runs `tick` every `intervalMs`, and at once after `wake()`. One tick at a time;
 * a tick that reports more work runs again straight away. Errors go to `onError`
 * and the loop carries on.
 */
export interface Poller {
  start(): void;
  wake(): void;
  /** Stops and waits for the running tick. */
  stop(): Promise<void>;
}

export function createPoller(tick: () => Promise<boolean>, intervalMs: number, onError: (err: unknown) => void): Poller {
  let timer: NodeJS.Timeout | null = null;
  let running: Promise<void> | null = null;
  let again = false;
  let stopped = true;

  const schedule = (ms: number) => {
    if (stopped) return;
    if (timer) clearTimeout(timer);
    timer = setTimeout(run, ms);
    timer.unref();
  };

  // Bound to where the poller was created (start-up): a wake() from a request must not
  // carry that request's context (its deadline, infra/deadline.ts) into every later tick.
  const run = AsyncResource.bind(function run(): void {
    timer = null;
    if (stopped) return;
    if (running) {
      again = true;
      return;
    }
    again = false;
    running = tick()
      .then((more) => {
        if (more) again = true;
      })
      .catch((err: unknown) => {
        try {
          onError(err);
        } catch {
          // a failing error reporter must not stop the loop
        }
      })
      .finally(() => {
        running = null;
        schedule(again ? 0 : intervalMs);
      });
  });

  return {
    start() {
      if (!stopped) return;
      stopped = false;
      schedule(0);
    },
    wake() {
      if (stopped) return;
      if (running) again = true;
      else schedule(0);
    },
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      timer = null;
      await running;
    },
  };
}
