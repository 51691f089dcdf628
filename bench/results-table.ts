import type { BenchOptions } from './args.js';
import type { CodeFlowPhaseResult } from './code-flow-phase.js';
import type { CpuShares } from './cpu-accounting.js';
import { ME_CONNECTIONS, type FairnessResult } from './fairness-phase.js';
import type { LoginPhaseResult } from './login-phase.js';
import type { LoadSummary } from './load.js';
import type { Machine } from './machine.js';
import { KINDS, KIND_LABEL, type KindSummary, type MixedResult } from './mixed-phase.js';
import type { RefreshPhaseResult } from './refresh-phase.js';
import { fmt, row, type Row } from './report.js';
import type { PeakRss } from './rss-sampler.js';

const RSS_LIMIT_MB = 150;
const LOGIN_RATIO_TARGET = 0.95;
const STALL_LIMIT_MS = 20;
/** 1,500 refreshes/s on 2 cores. */
const REFRESH_PER_CORE_TARGET = 750;
/** Share of all cores other processes may use before a phase's numbers are suspect. */
const OTHER_CPU_LIMIT_PCT = 5;

const FAIR_LOGIN_RATIO_TARGET = 0.4;
const FAIR_ME_P99_LIMIT_MS = 50;
const ME_W2_TARGET = 4000;
const RESTART_LIMIT_MS = 2000;

/** Each present when its phase ran (`--only`). */
export interface Measurements {
  opts: BenchOptions;
  machine: Machine;
  bcryptLimit?: { hashesPerSecond: number; threads: number };
  /** Logins alone: the throughput compared with the bcrypt limit. */
  loginOnly?: LoginPhaseResult;
  /** Logins with the /users/me probe: latency and stalls under login load. */
  login?: LoginPhaseResult;
  /** Logins and /users/me, both saturating, at once. */
  fairness?: FairnessResult;
  refresh?: RefreshPhaseResult;
  /** The OpenID authorization code flow (authorize → code → token) with a single sign-on session. */
  codeFlow?: CodeFlowPhaseResult;
  me?: LoadSummary;
  mixed?: MixedResult;
  /** /users/me alone on ME_CONNECTIONS connections, by WORKERS. */
  meByWorkers?: Record<number, LoadSummary>;
  /** `npm start` (dist/ up to date) until GET /health/ready answers 200. */
  restartMs?: number;
  peaks: PeakRss[];
  cpu: Record<string, CpuShares>;
}

const errorsOf = (s: LoadSummary) =>
  `${fmt(s.non2xx)} non-2xx (${
    Object.entries(s.statusCodes)
      .filter(([c]) => !c.startsWith('2'))
      .map(([c, n]) => `${n}× ${c}`)
      .join(', ') || 'none'
  }), ${fmt(s.errors)} socket errors, ${fmt(s.timeouts)} timeouts`;

function fairnessRows(f: FairnessResult, limit: number | undefined, c: number): Row[] {
  const ratio = limit ? f.login.okPerSecond / limit : NaN;
  const timeouts = f.login.timeouts + f.me.timeouts;
  return [
    row(
      `fairness: logins/s (${c} conns) while /users/me runs (${ME_CONNECTIONS} conns)`,
      f.login.okPerSecond,
      `${fmt(f.login.okPerSecond, 1)}/s · p99 ${ms(f.login.p99Ms)}`,
    ),
    row('fairness: logins ÷ bcrypt limit', ratio, fmt(ratio, 2), `≥ ${FAIR_LOGIN_RATIO_TARGET}`, ratio >= FAIR_LOGIN_RATIO_TARGET),
    row('fairness: /users/me/s while logins run', f.me.okPerSecond, `${fmt(f.me.okPerSecond)} req/s · p50 ${ms(f.me.p50Ms)}`),
    row('fairness: /users/me p99', f.me.p99Ms, ms(f.me.p99Ms), `< ${FAIR_ME_P99_LIMIT_MS} ms`, f.me.p99Ms < FAIR_ME_P99_LIMIT_MS),
    row('fairness: login errors', f.login.non2xx + f.login.errors, errorsOf(f.login)),
    row('fairness: /users/me errors', f.me.non2xx + f.me.errors, errorsOf(f.me), '0', f.me.non2xx + f.me.errors === 0),
    row('fairness: timeouts (both loads)', timeouts, fmt(timeouts), '0', timeouts === 0),
  ];
}

