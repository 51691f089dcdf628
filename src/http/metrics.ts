import { timingSafeEqual } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { Counter, Gauge, Histogram } from 'prom-client';
import { AppError } from '../errors.js';
import type { Metrics } from '../infra/metrics.js';

export interface MetricsSources {
  metrics: Metrics;
  /** Hashes waiting for a hashing thread. */
  hashQueueDepth: () => number;
  /** Unsent messages older than the outbox's grace (by status), failed ones, and the oldest of those unsent. */
  outbox: () => Promise<{ unsent: Record<string, number>; failed: number; oldestUnsentAt: Date | null }>;
  /** The database pool (null on the embedded database). */
  pool: (() => { total: number; idle: number; waiting: number }) | null;
  /** In a cluster worker: worker processes that crashed since the primary started (null in a single process). */
  workerCrashes: (() => number) | null;
  now: () => Date;
  /** Bearer token required to read /metrics (METRICS_TOKEN), or null. */
  token: string | null;
}

const sameSecret = (a: string, b: string) => {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
};

/**
 * GET /metrics in Prometheus format: process defaults, requests by route and
 * status, sign-ins, refresh-token reuse, password hashing, the outbox backlog,
 * the database pool. A gauge whose source fails (database down) is
 * skipped for that scrape; the scrape itself never fails for it.
 */
export function registerMetrics(app: FastifyInstance, src: MetricsSources): void {
  const registry = src.metrics.registry;
  const duration = new Histogram({
    name: 'http_request_duration_seconds',
    help: 'HTTP request latency by route and status',
    labelNames: ['method', 'route', 'status'],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [registry],
  });
  const requests = new Counter({
    name: 'http_requests_total',
    help: 'HTTP requests by route and status',
    labelNames: ['method', 'route', 'status'],
    registers: [registry],
  });
  new Gauge({
    name: 'password_hash_queue_depth',
    help: 'Password hashes waiting for a hashing thread',
    registers: [registry],
    collect() {
      this.set(src.hashQueueDepth());
    },
  });

  // Nothing here moves with one message on its way: a scrape before and after a
  // forgot-password must not tell a known address from an unknown one (docs/security.md).
  const backlog = new Gauge({
    name: 'tessera_outbox_backlog_messages',
    help: 'Messages still unsent a minute after they were written, by status (pending, queued, sending); 0 when mail flows',
    labelNames: ['status'],
    registers: [registry],
  });
  const failed = new Gauge({
    name: 'tessera_outbox_failed_messages',
    help: 'Messages given up on (`tessera outbox retry` re-queues them)',
    registers: [registry],
  });
  const oldest = new Gauge({
    name: 'tessera_outbox_oldest_unsent_age_seconds',
    help: 'Age of the oldest message still unsent a minute after it was written (0 when none)',
    registers: [registry],
  });
  const refreshOutbox = async () => {
    try {
      const o = await src.outbox();
      for (const [status, n] of Object.entries(o.unsent)) backlog.set({ status }, n);
      failed.set(o.failed);
      oldest.set(o.oldestUnsentAt ? Math.max(0, (src.now().getTime() - o.oldestUnsentAt.getTime()) / 1000) : 0);
    } catch (err) {
      app.log.warn({ err }, 'metrics: cannot read the outbox');
    }
  };

  const pool = src.pool;
  if (pool) {
    new Gauge({
      name: 'tessera_db_pool_connections',
      help: 'Database pool connections by state (total, idle) and requests waiting for one (waiting)',
      labelNames: ['state'],
      registers: [registry],
      collect() {
        const p = pool();
        this.set({ state: 'total' }, p.total);
        this.set({ state: 'idle' }, p.idle);
        this.set({ state: 'waiting' }, p.waiting);
      },
    });
  }

  const workerCrashes = src.workerCrashes;
  if (workerCrashes) {
    new Counter({
      name: 'tessera_cluster_worker_crashes_total',
      help: 'Worker processes of this cluster (WORKERS=n) that died and were replaced, counted by the primary since it started',
      registers: [registry],
      collect() {
        this.reset();
        this.inc(workerCrashes());
      },
    });
  }

  app.addHook('onResponse', (request, reply, done) => {
    const labels = { method: request.method, route: request.routeOptions.url ?? 'unmatched', status: String(reply.statusCode) };
    requests.inc(labels);
    duration.observe(labels, reply.elapsedTime / 1000);
    done();
  });

  app.get('/metrics', { schema: { tags: ['operations'], summary: 'Prometheus metrics (Bearer METRICS_TOKEN when set)' } }, async (request, reply) => {
    if (src.token) {
      const given = /^Bearer (.+)$/.exec(request.headers.authorization ?? '')?.[1] ?? '';
      if (!sameSecret(given, src.token)) throw new AppError('unauthorized', 'GET /metrics needs Authorization: Bearer <METRICS_TOKEN>.');
    }
    await refreshOutbox();
    reply.header('content-type', registry.contentType).header('cache-control', 'no-store');
    return registry.metrics();
  });
}
