import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';

export interface HealthRoutesOptions {
  pingDatabase: () => Promise<void>;
  /** How long a readiness check waits for the database. */
  timeoutMs?: number;
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error('timeout')), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

const Check = Type.Union([Type.Literal('up'), Type.Literal('down')]);
const Readiness = Type.Object({ status: Type.Union([Type.Literal('ready'), Type.Literal('unavailable')]), checks: Type.Object({ database: Check }) });

export const healthRoutes: FastifyPluginAsyncTypebox<HealthRoutesOptions> = async (app, { pingDatabase, timeoutMs = 2000 }) => {
  app.get('/health/live', {
    schema: { tags: ['operations'], summary: 'The process is up', response: { 200: Type.Object({ status: Type.Literal('ok') }) } },
  }, async () => ({ status: 'ok' as const }));

  app.get('/health/ready', {
    schema: { tags: ['operations'], summary: 'Ready to serve: 503 when a dependency is down', response: { 200: Readiness, 503: Readiness } },
  }, async (request, reply) => {
    const database = await withTimeout(pingDatabase(), timeoutMs).then(
      () => 'up' as const,
      (err: unknown) => {
        request.log.warn({ err }, 'readiness: database down');
        return 'down' as const;
      },
    );
    const ready = database === 'up';
    reply.header('cache-control', 'no-store');
    return reply.status(ready ? 200 : 503).send({ status: ready ? 'ready' : 'unavailable', checks: { database } });
  });
};
