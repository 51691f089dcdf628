// npm run bench [-- --workers N --rounds N --duration S --connections N --only PHASES --cpu-prof DIR]
//   PHASES: a comma-separated subset of login,fairness,refresh,code,me,mixed,workers,restart; BENCH_QUICK=1: 3 s phases
// npm run bench -- --email [--messages N]   (email delivery: see bench/email.ts)
// npm run bench -- --soak [--soak-minutes N]   (the mixed scenario for N minutes: see bench/soak.ts)
//
// One run against a real PostgreSQL and a Redis of its own, with the server's default
// settings: builds the server (when stale), starts `node dist/main.js`
// on a fresh database, measures the bcrypt ceiling, logins, logins and /users/me
// together (fairness), refreshes, /users/me and a mix of all four (bench/mixed-phase.ts),
// then /users/me with WORKERS=1 and 2 and the restart time of `npm start`; samples every server
// process's RSS, prints a markdown table and writes bench/results/latest.json. The server is stopped and the database
// dropped at the end, on error and on Ctrl-C.
import { loadavg } from 'node:os';
import path from 'node:path';
import { parseBenchArgs, type BenchOptions, type Phase } from './args.js';
import { measureBcryptLimit } from './bcrypt-limit.js';
import { Cleanup } from './cleanup.js';
import { cpuAccounting, type CpuShares } from './cpu-accounting.js';
import { ME_CONNECTIONS, runFairnessPhase } from './fairness-phase.js';
import { runCodeFlowPhase } from './code-flow-phase.js';
import { runOnFreshServer, type BenchRun, type FreshServer } from './fresh-server.js';
import { runLoginPhase } from './login-phase.js';
import { runMixedPhase } from './mixed-phase.js';
import { describeMachine, describeRevision } from './machine.js';
import { runRefreshPhase } from './refresh-phase.js';
import { renderMarkdown, writeJson, type Report } from './report.js';
import { resultRows, type Measurements } from './results-table.js';
import { openSessions, registerUsers } from './seed.js';
import { runUsersMePhase } from './users-me-phase.js';

const REPO_ROOT = path.resolve(import.meta.dirname, '..');
const RESULTS_FILE = path.join(REPO_ROOT, 'bench', 'results', 'latest.json');
const BCRYPT_LIMIT_SECONDS = 8;

const log = (msg: string) => console.error(`bench: ${msg}`);

async function main(cleanup: Cleanup): Promise<void> {
  const opts = parseBenchArgs();
  if (opts.email) {
    const { runEmailBench } = await import('./email.js');
    await runEmailBench(cleanup, { messages: opts.messages });
    return;
  }
  if (opts.soak) {
    const { runSoak } = await import('./soak.js');
    await runSoak(cleanup, opts);
    return;
  }
  const machine = describeMachine();
  const args = process.argv.slice(2);
  const command = args.length ? `npm run bench -- ${args.join(' ')}` : 'npm run bench';

  const nodeFlags = opts.cpuProfDir ? ['--cpu-prof', `--cpu-prof-dir=${path.resolve(opts.cpuProfDir)}`] : [];
  await runOnFreshServer(REPO_ROOT, cleanup, { label: 'run', workers: opts.workers, rounds: opts.rounds, nodeFlags, redis: true }, (fresh) =>
    measure({ opts, machine, command, base: fresh.server.baseUrl, pid: fresh.server.pid, rss: fresh.rss }, fresh),
  );
}

