import { DelayedError, Queue, UnrecoverableError, Worker, type Job } from 'bullmq';
import { Redis } from 'ioredis';
import type { Logger } from 'pino';

/** The BullMQ queue every email job goes through. */
export const EMAIL_QUEUE = 'email';

export interface EmailJobData {
  outboxId: string;
}

/** What the processor tells BullMQ: done, retry with backoff, give up, or wait until a time. */
export type JobResult = { kind: 'done' } | { kind: 'retry'; error: string } | { kind: 'give_up'; error: string } | { kind: 'delay'; until: Date };

export interface EmailQueueOptions {
  redisUrl: string;
  /** BullMQ attempts; the outbox row decides when a message fails for good. */
  attempts: number;
  retryDelayMs: number;
  logger: Pick<Logger, 'warn'>;
}

/**
 * The producer side. Its connection does not queue commands while Redis is
 * down: adding fails at once, so the relay's transaction rolls back and the
 * rows wait in the outbox.
 */
export function createEmailQueue(opts: EmailQueueOptions) {
  const connection = new Redis(opts.redisUrl, { maxRetriesPerRequest: 1, enableOfflineQueue: false, connectTimeout: 5000 });
  let warned = false;
  connection.on('error', (err: Error) => {
    if (!warned) opts.logger.warn({ err: err.message }, 'Redis (job queue) unreachable; reconnecting');
    warned = true;
  });
  connection.on('ready', () => {
    warned = false;
  });
  const queue = new Queue<EmailJobData>(EMAIL_QUEUE, {
    connection,
    skipWaitingForReady: true,
    defaultJobOptions: {
      attempts: opts.attempts,
      backoff: { type: 'exponential', delay: opts.retryDelayMs },
      removeOnComplete: true,
      removeOnFail: true,
    },
  });
  queue.on('error', () => {
    // reported once by the connection's handler above
  });
  return {
    async add(ids: string[]): Promise<void> {
      if (connection.status !== 'ready') throw new Error(`Redis is not ready (${connection.status})`);
      await queue.addBulk(ids.map((outboxId) => ({ name: 'send', data: { outboxId }, opts: { jobId: outboxId } })));
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
  logger: Pick<Logger, 'warn' | 'error' | 'info'>;
}

/** The consumer side: runs `process` for each job with BullMQ's retry, backoff and stalled-job recovery. */
export function createEmailWorker(opts: EmailWorkerOptions, process: (outboxId: string) => Promise<JobResult>) {
  const connection = new Redis(opts.redisUrl, { maxRetriesPerRequest: null });
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
        case 'retry':
          throw new Error(result.error);
        case 'give_up':
          throw new UnrecoverableError(result.error);
        case 'delay':
          // Another worker holds the row: come back when its claim ends, without spending an attempt.
          await job.moveToDelayed(result.until.getTime() + 100, token);
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
  return {
    worker,
    /** Stops taking jobs and waits for the running ones. */
    async close(): Promise<void> {
      await worker.close();
      connection.disconnect();
    },
  };
}
