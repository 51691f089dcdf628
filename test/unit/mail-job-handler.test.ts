import { describe, expect, it } from 'vitest';
import type { Deliver, DeliveryOutcome } from '../../src/features/mail/delivery.js';
import { createMailJobHandler, toJobResult } from '../../src/features/mail/job-handler.js';

// What the worker tells BullMQ after delivering the outbox row a job names.
describe('the mail job handler', () => {
  const at = new Date('2026-01-01T00:00:00Z');

  it.each<[DeliveryOutcome, ReturnType<typeof toJobResult>]>([
    [{ kind: 'sent' }, { kind: 'done' }],
    [{ kind: 'skipped' }, { kind: 'done' }],
    [
      { kind: 'retry', error: 'SMTP 421', retryAt: at },
      { kind: 'delay', until: at },
    ],
    [
      { kind: 'failed', error: 'SMTP 550' },
      { kind: 'give_up', error: 'SMTP 550' },
    ],
    // Another sender holds the row: try just after its claim ends.
    [
      { kind: 'busy', until: at },
      { kind: 'delay', until: new Date(at.getTime() + 100) },
    ],
  ])('%o becomes %o', (outcome, result) => {
    expect(toJobResult(outcome)).toEqual(result);
  });

  it('delivers the row the job names, as a queued row (a retry stays queued)', async () => {
    const calls: [string, string][] = [];
    const deliver = (async (id: string, retryAs: 'pending' | 'queued') => {
      calls.push([id, retryAs]);
      return { kind: 'sent' };
    }) as Deliver;
    const handle = createMailJobHandler(deliver, { debug: () => undefined });
    expect(await handle('0b6f0c1e-0000-4000-8000-000000000001')).toEqual({ kind: 'done' });
    expect(calls).toEqual([['0b6f0c1e-0000-4000-8000-000000000001', 'queued']]);
  });
});