async function measure({ opts, machine, command, base, pid, rss }: BenchRun, fresh: FreshServer): Promise<void> {
  const { server, another } = fresh;
  log(`server ${pid} ready on ${base} (${opts.workers} workers, bcrypt cost ${opts.rounds}, own Redis, default settings)`);
  const on = (p: Phase) => opts.phases.has(p);

  const acct = cpuAccounting(pid);
  const cpu: Record<string, CpuShares> = {};
  async function phase<T>(name: string, what: string, fn: () => Promise<T>): Promise<T> {
    log(what);
    rss.phase(name);
    const from = acct.snapshot();
    const result = await fn();
    cpu[name] = acct.shares(from, acct.snapshot());
    return result;
  }

  const c = opts.connections;
  const m: Omit<Measurements, 'peaks' | 'cpu'> = { opts, machine };
  if (on('login') || on('fairness')) {
    const bcryptSeconds = Math.min(BCRYPT_LIMIT_SECONDS, opts.duration);
    m.bcryptLimit = await phase('bcrypt limit', `measuring the bcrypt limit for ${bcryptSeconds} s`, () => measureBcryptLimit(opts.rounds, bcryptSeconds));
  }

  log(`seeding ${2 * c} users and ${c + 1} sessions`);
  rss.phase('seed');
  const users = await registerUsers(base, 2 * c, c);
  const refreshSessions = await openSessions(base, users.slice(0, c), c);
  const [probe] = await openSessions(base, users.slice(c, c + 1), 1);
  const accessToken = probe!.accessToken;

  if (on('login')) {
    // Logins alone give the throughput next to the bcrypt limit; then logins again with the
    // /users/me probe give latency and event-loop stalls under login load (the probe's own
    // CPU would otherwise be counted against login throughput).
    m.loginOnly = await phase('login', `login phase: ${c} connections, ${opts.duration} s`, () =>
      runLoginPhase({ baseUrl: base, users, accessToken, connections: c, duration: opts.duration, workers: opts.workers, probeRate: 0 }),
    );
    m.login = await phase('login + /users/me', `login + /users/me probe phase: ${c} connections, ${opts.duration} s`, () =>
      runLoginPhase({ baseUrl: base, users, accessToken, connections: c, duration: opts.duration, workers: opts.workers }),
    );
  }
  if (on('fairness')) {
    m.fairness = await phase(
      'fairness',
      `fairness phase: logins (${c} connections) and /users/me (${ME_CONNECTIONS} connections) at once, ${opts.duration} s`,
      () => runFairnessPhase({ baseUrl: base, users, accessToken, connections: c, duration: opts.duration }),
    );
  }
  if (on('refresh')) {
    m.refresh = await phase('refresh', `refresh phase: ${c} connections, ${opts.duration} s`, () =>
      runRefreshPhase({ baseUrl: base, sessions: refreshSessions, duration: opts.duration }),
    );
  }
  if (on('code')) {
    m.codeFlow = await phase('code flow', `authorization code flow phase: ${c} connections, ${opts.duration} s`, () =>
      runCodeFlowPhase({
        repoRoot: REPO_ROOT,
        baseUrl: base,
        databaseUrl: fresh.databaseUrl,
        dataDir: fresh.dataDir,
        user: users[0]!,
        connections: c,
        duration: opts.duration,
      }),
    );
  }
  if (on('me')) {
    m.me = await phase('/users/me', `/users/me phase: ${ME_CONNECTIONS} connections, ${opts.duration} s`, () =>
      runUsersMePhase({ baseUrl: base, accessToken, duration: opts.duration }),
    );
  }
  if (on('mixed')) {
    // Fresh sessions for the mixed phase's virtual users (the seeded ones may be past
    // their access tokens' lifetime after long phases).
    rss.phase('seed');
    const mixedSessions = await openSessions(base, users.slice(0, c), c);
    m.mixed = await phase('mixed', `mixed phase (register 1 : login 4 : refresh 20 : /users/me 75): ${c} virtual users, ${opts.duration} s`, () =>
      runMixedPhase({ baseUrl: base, users, sessions: mixedSessions, duration: opts.duration }),
    );
  }
  const peaks = rss.stop();
  await server.stop();

  if (on('workers')) {
    m.meByWorkers = {};
    for (const workers of [1, 2]) {
      const other = await another({ workers });
      log(`/users/me phase on a server of its own with WORKERS=${workers}: ${ME_CONNECTIONS} connections, ${opts.duration} s`);
      m.meByWorkers[workers] = await runUsersMePhase({ baseUrl: other.baseUrl, accessToken, duration: opts.duration });
      await other.stop();
    }
  }
  if (on('restart')) {
    // What a user sees after a restart: `npm start`, whose prestart finds dist/ up to date.
    const started = performance.now();
    const restarted = await another({ workers: opts.workers, viaNpm: true });
    m.restartMs = performance.now() - started;
    log(`restart: npm start answered /health/ready after ${Math.round(m.restartMs)} ms`);
    await restarted.stop();
  }

  const rows = resultRows({ ...m, peaks, cpu });
  const report: Report = {
    date: new Date().toISOString(),
    command,
    revision: describeRevision(REPO_ROOT),
    machine,
    loadAverageAtEnd: loadavg()[0]!,
    options: { ...opts, phases: [...opts.phases] } as unknown as BenchOptions,
    rows,
    details: { ...m, opts: undefined, machine: undefined, peakRss: peaks, cpuSharesPercent: cpu },
  };
  console.log(renderMarkdown(report));
  for (const [name, samples] of [
    ['login', m.login?.errorSamples],
    ['fairness login', m.fairness?.errorSamples],
    ['refresh', m.refresh?.errorSamples],
    ['code flow', m.codeFlow?.errorSamples],
    ['mixed', m.mixed?.errorSamples],
  ] as const) {
    if (samples?.length) console.log(`\nfirst ${name} errors:\n${samples.map((x) => `- ${x}`).join('\n')}`);
  }
  writeJson(report, RESULTS_FILE);
  log(`wrote ${path.relative(REPO_ROOT, RESULTS_FILE)}`);
}

const cleanup = new Cleanup();
// `on`, not `once`: a second signal (a second Ctrl-C, or tsx relaying the first)
// must not find the process without a handler, which would exit before cleanup ends.
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    log(`${signal}: cleaning up`);
    void cleanup.run().finally(() => process.exit(130));
  });
}
try {
  await main(cleanup);
} catch (err) {
  console.error('bench: failed:', err);
  process.exitCode = 1;
} finally {
  await cleanup.run();
}
