// npm run bench -- --soak [--soak-minutes N] [--workers N --rounds N --connections N]
//
// The mixed scenario of bench/mixed-phase.ts, without a break, for N minutes
// (default 5) against a fresh server on a fresh database, set up as bench/run.ts
// does. Every 30 s: requests/s, error rate, p50/p99 and the RSS of the server
// (primary + workers); at the end: the error rate of the whole run, the range of
// the p99 over the windows and the growth of the RSS from the end of the first
// (warm-up) window to the end. Prints markdown and writes bench/results/soak.json;
// the server is stopped and the database dropped at the end, on error and on Ctrl-C
// (run.ts's handlers).
import { loadavg } from 'node:os';
import path from 'node:path';
import type { BenchOptions } from './args.js';
import type { Cleanup } from './cleanup.js';
import { cpuAccounting, type CpuShares } from './cpu-accounting.js';
import { runOnFreshServer, type BenchRun } from './fresh-server.js';
import { describeMachine, describeRevision, type Machine } from './machine.js';
import { KINDS, KIND_LABEL, errorRate, runMixedPhase, type KindSummary, type MixedResult, type MixedWindow } from './mixed-phase.js';
import { fmt, writeJson } from './report.js';
import { currentRss, type PeakRss } from './rss-sampler.js';
import { openSessions, registerUsers } from './seed.js';

const REPO_ROOT = path.resolve(import.meta.dirname, '..');
const RESULTS_FILE = path.join(REPO_ROOT, 'bench', 'results', 'soak.json');
const WINDOW_SECONDS = 30;

const log = (msg: string) => console.error(`bench: ${msg}`);
const ms = (x: number) => `${fmt(x, x < 10 ? 1 : 0)} ms`;
const pct = (x: number, digits = 2) => `${fmt(100 * x, digits)} %`;
const mb = (x: number) => `${fmt(x, 1)} MB`;

export interface SoakWindow {
  index: number;
  endS: number;
  seconds: number;
  requests: number;
  requestsPerSecond: number;
  non2xx: number;
  errors: number;
  errorRate: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  /** p99 of refreshes and /users/me only (the overall p99 is that of the hashing requests, 5 in 100). */
  refreshAndMeP99Ms: number;
  byKind: MixedWindow['byKind'];
  /** VmRSS / RssAnon summed over the primary and its workers at the end of the window. */
  rssMb: number;
  rssAnonMb: number;
  rssByPidMb: Record<number, number>;
  cpu: CpuShares;
}

export interface SoakSummary {
  requests: number;
  requestsPerSecond: number;
  errorRate: number;
  /** Over the windows after the warm-up window (all windows when there is only one). */
  p99MinMs: number;
  p99MaxMs: number;
  refreshAndMeP99MinMs: number;
  refreshAndMeP99MaxMs: number;
  /** At the end of the warm-up window, and at the end. */
  rssStartMb: number;
  rssEndMb: number;
  rssGrowthMb: number;
  rssGrowthPct: number;
  rssAnonStartMb: number;
  rssAnonEndMb: number;
  rssAnonGrowthMb: number;
  notAdvanced: number;
  cpu: CpuShares;
}

export async function runSoak(cleanup: Cleanup, opts: BenchOptions): Promise<void> {
  const machine = describeMachine();
  const command = `npm run bench -- ${process.argv.slice(2).join(' ')}`;

  await runOnFreshServer(REPO_ROOT, cleanup, { label: 'soak', workers: opts.workers, rounds: opts.rounds }, ({ server, rss }) =>
    soak({ opts, machine, command, base: server.baseUrl, pid: server.pid, rss }),
  );
}

