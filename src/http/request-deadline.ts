import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { AppError } from '../errors.js';
import { Deadline, runWithDeadline } from '../infra/deadline.js';

/** After a commit that was in flight at the deadline, the handler has this long to send its real answer. */
const AFTER_COMMIT_GRACE_MS = 250;

const deadlines = new WeakMap<FastifyRequest, Deadline>();

const isThenable = (v: unknown): v is PromiseLike<unknown> => typeof (v as { then?: unknown } | null)?.then === 'function';

/**
 * REQUEST_DEADLINE_MS: one bound on every request, whatever it waits for (a pool
 * connection, a lock, a statement, a hashing thread, Redis, a provider). A request
 * not answered by then gets 503 service_unavailable with Retry-After; the database
 * layer rolls back its transaction instead of committing (infra/deadline.ts), and
 * whatever the handler still does is dropped without a second answer.
 */
export function registerRequestDeadline(app: FastifyInstance, deadlineMs: number): void {
  const answer = (request: FastifyRequest, reply: FastifyReply) => {
    if (reply.sent || request.socket?.destroyed) return;
    request.log.warn({ deadlineMs }, 'request deadline passed; answering 503');
    reply.send(new AppError('service_unavailable', 'The request could not be completed in time; retry shortly.', undefined, 5));
  };

  app.addHook('onRequest', (request, reply, done) => {
    const deadline = new Deadline();
    deadlines.set(request, deadline);
    const timer = setTimeout(() => {
      if (reply.sent) return;
      if (deadline.expire()) answer(request, reply);
      else deadline.afterCommits(() => setTimeout(() => answer(request, reply), AFTER_COMMIT_GRACE_MS).unref());
    }, deadlineMs);
    timer.unref();
    reply.raw.once('close', () => clearTimeout(timer));
    runWithDeadline(deadline, done);
  });
  // The body is read in the socket's own context: enter the request's again before validation and the handler.
  app.addHook('preValidation', (request, _reply, done) => {
    const deadline = deadlines.get(request);
    if (deadline) runWithDeadline(deadline, done);
    else done();
  });
  // A handler that finishes (or fails) after its request was answered 503 is silent: no second answer, no error log.
  app.addHook('onRoute', (route) => {
    const handler = route.handler as (...args: unknown[]) => unknown;
    route.handler = function (this: unknown, request: FastifyRequest, reply: FastifyReply) {
      const out = handler.call(this, request, reply);
      if (!isThenable(out)) return out;
      const late = () => reply.sent && deadlines.get(request)?.expired === true;
      return Promise.resolve(out).then(
        (value) => (late() ? undefined : value),
        (err: unknown) => {
          if (late()) return undefined;
          throw err;
        },
      );
    };
  });
}
