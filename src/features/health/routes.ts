import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';

export interface HealthRoutesOptions {
  pingDatabase: () => Promise<void>;
  /** Set when email goes through Redis: its state is reported, but it never makes the instance unready. */
  pingRedis: (() => Promise<void>) | null;
  /** How long a readiness check waits for each dependency. */
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
const Readiness = Type.Object({
  status: Type.Union([Type.Literal('ready'), Type.Literal('degraded'), Type.Literal('unavailable')], {
    description: 'ready: all up; degraded: serving, but Redis is down (email waits in the outbox); unavailable: the database is down (503)',
  }),
  checks: Type.Object({ database: Check, redis: Type.Optional(Check) }),
});

export const healthRoutes: FastifyPluginAsyncTypebox<HealthRoutesOptions> = async (app, { pingDatabase, pingRedis, timeoutMs = 2000 }) => {
  const check = (name: string, ping: () => Promise<void>) =>
    withTimeout(ping(), timeoutMs).then(
      () => 'up' as const,
      (err: unknown) => {
        app.log.warn({ err: (err as Error).message }, `readiness: ${name} down`);
        return 'down' as const;
      },
    );

  app.get(
    '/health/live',
    {
      schema: { tags: ['operations'], summary: 'The process is up', response: { 200: Type.Object({ status: Type.Literal('ok') }) } },
    },
    async () => ({ status: 'ok' as const }),
  );

  app.get(
    '/health/ready',
    {
      schema: {
        tags: ['operations'],
        summary: 'Ready to serve: 503 when the database is down or the process is shutting down',
        response: { 200: Readiness, 503: Readiness },
      },
    },
    async (_request, reply) => {
      const [database, redis] = await Promise.all([check('database', pingDatabase), pingRedis ? check('redis', pingRedis) : Promise.resolve(undefined)]);
      const status = database === 'down' ? 'unavailable' : redis === 'down' ? 'degraded' : 'ready';
      reply.header('cache-control', 'no-store');
      return reply.status(database === 'up' ? 200 : 503).send({ status, checks: redis ? { database, redis } : { database } });
    },
  );
};
