import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { FastifyInstance } from 'fastify';

/** An incoming X-Request-Id is kept when it looks like an id; anything else gets a fresh UUID. */
const ACCEPTABLE_ID = /^[A-Za-z0-9._:-]{1,128}$/;

export function requestId(req: IncomingMessage): string {
  const given = req.headers['x-request-id'];
  return typeof given === 'string' && ACCEPTABLE_ID.test(given) ? given : randomUUID();
}

/**
 * One log line per request, after the response: method, path (never the query
 * string, which carries link tokens), route, status, duration, client address
 * and user agent. The request id is on the line (`reqId`) and echoed in the
 * `X-Request-Id` response header.
 */
export function registerRequestLog(app: FastifyInstance): void {
  // Once the server is closing, every response ends its connection: a keep-alive
  // socket whose request was in flight must not hold the shutdown open until it times out.
  let closing = false;
  app.addHook('preClose', async () => {
    closing = true;
  });
  app.addHook('onRequest', async (request, reply) => {
    reply.header('x-request-id', request.id);
  });
  app.addHook('onSend', async (_request, reply) => {
    if (closing) reply.header('connection', 'close');
  });
  app.addHook('onResponse', async (request, reply) => {
    const status = reply.statusCode;
    const line = {
      method: request.method,
      path: request.url.split('?')[0],
      route: request.routeOptions.url,
      status,
      ms: Math.round(reply.elapsedTime * 10) / 10,
      ip: request.ip,
      ua: request.headers['user-agent']?.slice(0, 200),
    };
    if (status >= 500) request.log.error(line, 'request');
    else request.log.info(line, 'request');
  });
}
