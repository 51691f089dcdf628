import { DelayedError, Queue, UnrecoverableError, Worker, type Job } from 'bullmq';
import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { reconnectWithin } from './redis-reconnect.js';

/** The BullMQ queue every email job goes through. */
export const EMAIL_QUEUE = 'email';

export interface EmailJobData {
  outboxId: string;
}

/**
 * What the processor tells BullMQ: done, give up, or run again at a time. The
 * outbox row counts attempts and sets the backoff, so the worker's settings
 * decide them, not those of whichever process added the job. BullMQ's own
 * attempts and backoff only cover a processor that throws (database down).
 */
export type JobResult = { kind: 'done' } | { kind: 'give_up'; error: string } | { kind: 'delay'; until: Date };

export interface EmailQueueOptions {
  redisUrl: string;
  /** BullMQ attempts; the outbox row decides when a message fails for good. */
  attempts: number;
  retryDelayMs: number;
  /** REDIS_RECONNECT_MAX_DELAY_MS: the longest wait between two reconnection attempts. */
  reconnectMaxDelayMs: number;
  logger: Pick<Logger, 'warn'>;
}

/**
 * The producer side. While Redis is down, adding fails at once (no waiting in
 * a client-side queue), so the relay's transaction rolls back and the rows
 * wait in the outbox; a command that hangs is cut off by `commandTimeout`.
 */
export function createEmailQueue(opts: EmailQueueOptions) {
  const connection = new Redis(opts.redisUrl, { maxRetriesPerRequest: 1, connectTimeout: 5000, commandTimeout: 5000, retryStrategy: reconnectWithin(opts.reconnectMaxDelayMs) });
  let warned = false;
  let connectedBefore = false;
  const reconnected = new Set<() => void>();
  connection.on('error', (err: Error) => {
    if (!warned) opts.logger.warn({ err: err.message }, 'Redis (job queue) unreachable; reconnecting');
    warned = true;
  });
  connection.on('ready', () => {
    warned = false;
    if (connectedBefore) for (const listener of reconnected) listener();
    connectedBefore = true;
  });
  const newQueue = () => {
    const q = new Queue<EmailJobData>(EMAIL_QUEUE, {
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
  let queue = newQueue();
  /**
   * The queue, once it can be used. BullMQ keeps the outcome of a queue's first exchange
   * with Redis (its version check) for good: when that check was cut off (Redis down at
   * start, or its command dropped by `maxRetriesPerRequest` during an outage), every later
   * call fails with that same error, even with Redis back. Such a queue is replaced.
   */
  const usable = async (): Promise<Queue<EmailJobData>> => {
    const current = queue;
    try {
      await current.waitUntilReady();
      return current;
    } catch (err) {
      if (queue === current) {
        opts.logger.warn({ err: (err as Error).message }, 'job queue: the connection to Redis failed before it was ready; starting over');
        queue = newQueue();
        // best effort: the failure is logged above, and the abandoned queue holds nothing to lose
        void current.close().catch(() => undefined);
      }
      if (connection.status !== 'ready') throw err;
      await queue.waitUntilReady();
      return queue;
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
    async add(ids: string[]): Promise<void> {
      if (connection.status !== 'ready') throw new Error(`Redis is not ready (${connection.status})`);
      await (await usable()).addBulk(ids.map((outboxId) => ({ name: 'send', data: { outboxId }, opts: { jobId: outboxId } })));
    },
    async close(): Promise<void> {
      await queue.close();
      connection.disconnect();
    },
  };
}

export type EmailQueue = ReturnType<typeof createEmailQueue>;

export interface EmailWorkerOptions {
  redisUrl: string;
  concurrency: number;
  /** How long a job stays locked without renewal before another worker may take it over. */
  lockDurationMs: number;
  /** REDIS_RECONNECT_MAX_DELAY_MS (BullMQ's blocking connection is a duplicate of this one and keeps it). */
  reconnectMaxDelayMs: number;
  logger: Pick<Logger, 'warn' | 'error' | 'info'>;
}

/** The consumer side: runs `process` for each job with BullMQ's retry, backoff and stalled-job recovery. */
export function createEmailWorker(opts: EmailWorkerOptions, process: (outboxId: string) => Promise<JobResult>) {
  const connection = new Redis(opts.redisUrl, { maxRetriesPerRequest: null, retryStrategy: reconnectWithin(opts.reconnectMaxDelayMs) });
  let warned = false;
  connection.on('error', (err: Error) => {
    if (!warned) opts.logger.warn({ err: err.message }, 'Redis unreachable; the worker waits and reconnects');
    warned = true;
  });
  connection.on('ready', () => {
    if (warned) opts.logger.info('Redis reachable again');
    warned = false;
  });
  const worker = new Worker<EmailJobData>(
    EMAIL_QUEUE,
    async (job: Job<EmailJobData>, token?: string) => {
      const result = await process(job.data.outboxId);
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
  worker.on('error', (err) => opts.logger.warn({ err: err.message }, 'job worker error'));
  worker.on('failed', (job, err) => opts.logger.info({ jobId: job?.id, attemptsMade: job?.attemptsMade, err: err.message }, 'email job failed'));
  worker.on('stalled', (jobId) => opts.logger.warn({ jobId }, 'email job stalled (its worker died?); another worker takes it over'));
  return {
    worker,
    /** Stops taking jobs and waits for the running ones. */
    async close(): Promise<void> {
      await worker.close();
      connection.disconnect();
    },
  };
}
