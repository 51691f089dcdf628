import type * as BullMQ from 'bullmq';
import type { Job, Queue } from 'bullmq';
import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { OutageReporter } from './outage-notice.js';
import { reconnectWithin } from './redis-reconnect.js';

/**
 * Generic BullMQ plumbing: a producer and a consumer of one named queue, with
 * the reconnection rules every queue here shares. What a queue carries (its name,
 * its job data) belongs to the feature that owns it (email: features/mail/queue.ts).
 * BullMQ itself is loaded when a queue is first used (the producer: the first email
 * relayed), not when a server starts: its modules are a fair part of a worker's start.
 */
let bullmq: Promise<typeof BullMQ> | undefined;
const loadBullmq = () => (bullmq ??= import('bullmq'));

/**
 * What the processor tells BullMQ: done, give up, or run again at a time. The
 * feature's own records count attempts and set the backoff, so the worker's settings
 * decide them, not those of whichever process added the job. BullMQ's own
 * attempts and backoff only cover a processor that throws (database down).
 */
export type JobResult = { kind: 'done' } | { kind: 'give_up'; error: string } | { kind: 'delay'; until: Date };

export interface JobQueueOptions {
  /** The BullMQ queue name. */
  name: string;
  redisUrl: string;
  /** BullMQ attempts (a processor that throws). */
  attempts: number;
  retryDelayMs: number;
  /** REDIS_RECONNECT_MAX_DELAY_MS: the longest wait between two reconnection attempts. */
  reconnectMaxDelayMs: number;
  logger: Pick<Logger, 'warn'>;
  /** Reports outages once per process; without it, this queue logs its own. */
  notice?: OutageReporter;
}

export interface NewJob<Data> {
  name: string;
  data: Data;
  /** Adding a job whose id still exists is a no-op. */
  jobId: string;
}

/**
 * The producer side. While Redis is down, adding fails at once (no waiting in
 * a client-side queue), so the caller's transaction rolls back and its rows
 * wait; a command that hangs is cut off by `commandTimeout`.
 */
export function createJobQueue<Data>(opts: JobQueueOptions) {
  const connection = new Redis(opts.redisUrl, {
    maxRetriesPerRequest: 1,
    connectTimeout: 5000,
    commandTimeout: 5000,
    retryStrategy: reconnectWithin(opts.reconnectMaxDelayMs),
  });
  let warned = false;
  let connectedBefore = false;
  const reconnected = new Set<() => void>();
  connection.on('error', (err: Error) => {
    if (opts.notice) opts.notice.down(err);
    else if (!warned) opts.logger.warn({ err: err.message }, 'Redis (job queue) unreachable; reconnecting');
    warned = true;
  });
  connection.on('ready', () => {
    opts.notice?.up();
    warned = false;
    if (connectedBefore) for (const listener of reconnected) listener();
    connectedBefore = true;
  });
  const newQueue = (Queue: typeof BullMQ.Queue) => {
    // Untyped inside: BullMQ's generics cannot follow a type parameter; `add` types the jobs.
    const q = new Queue(opts.name, {
      connection,
      skipWaitingForReady: true,
      defaultJobOptions: {
        attempts: opts.attempts,
        backoff: { type: 'exponential', delay: opts.retryDelayMs },
        removeOnComplete: true,
        removeOnFail: true,
      },
    });
    q.on('error', () => {
      // reported once by the connection's handler above
    });
    return q;
  };
  /** Made at the first use (BullMQ loaded then). */
  let queue: Queue | null = null;
  /**
   * The queue, once it can be used. BullMQ keeps the outcome of a queue's first exchange
   * with Redis (its version check) for good: when that check was cut off (Redis down at
   * start, or its command dropped by `maxRetriesPerRequest` during an outage), every later
   * call fails with that same error, even with Redis back. Such a queue is replaced.
   */
  const usable = async (): Promise<Queue> => {
    const { Queue } = await loadBullmq();
    const current = (queue ??= newQueue(Queue));
    try {
      await current.waitUntilReady();
      return current;
    } catch (err) {
      if (queue === current) {
        opts.logger.warn({ err: (err as Error).message }, 'job queue: the connection to Redis failed before it was ready; starting over');
        queue = newQueue(Queue);
        // best effort: the failure is logged above, and the abandoned queue holds nothing to lose
        void current.close().catch(() => undefined);
      }
      if (connection.status !== 'ready') throw err;
      const replacement = queue;
      await replacement.waitUntilReady();
      return replacement;
    }
  };
  return {
    /** Called each time the connection comes back (Redis may have restarted and lost its jobs). */
    onReconnect(listener: () => void): void {
      reconnected.add(listener);
    },
    /** Answers while Redis does (readiness). */
    async ping(): Promise<void> {
      await connection.ping();
    },
    async add(jobs: NewJob<Data>[]): Promise<void> {
      if (connection.status !== 'ready') throw new Error(`Redis is not ready (${connection.status})`);
      await (await usable()).addBulk(jobs.map((job) => ({ name: job.name, data: job.data, opts: { jobId: job.jobId } })));
    },
    async close(): Promise<void> {
      await queue?.close();
      connection.disconnect();
    },
  };
}