async function soak({ opts, machine, command, base, pid, rss }: BenchRun): Promise<void> {
  const c = opts.connections;
  const seconds = opts.soakMinutes * 60;
  log(`server ${pid} ready on ${base} (${opts.workers} workers, bcrypt cost ${opts.rounds})`);

  log(`seeding ${2 * c} users and ${c} sessions`);
  rss.phase('seed');
  const users = await registerUsers(base, 2 * c, c);
  const sessions = await openSessions(base, users.slice(0, c), c);

  log(`soak: the mixed scenario, ${c} virtual users, ${opts.soakMinutes} min, a line every ${WINDOW_SECONDS} s`);
  const acct = cpuAccounting(pid);
  const first = acct.snapshot();
  let last = first;
  const windows: SoakWindow[] = [];
  const windowCount = Math.ceil(seconds / WINDOW_SECONDS);
  rss.phase('window 1');
  const onWindow = (w: MixedWindow) => {
    const now = currentRss(pid);
    const snap = acct.snapshot();
    const cpu = acct.shares(last, snap);
    last = snap;
    if (w.index < windowCount) rss.phase(`window ${w.index + 1}`);
    const t = w.total;
    windows.push({
      index: w.index,
      endS: w.endS,
      seconds: w.seconds,
      requests: t.requests,
      requestsPerSecond: t.requestsPerSecond,
      non2xx: t.non2xx,
      errors: t.errors,
      errorRate: errorRate(t),
      p50Ms: t.p50Ms,
      p99Ms: t.p99Ms,
      maxMs: t.maxMs,
      refreshAndMeP99Ms: w.refreshAndMe.p99Ms,
      byKind: w.byKind,
      rssMb: now.totalMb,
      rssAnonMb: now.anonMb,
      rssByPidMb: now.byPid,
      cpu,
    });
    log(`window ${w.index} (${fmt(w.endS)} s): ${fmt(t.requestsPerSecond, 1)} req/s, errors ${pct(errorRate(t))}, p99 ${ms(t.p99Ms)}, RSS ${mb(now.totalMb)}`);
  };
  const mixed = await runMixedPhase({ baseUrl: base, users, sessions, duration: seconds, window: { seconds: WINDOW_SECONDS, onWindow } });
  const cpu = acct.shares(first, acct.snapshot());
  const peaks = rss.stop();

  const summary = summarise(mixed, windows, cpu);
  const date = new Date().toISOString();
  const revision = describeRevision(REPO_ROOT);
  console.log(renderSoak({ date, command, revision, machine, opts, windows, mixed, summary, peaks }));
  if (mixed.errorSamples.length) console.log(`\nfirst errors:\n${mixed.errorSamples.map((s) => `- ${s}`).join('\n')}`);
  writeJson(
    {
      date,
      command,
      revision,
      machine,
      loadAverageAtEnd: loadavg()[0]!,
      options: opts,
      windowSeconds: WINDOW_SECONDS,
      summary,
      windows,
      mixed,
      peakRss: peaks,
    },
    RESULTS_FILE,
  );
  log(`wrote ${path.relative(REPO_ROOT, RESULTS_FILE)}`);
}

function summarise(mixed: MixedResult, windows: SoakWindow[], cpu: CpuShares): SoakSummary {
  const steady = windows.length > 1 ? windows.slice(1) : windows;
  const start = windows[0]!;
  const end = windows.at(-1)!;
  const p99s = steady.map((w) => w.p99Ms).filter((x) => !Number.isNaN(x));
  const lightP99s = steady.map((w) => w.refreshAndMeP99Ms).filter((x) => !Number.isNaN(x));
  return {
    requests: mixed.total.requests,
    requestsPerSecond: mixed.total.requestsPerSecond,
    errorRate: errorRate(mixed.total),
    p99MinMs: Math.min(...p99s),
    p99MaxMs: Math.max(...p99s),
    refreshAndMeP99MinMs: Math.min(...lightP99s),
    refreshAndMeP99MaxMs: Math.max(...lightP99s),
    rssStartMb: start.rssMb,
    rssEndMb: end.rssMb,
    rssGrowthMb: end.rssMb - start.rssMb,
    rssGrowthPct: (100 * (end.rssMb - start.rssMb)) / start.rssMb,
    rssAnonStartMb: start.rssAnonMb,
    rssAnonEndMb: end.rssAnonMb,
    rssAnonGrowthMb: end.rssAnonMb - start.rssAnonMb,
    notAdvanced: mixed.notAdvanced,
    cpu,
  };
}

function kindRow(label: string, share: string, s: KindSummary): string {
  return `| ${label} | ${share} | ${fmt(s.requests)} | ${fmt(s.requestsPerSecond, 1)} | ${ms(s.p50Ms)} | ${ms(s.p99Ms)} | ${ms(s.maxMs)} | ${fmt(s.non2xx)} | ${fmt(s.errors)} |`;
}

