import { AsyncLocalStorage } from 'node:async_hooks';

/** Work refused because its request's deadline (REQUEST_DEADLINE_MS) has passed; the request has its 503 already. */
export class DeadlineExceededError extends Error {
  override name = 'DeadlineExceededError';
  constructor() {
    super('the request deadline has passed');
  }
}

export const isDeadlineExceeded = (err: unknown): err is DeadlineExceededError => err instanceof DeadlineExceededError;

/**
 * The deadline of one request, as the database layer sees it: once expired, no
 * transaction starts and none commits (it rolls back), so a request answered 503
 * at its deadline has changed nothing. A commit already sent when the deadline
 * strikes is waited for instead: its request gets its real answer.
 */
export class Deadline {
  #expired = false;
  #committing = 0;
  #committed: Array<() => void> = [];

  get expired(): boolean {
    return this.#expired;
  }

  /** Expired, and no commit of this request in flight: its statements are refused (a ROLLBACK excepted). */
  get refusing(): boolean {
    return this.#expired && this.#committing === 0;
  }

  /** Marks the deadline passed; true when the request can be answered 503 now, false while a commit is in flight (see `afterCommits`). */
  expire(): boolean {
    this.#expired = true;
    return this.#committing === 0;
  }

  throwIfExpired(): void {
    if (this.#expired) throw new DeadlineExceededError();
  }

  /** Before a COMMIT: throws once expired, else counts the commit in flight until the returned function is called. */
  beginCommit(): () => void {
    this.throwIfExpired();
    this.#committing += 1;
    let done = false;
    return () => {
      if (done) return;
      done = true;
      this.#committing -= 1;
      if (this.#committing === 0) for (const f of this.#committed.splice(0)) f();
    };
  }

  /** Runs `f` once no commit is in flight. */
  afterCommits(f: () => void): void {
    if (this.#committing === 0) f();
    else this.#committed.push(f);
  }
}

const storage = new AsyncLocalStorage<Deadline>();

/** The deadline of the request this code runs for; undefined outside a request (workers, CLI, start-up). */
export const currentDeadline = (): Deadline | undefined => storage.getStore();

/** Runs `fn` (and everything it starts) under `deadline`. */
export const runWithDeadline = <T>(deadline: Deadline, fn: () => T): T => storage.run(deadline, fn);