/** The rows of the results table, each with its target when it has one. */
const ms = (x: number) => `${fmt(x, x < 10 ? 1 : 0)} ms`;

/** req/s · p50 · p99 · non-2xx (+ socket errors when there were any). */
function mixedValue(s: KindSummary): string {
  const errors = s.errors ? ` + ${fmt(s.errors)} socket errors` : '';
  return `${fmt(s.requestsPerSecond, 1)} req/s · p50 ${ms(s.p50Ms)} · p99 ${ms(s.p99Ms)} · ${fmt(s.non2xx)} non-2xx${errors}`;
}

/** Rows of the mixed phase: one per kind of request, then the totals. */
export function mixedRows(mixed: MixedResult): Row[] {
  const errors = mixed.total.non2xx + mixed.total.errors;
  return [
    ...KINDS.map((k) => row(`mixed: ${KIND_LABEL[k]} (${mixed.mix[k]} in 100)`, mixed.byKind[k].requestsPerSecond, mixedValue(mixed.byKind[k]))),
    row(`mixed: refresh + /users/me (${mixed.mix.refresh + mixed.mix.me} in 100)`, mixed.refreshAndMe.requestsPerSecond, mixedValue(mixed.refreshAndMe)),
    row(`mixed: all requests (${mixed.connections} virtual users)`, mixed.total.requestsPerSecond, mixedValue(mixed.total)),
    row('mixed errors (non-2xx + socket)', errors, fmt(errors), '0', errors === 0),
    row('mixed refresh 200s that did not rotate (generation not +1)', mixed.notAdvanced, fmt(mixed.notAdvanced), '0', mixed.notAdvanced === 0),
  ];
}

