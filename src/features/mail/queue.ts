import { createJobQueue, createJobWorker, type JobQueueOptions, type JobResult, type JobWorkerOptions } from '../../infra/queue.js';

/** The BullMQ queue every email job goes through. */
export const EMAIL_QUEUE = 'email';

/** One job per outbox row; the row id is also the job id, so adding a row twice is a no-op. */
export interface EmailJobData {
  outboxId: string;
}

/** The producer side, used by the relay: one `send` job per outbox id. */
export function createEmailQueue(opts: Omit<JobQueueOptions, 'name'>) {
  const queue = createJobQueue<EmailJobData>({ ...opts, name: EMAIL_QUEUE });
  return {
    onReconnect: (listener: () => void) => queue.onReconnect(listener),
    ping: () => queue.ping(),
    add: (ids: string[]) => queue.add(ids.map((outboxId) => ({ name: 'send', data: { outboxId }, jobId: outboxId }))),
    close: () => queue.close(),
  };
}

export type EmailQueue = ReturnType<typeof createEmailQueue>;

/** The consumer side, used by `npm run worker`: runs `process` for the outbox id of each job. */
export function createEmailWorker(opts: Omit<JobWorkerOptions, 'name' | 'label'>, process: (outboxId: string) => Promise<JobResult>) {
  return createJobWorker<EmailJobData>({ ...opts, name: EMAIL_QUEUE, label: 'email job' }, (data) => process(data.outboxId));
}