export type JobQueue<Data> = ReturnType<typeof createJobQueue<Data>>;

export interface JobWorkerOptions {
  /** The BullMQ queue name. */
  name: string;
  /** What a job is called in the logs ("email job"). */
  label: string;
  redisUrl: string;
  concurrency: number;
  /** How long a job stays locked without renewal before another worker may take it over. */
  lockDurationMs: number;
  /** REDIS_RECONNECT_MAX_DELAY_MS (BullMQ's blocking connection is a duplicate of this one and keeps it). */
  reconnectMaxDelayMs: number;
  logger: Pick<Logger, 'warn' | 'error' | 'info'>;
  /** Reports outages once per process; without it, this worker logs its own. */
  notice?: OutageReporter;
}

/** The consumer side: runs `process` for each job with BullMQ's retry, backoff and stalled-job recovery. */
export function createJobWorker<Data>(opts: JobWorkerOptions, process: (data: Data) => Promise<JobResult>) {
  const connection = new Redis(opts.redisUrl, { maxRetriesPerRequest: null, retryStrategy: reconnectWithin(opts.reconnectMaxDelayMs) });
  let warned = false;
  connection.on('error', (err: Error) => {
    if (opts.notice) opts.notice.down(err);
    else if (!warned) opts.logger.warn({ err: err.message }, 'Redis unreachable; the worker waits and reconnects');
    warned = true;
  });
  connection.on('ready', () => {
    if (opts.notice) opts.notice.up();
    else if (warned) opts.logger.info('Redis reachable again');
    warned = false;
  });
  // BullMQ loads now, in the background: the worker takes jobs once it has.
  const started = loadBullmq().then(({ Worker, DelayedError, UnrecoverableError }) => {
    const worker = new Worker<Data>(
      opts.name,
      async (job: Job<Data>, token?: string) => {
        const result = await process(job.data);
        switch (result.kind) {
          case 'done':
            return;
          case 'give_up':
            throw new UnrecoverableError(result.error);
          case 'delay':
            // A retry after its backoff, or another worker holds the row until its claim ends.
            await job.moveToDelayed(result.until.getTime(), token);
            throw new DelayedError();
        }
      },
      {
        connection,
        concurrency: opts.concurrency,
        lockDuration: opts.lockDurationMs,
        stalledInterval: opts.lockDurationMs,
        maxStalledCount: 5,
      },
    );
    worker.on('error', (err) => {
      // While Redis is away BullMQ reports every failed attempt: the notice says it once.
      if (opts.notice && connection.status !== 'ready') opts.notice.down(err);
      else opts.logger.warn({ err: err.message }, 'job worker error');
    });
    worker.on('failed', (job, err) => opts.logger.info({ jobId: job?.id, attemptsMade: job?.attemptsMade, err: err.message }, `${opts.label} failed`));
    worker.on('stalled', (jobId) => opts.logger.warn({ jobId }, `${opts.label} stalled (its worker died?); another worker takes it over`));
    return worker;
  });
  return {
    /** Stops taking jobs and waits for the running ones. */
    async close(): Promise<void> {
      await (await started).close();
      connection.disconnect();
    },
  };
}