export function resultRows(m: Measurements): Row[] {
  const { opts, machine, bcryptLimit, loginOnly, login, fairness, refresh, codeFlow, me, mixed, meByWorkers, restartMs, peaks, cpu } = m;
  const c = opts.connections;
  const rows: Row[] = [];
  if (bcryptLimit)
    rows.push(
      row(
        `bcrypt limit (cost ${opts.rounds}, ${bcryptLimit.threads} parallel compares)`,
        bcryptLimit.hashesPerSecond,
        `${fmt(bcryptLimit.hashesPerSecond, 1)} hashes/s`,
      ),
    );
  if (loginOnly && login && bcryptLimit) {
    const ratio = loginOnly.login.okPerSecond / bcryptLimit.hashesPerSecond;
    const loginErrors = loginOnly.login.non2xx + loginOnly.login.errors + login.login.non2xx + login.login.errors;
    const probe = login.profileDuringLogin;
    rows.push(
      row(`logins/s alone (POST /auth/token, ${c} conns)`, loginOnly.login.okPerSecond, `${fmt(loginOnly.login.okPerSecond, 1)}/s`),
      row('logins/s with the /users/me probe running', login.login.okPerSecond, `${fmt(login.login.okPerSecond, 1)}/s`),
      row('logins ÷ bcrypt limit (alone)', ratio, fmt(ratio, 2), `≥ ${LOGIN_RATIO_TARGET}`, ratio >= LOGIN_RATIO_TARGET),
      row('login errors (non-2xx + socket)', loginErrors, fmt(loginErrors), '0', loginErrors === 0),
      row(`/users/me during login, p50 (${login.profileRate} req/s)`, probe?.p50Ms ?? NaN, `${fmt(probe?.p50Ms ?? NaN)} ms`),
      row(`/users/me during login, p99 (${login.profileRate} req/s)`, probe?.p99Ms ?? NaN, `${fmt(probe?.p99Ms ?? NaN)} ms`),
      row(
        'max event-loop stall during login',
        login.eventLoopLag.maxMs,
        `${fmt(login.eventLoopLag.maxMs, 1)} ms`,
        `≤ ${STALL_LIMIT_MS} ms`,
        login.eventLoopLag.maxMs <= STALL_LIMIT_MS,
      ),
      row('event-loop delay p99 during login (worst worker)', login.eventLoopLag.p99Ms, `${fmt(login.eventLoopLag.p99Ms, 1)} ms`),
    );
  }
  if (fairness) rows.push(...fairnessRows(fairness, bcryptLimit?.hashesPerSecond, c));
  if (refresh) {
    const refreshTarget = REFRESH_PER_CORE_TARGET * machine.cores;
    rows.push(
      row(
        `refresh/s (POST /auth/refresh, ${c} conns)`,
        refresh.refresh.okPerSecond,
        `${fmt(refresh.refresh.okPerSecond)}/s`,
        `≥ ${fmt(refreshTarget)}/s`,
        refresh.refresh.okPerSecond >= refreshTarget,
      ),
      row('refresh non-2xx (broken rotation chains)', refresh.refresh.non2xx, fmt(refresh.refresh.non2xx), '0', refresh.refresh.non2xx === 0),
      row('refresh 200s that did not rotate (generation not +1)', refresh.notAdvanced, fmt(refresh.notAdvanced), '0', refresh.notAdvanced === 0),
    );
  }
  if (codeFlow) {
    rows.push(
      row(
        `authorization code flows/s (authorize → code → token, single sign-on, ${c} conns)`,
        codeFlow.flowsPerSecond,
        `${fmt(codeFlow.flowsPerSecond)}/s · request p99 ${ms(codeFlow.requests.p99Ms)}`,
      ),
      row('code flow steps that failed (no code, or no tokens)', codeFlow.failures, fmt(codeFlow.failures), '0', codeFlow.failures === 0),
    );
  }
  if (me) {
    rows.push(
      row(
        `/users/me alone (${ME_CONNECTIONS} conns, WORKERS=${opts.workers})`,
        me.okPerSecond,
        `${fmt(me.okPerSecond)} req/s · p50 ${ms(me.p50Ms)} · p99 ${ms(me.p99Ms)}`,
        opts.workers === 2 ? `≥ ${fmt(ME_W2_TARGET)}/s` : '',
        opts.workers === 2 ? me.okPerSecond >= ME_W2_TARGET : null,
      ),
      row('/users/me alone, errors', me.non2xx + me.errors, errorsOf(me), '0', me.non2xx + me.errors === 0),
    );
  }
  for (const [w, s] of Object.entries(meByWorkers ?? {})) {
    const two = Number(w) === 2;
    rows.push(
      row(
        `/users/me, ${ME_CONNECTIONS} conns, WORKERS=${w} (a server of its own)`,
        s.okPerSecond,
        `${fmt(s.okPerSecond)} req/s · p99 ${ms(s.p99Ms)} · ${fmt(s.non2xx + s.errors)} errors`,
        two ? `≥ ${fmt(ME_W2_TARGET)}/s` : '',
        two ? s.okPerSecond >= ME_W2_TARGET : null,
      ),
    );
  }
  if (mixed) rows.push(...mixedRows(mixed));
  if (restartMs !== undefined)
    rows.push(
      row(
        'restart: `npm start` (dist/ up to date) until /health/ready answers',
        restartMs,
        ms(restartMs),
        `< ${fmt(RESTART_LIMIT_MS)} ms`,
        restartMs < RESTART_LIMIT_MS,
      ),
    );
  rows.push(
    ...peaks.map((p, i) =>
      row(
        `peak RSS, ${p.role === 'primary' ? 'primary' : `worker ${i}`} (pid ${p.pid})`,
        p.peakMb,
        `${fmt(p.peakMb)} MB (anon ${fmt(p.peakAnonMb)} MB)`,
        `< ${RSS_LIMIT_MB} MB`,
        p.peakMb < RSS_LIMIT_MB,
      ),
    ),
    ...Object.entries(cpu).map(([name, x]) =>
      row(
        `CPU during ${name}: server · client · postgres · other`,
        x.other,
        `${fmt(x.server)} · ${fmt(x.bench)} · ${fmt(x.postgres)} · ${fmt(x.other)} %`,
        `other < ${OTHER_CPU_LIMIT_PCT} %`,
        x.other < OTHER_CPU_LIMIT_PCT,
      ),
    ),
  );
  return rows;
}
