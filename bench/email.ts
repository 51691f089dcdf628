// npm run bench -- --email [--messages N]
//
// Email delivery in the production shape: `node dist/main.js` relays the outbox to
// BullMQ on a redis-server of the bench's own, one `node dist/worker.js` sends to a
// local SMTP sink, on a fresh PostgreSQL database. Measures the time from a
// registration request to the SMTP server accepting its confirmation email, how many
// messages per second one worker sends, and how long forgot-password answers take for
// known and unknown addresses.
import { spawn, type ChildProcess } from 'node:child_process';
import { openSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { OwnRedis } from '../test/helpers/redis-server.js';
import type { Cleanup } from './cleanup.js';
import { runOnFreshServer } from './fresh-server.js';
import { postJson } from './http.js';
import { describeMachine, describeRevision } from './machine.js';
import { freePort } from './server.js';
import { startSmtpSink, type SmtpSink } from './smtp-sink.js';

const REPO_ROOT = path.resolve(import.meta.dirname, '..');
const PASSWORD = 'correct horse battery staple';
const log = (msg: string) => console.error(`bench: ${msg}`);

const quantile = (xs: number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? NaN;
};
const ms = (x: number) => `${x.toFixed(1)} ms`;

function startWorker(env: NodeJS.ProcessEnv, logFile: string): ChildProcess {
  const out = openSync(logFile, 'a');
  return spawn(process.execPath, ['dist/worker.js'], { cwd: REPO_ROOT, env, stdio: ['ignore', out, out] });
}

const post = async (base: string, url: string, body: object) => (await postJson(`${base}${url}`, body)).status;

export async function runEmailBench(cleanup: Cleanup, opts: { messages: number }): Promise<void> {
  const machine = describeMachine();
  const redis = await OwnRedis.start();
  cleanup.add('stop redis-server', () => redis.stop());
  const sink = await startSmtpSink(await freePort());
  cleanup.add('stop SMTP sink', () => sink.close());

  const mailEnv = {
    REDIS_URL: redis.url,
    SMTP_SERVER: '127.0.0.1',
    SMTP_PORT: String(sink.port),
    REQUIRE_EMAIL_VERIFICATION: 'true',
    // No per-address caps in the way of the forgot-password timing below.
    EMAIL_RESEND_INTERVAL: '0',
    EMAIL_HOURLY_LIMIT: '1000',
  };
  // bcrypt cost 4: registration measures mail, not hashing.
  await runOnFreshServer(REPO_ROOT, cleanup, { label: 'email', workers: 1, rounds: 4, extra: mailEnv }, ({ server, databaseUrl, dataDir }) =>
    measureEmail({
      cleanup,
      opts,
      machine,
      base: server.baseUrl,
      sink,
      databaseUrl,
      dataDir,
      env: { ...process.env, ...mailEnv, DATABASE_URL: databaseUrl, DATA_DIR: dataDir, LOG_LEVEL: 'warn', NODE_ENV: 'development' },
    }),
  );
}

interface EmailRun {
  cleanup: Cleanup;
  opts: { messages: number };
  machine: ReturnType<typeof describeMachine>;
  base: string;
  sink: SmtpSink;
  databaseUrl: string;
  dataDir: string;
  /** The worker's environment: the server's, with the database and data dir. */
  env: NodeJS.ProcessEnv;
}

async function measureEmail({ cleanup, opts, machine, base, sink, databaseUrl, dataDir, env }: EmailRun): Promise<void> {
  const worker = startWorker(env, path.join(dataDir, 'worker.log'));
  cleanup.add('stop worker', async () => {
    worker.kill('SIGTERM');
    await new Promise((r) => worker.once('exit', r));
  });
  await sleep(1500);

  // 1. Registration → SMTP acceptance, one at a time, worker warm.
  log('registration → delivery latency: 50 sequential registrations');
  const latencies: number[] = [];
  const afterResponse: number[] = [];
  for (let i = 0; i < 55; i++) {
    const email = `latency.${i}@bench.example`;
    const t0 = performance.timeOrigin + performance.now();
    if ((await post(base, '/auth/register', { email, password: PASSWORD })) !== 201) throw new Error('registration failed');
    const t1 = performance.timeOrigin + performance.now();
    const at = await sink.arrival(email);
    if (i >= 5) {
      latencies.push(at - t0);
      afterResponse.push(at - t1);
    }
  }

  // 2. Throughput of one worker: N outbox rows committed at once.
  log(`throughput: ${opts.messages} messages written to the outbox in one transaction`);
  const before = sink.count();
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  const start = Date.now();
  await client.query(
    `insert into outbox (kind, recipient, payload, available_at, created_at)
     select 'password_changed', 'bulk.' || g || '@bench.example', '{"name":"there"}'::jsonb, now(), now() from generate_series(1, $1) g`,
    [opts.messages],
  );
  while (sink.count() - before < opts.messages) {
    if (Date.now() - start > 300_000) throw new Error('throughput phase took over 5 minutes');
    await sleep(20);
  }
  const seconds = (Date.now() - start) / 1000;
  const unsent = await client.query(`select count(*)::int as n from outbox where status <> 'sent'`);
  await client.end();

  // 3. Forgot password: known vs unknown addresses, interleaved.
  log('forgot-password timing: 200 known and 200 unknown addresses, interleaved');
  const known: number[] = [];
  const unknown: number[] = [];
  for (let i = 0; i < 200; i++) {
    for (const [email, into] of [
      [`latency.${i % 55}@bench.example`, known],
      [`nobody.${i}@bench.example`, unknown],
    ] as const) {
      const t0 = performance.now();
      if ((await post(base, '/auth/password/forgot', { email })) !== 202) throw new Error('forgot failed');
      into.push(performance.now() - t0);
    }
  }

  const rows = [
    [
      'registration request → SMTP accepted (p50 / p95 / max)',
      `${ms(quantile(latencies, 0.5))} / ${ms(quantile(latencies, 0.95))} / ${ms(Math.max(...latencies))}`,
    ],
    ['registration response → SMTP accepted (p50 / p95)', `${ms(quantile(afterResponse, 0.5))} / ${ms(quantile(afterResponse, 0.95))}`],
    [
      `one worker, ${opts.messages} queued messages → SMTP`,
      `${(opts.messages / seconds).toFixed(0)} msg/s (${seconds.toFixed(1)} s, ${unsent.rows[0]?.n ?? '?'} left unsent)`,
    ],
    ['POST /auth/password/forgot, known address (p50 / p90)', `${ms(quantile(known, 0.5))} / ${ms(quantile(known, 0.9))}`],
    ['POST /auth/password/forgot, unknown address (p50 / p90)', `${ms(quantile(unknown, 0.5))} / ${ms(quantile(unknown, 0.9))}`],
  ];
  console.log(`\n### Email delivery (${new Date().toISOString().slice(0, 10)}, ${describeRevision(REPO_ROOT)})\n`);
  console.log(
    `Machine: ${machine.cores} × ${machine.cpuModel}, ${machine.memoryGb} GiB, Node ${machine.node}. Command: \`npm run bench -- --email --messages ${opts.messages}\`.`,
  );
  console.log('API server (1 process) + 1 worker (WORKER_CONCURRENCY=5) + Redis + PostgreSQL + SMTP sink, all on this machine.\n');
  console.log('| measure | result |\n|---|---|');
  for (const [k, v] of rows) console.log(`| ${k} | ${v} |`);
}