function renderSoak(r: {
  date: string;
  command: string;
  revision: string;
  machine: Machine;
  opts: BenchOptions;
  windows: SoakWindow[];
  mixed: MixedResult;
  summary: SoakSummary;
  peaks: PeakRss[];
}): string {
  const { machine: m, opts, windows, mixed, summary: s } = r;
  const signed = (x: number, unit: string, digits = 1) => `${x >= 0 ? '+' : ''}${fmt(x, digits)}${unit}`;
  const steady = windows.length > 1 ? `windows 2–${windows.length}` : 'the only window';
  return [
    `Tessera soak, ${r.date}`,
    '',
    `- machine: ${m.cores} cores, ${m.cpuModel}, ${m.memoryGb} GB, Node ${m.node}; load average ${m.loadAverageAtStart.toFixed(2)} at start`,
    `- command: \`${r.command}\` at ${r.revision}`,
    `- server: ${opts.workers} workers, bcrypt cost ${opts.rounds}; ${mixed.connections} virtual users, ${opts.soakMinutes} min, per 100 requests ${KINDS.map((k) => `${mixed.mix[k]} ${KIND_LABEL[k]}`).join(', ')}; client, PostgreSQL and server share the machine`,
    '',
    `| window | end (s) | req/s | non-2xx + socket errors | error rate | p50 | p99 | p99 refresh + /users/me | RSS, primary + workers | of which anon |`,
    '|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...windows.map(
      (w) =>
        `| ${w.index}${w.index === 1 && windows.length > 1 ? ' (warm-up)' : ''} | ${fmt(w.endS)} | ${fmt(w.requestsPerSecond, 1)} | ${fmt(w.non2xx + w.errors)} | ${pct(w.errorRate)} | ${ms(w.p50Ms)} | ${ms(w.p99Ms)} | ${ms(w.refreshAndMeP99Ms)} | ${mb(w.rssMb)} | ${mb(w.rssAnonMb)} |`,
    ),
    '',
    '| request | share | requests | req/s | p50 | p99 | max | non-2xx | socket errors |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...KINDS.map((k) => kindRow(KIND_LABEL[k], `${mixed.mix[k]} %`, mixed.byKind[k])),
    kindRow('refresh + /users/me', `${mixed.mix.refresh + mixed.mix.me} %`, mixed.refreshAndMe),
    kindRow('all', '', mixed.total),
    '',
    '| measure | value |',
    '|---|---:|',
    `| requests | ${fmt(s.requests)} (${fmt(s.requestsPerSecond, 1)}/s) |`,
    `| error rate (non-2xx + socket errors) | ${pct(s.errorRate, 3)} (${fmt(mixed.total.non2xx)} + ${fmt(mixed.total.errors)}) |`,
    `| refresh 200s that did not rotate | ${fmt(s.notAdvanced)} |`,
    `| p99 over ${steady}: min / max | ${ms(s.p99MinMs)} / ${ms(s.p99MaxMs)} |`,
    `| p99 of refresh + /users/me over ${steady}: min / max | ${ms(s.refreshAndMeP99MinMs)} / ${ms(s.refreshAndMeP99MaxMs)} |`,
    `| RSS, primary + workers: after warm-up → end | ${mb(s.rssStartMb)} → ${mb(s.rssEndMb)} |`,
    `| RSS growth | ${signed(s.rssGrowthMb, ' MB')} (${signed(s.rssGrowthPct, ' %')}) |`,
    `| anon RSS: after warm-up → end (growth) | ${mb(s.rssAnonStartMb)} → ${mb(s.rssAnonEndMb)} (${signed(s.rssAnonGrowthMb, ' MB')}) |`,
    `| peak RSS per process | ${r.peaks.map((p) => `${p.role} ${fmt(p.peakMb)}`).join(', ')} MB |`,
    `| CPU: server · client · postgres · other | ${fmt(s.cpu.server)} · ${fmt(s.cpu.bench)} · ${fmt(s.cpu.postgres)} · ${fmt(s.cpu.other)} % |`,
  ].join('\n');
}
