import { randomBytes } from 'node:crypto';
import { generationOf } from './refresh-phase.js';
import type { SeedSession, SeedUser } from './seed.js';

export const KINDS = ['register', 'login', 'refresh', 'me'] as const;
export type Kind = (typeof KINDS)[number];

/**
 * Requests of each kind per 100: what an auth service sees once its users are
 * signed in — mostly session checks, a refresh every few minutes per client,
 * few password logins and fewer sign-ups. Registrations and logins each cost a
 * bcrypt hash, so 5 in 100 requests hash.
 */
export const MIX: Record<Kind, number> = { register: 1, login: 4, refresh: 20, me: 75 };

export const KIND_LABEL: Record<Kind, string> = {
  register: 'POST /auth/register',
  login: 'POST /auth/login',
  refresh: 'POST /auth/refresh',
  me: 'GET /users/me',
};

/** Requests taking longer count as socket errors. */
const REQUEST_TIMEOUT_MS = 30_000;
const ERROR_SAMPLES = 5;

export interface KindSummary {
  /** Responses and socket errors. */
  requests: number;
  requestsPerSecond: number;
  ok: number;
  okPerSecond: number;
  non2xx: number;
  /** Socket errors and timeouts. */
  errors: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  statusCodes: Record<string, number>;
}

/** One window of a run (or the whole run). */
export interface MixedStats {
  seconds: number;
  byKind: Record<Kind, KindSummary>;
  total: KindSummary;
  /** Refreshes and /users/me together: the requests that do not wait for a bcrypt hash. */
  refreshAndMe: KindSummary;
}

export interface MixedWindow extends MixedStats {
  /** 1-based. */
  index: number;
  /** Seconds since the start of the run at the end of the window. */
  endS: number;
}

export interface MixedResult extends MixedStats {
  connections: number;
  mix: Record<Kind, number>;
  /** Users that could sign in at the end (seeded + registered during the run). */
  users: number;
  /** 200s from /auth/refresh whose token did not carry the next generation. */
  notAdvanced: number;
  /** A few non-2xx bodies and socket errors, to say why. */
  errorSamples: string[];
}

class Tally {
  latencies: number[] = [];
  ok = 0;
  non2xx = 0;
  errors = 0;
  statusCodes: Record<string, number> = {};

  add(status: number, ms: number): void {
    this.latencies.push(ms);
    if (status === 0) this.errors++;
    else {
      this.statusCodes[status] = (this.statusCodes[status] ?? 0) + 1;
      if (status >= 200 && status <= 299) this.ok++;
      else this.non2xx++;
    }
  }
}

/** Nearest-rank percentile of a sorted array. */
function percentile(sorted: number[], q: number): number {
  if (!sorted.length) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

function summarise(tallies: Tally[], seconds: number): KindSummary {
  const latencies = tallies.flatMap((t) => t.latencies).sort((a, b) => a - b);
  const sum = (f: (t: Tally) => number) => tallies.reduce((s, t) => s + f(t), 0);
  const statusCodes: Record<string, number> = {};
  for (const t of tallies) for (const [code, n] of Object.entries(t.statusCodes)) statusCodes[code] = (statusCodes[code] ?? 0) + n;
  const ok = sum((t) => t.ok);
  return {
    requests: latencies.length,
    requestsPerSecond: latencies.length / seconds,
    ok,
    okPerSecond: ok / seconds,
    non2xx: sum((t) => t.non2xx),
    errors: sum((t) => t.errors),
    p50Ms: percentile(latencies, 0.5),
    p99Ms: percentile(latencies, 0.99),
    maxMs: latencies.at(-1) ?? NaN,
    statusCodes,
  };
}

function stats(tallies: Record<Kind, Tally>, seconds: number): MixedStats {
  const byKind = Object.fromEntries(KINDS.map((k) => [k, summarise([tallies[k]], seconds)])) as Record<Kind, KindSummary>;
  return {
    seconds,
    byKind,
    total: summarise(
      KINDS.map((k) => tallies[k]),
      seconds,
    ),
    refreshAndMe: summarise([tallies.refresh, tallies.me], seconds),
  };
}

const newTallies = (): Record<Kind, Tally> => ({ register: new Tally(), login: new Tally(), refresh: new Tally(), me: new Tally() });

/** Errors of a summary: non-2xx responses and socket errors, as a share of all requests. */
export const errorRate = (s: KindSummary) => (s.requests ? (s.non2xx + s.errors) / s.requests : 0);

/** mulberry32: a small seeded PRNG, so every run sends the same sequence of kinds. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function picker(mix: Record<Kind, number>): (r: number) => Kind {
  const total = KINDS.reduce((s, k) => s + mix[k], 0);
  return (r) => {
    let x = r * total;
    for (const k of KINDS) {
      if (x < mix[k]) return k;
      x -= mix[k];
    }
    return KINDS[KINDS.length - 1]!;
  };
}

interface TokenBody {
  access_token: string;
  refresh_token: string;
}

/**
 * Register, login, refresh and /users/me in the proportions of `MIX`, from
 * `sessions.length` virtual users. Each virtual user is a loop that sends one
 * request at a time (Node's fetch, keep-alive), choosing the next kind with its
 * own seeded PRNG:
 *
 * - register: a new address; the new user joins the pool logins draw from;
 * - login (`POST /auth/login`, JSON): the next user of the pool, round-robin; the
 *   virtual user continues with the new session (its old refresh token is dropped,
 *   never sent again);
 * - refresh: the refresh token of the virtual user's last token response (each
 *   must carry the next generation; those that do not are counted);
 * - /users/me: with the virtual user's current access token.
 *
 * A virtual user whose session broke (a non-2xx refresh or /users/me) signs in
 * again with its next request. Responses that arrive after `duration` seconds
 * are not counted. With `window`, `onWindow` gets the statistics of every
 * `window.seconds` (the last window ends with the run).
 *
 * This is a closed loop: with 5 hashes in 100 requests, once the bcrypt threads
 * are saturated the virtual users mostly wait in the hashing queue, and the total
 * rate is about 20 × the bcrypt limit, whatever the number of virtual users.
 */
export async function runMixedPhase(opts: {
  baseUrl: string;
  /** The login pool: seeded users (registered users are added to it). */
  users: SeedUser[];
  /** One signed-in session per virtual user. */
  sessions: SeedSession[];
  duration: number;
  seed?: number;
  mix?: Record<Kind, number>;
  window?: { seconds: number; onWindow: (w: MixedWindow) => void };
}): Promise<MixedResult> {
  const { baseUrl } = opts;
  const mix = opts.mix ?? MIX;
  const pick = picker(mix);
  const pool = [...opts.users];
  const run = randomBytes(4).toString('hex');
  let nextLogin = 0;
  let registered = 0;
  let notAdvanced = 0;
  const errorSamples: string[] = [];
  const sample = (kind: Kind, what: string) => {
    if (errorSamples.length < ERROR_SAMPLES) errorSamples.push(`${KIND_LABEL[kind]}: ${what}`);
  };

  const total = newTallies();
  let window = newTallies();
  const start = performance.now();
  const deadline = start + opts.duration * 1000;

  async function send(method: 'GET' | 'POST', path: string, headers: Record<string, string>, body?: unknown): Promise<{ status: number; text: string }> {
    const res = await fetch(`${baseUrl}${path}`, {
      method,
      headers: body === undefined ? headers : { ...headers, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
    return { status: res.status, text: await res.text() };
  }

  async function virtualUser(index: number, first: SeedSession): Promise<void> {
    const random = prng((opts.seed ?? 1) * 7919 + index);
    let session: SeedSession | null = first;
    let generation = generationOf(first.refreshToken);
    const signedIn = (text: string) => {
      const body = JSON.parse(text) as TokenBody;
      session = { accessToken: body.access_token, refreshToken: body.refresh_token };
      return generationOf(body.refresh_token);
    };

    while (performance.now() < deadline) {
      const kind: Kind = session ? pick(random()) : 'login';
      const t0 = performance.now();
      let status = 0;
      try {
        switch (kind) {
          case 'register': {
            const user = { email: `mixed-${run}-${index}-${registered++}@example.com`, password: `Mixed-${run}-${randomBytes(6).toString('hex')}` };
            const res = await send('POST', '/auth/register', {}, user);
            status = res.status;
            if (status === 201) pool.push(user);
            else sample(kind, `${status} ${res.text.slice(0, 200)}`);
            break;
          }
          case 'login': {
            const user = pool[nextLogin++ % pool.length]!;
            const res = await send('POST', '/auth/login', {}, { email: user.email, password: user.password });
            status = res.status;
            if (status === 200) generation = signedIn(res.text);
            else sample(kind, `${status} ${res.text.slice(0, 200)}`);
            break;
          }
          case 'refresh': {
            const res = await send('POST', '/auth/refresh', {}, { refresh_token: session!.refreshToken });
            status = res.status;
            if (status === 200) {
              const next = signedIn(res.text);
              if (next !== generation + 1) notAdvanced++;
              generation = next;
            } else {
              sample(kind, `${status} ${res.text.slice(0, 200)}`);
              session = null;
            }
            break;
          }
          case 'me': {
            const res = await send('GET', '/users/me', { authorization: `Bearer ${session!.accessToken}` });
            status = res.status;
            if (status !== 200) {
              sample(kind, `${status} ${res.text.slice(0, 200)}`);
              if (status === 401) session = null;
            }
            break;
          }
        }
      } catch (err) {
        status = 0;
        const cause = err instanceof Error && err.cause instanceof Error ? `: ${err.cause.message}` : '';
        sample(kind, `${err instanceof Error ? err.message : String(err)}${cause}`);
        // The outcome of a refresh that failed on the wire is unknown: start over.
        if (kind === 'refresh') session = null;
      }
      const t1 = performance.now();
      if (t1 > deadline) break;
      total[kind].add(status, t1 - t0);
      window[kind].add(status, t1 - t0);
    }
  }

  let windowStart = start;
  let windowIndex = 0;
  const cut = (end: number) => {
    const w = window;
    window = newTallies();
    windowIndex++;
    const seconds = (end - windowStart) / 1000;
    windowStart = end;
    opts.window?.onWindow({ index: windowIndex, endS: (end - start) / 1000, ...stats(w, seconds) });
  };
  // Windows end at fixed times from the start; the last one at the deadline, once
  // every virtual user has stopped (later responses are not counted).
  const timers: NodeJS.Timeout[] = [];
  const every = opts.window ? opts.window.seconds * 1000 : 0;
  for (let k = 1; every > 0 && start + k * every < deadline - 1; k++) {
    timers.push(setTimeout(() => cut(start + k * every), start + k * every - performance.now()));
  }
  try {
    await Promise.all(opts.sessions.map((s, i) => virtualUser(i, s)));
  } finally {
    for (const t of timers) clearTimeout(t);
  }
  if (opts.window) cut(deadline);

  return {
    ...stats(total, opts.duration),
    connections: opts.sessions.length,
    mix,
    users: pool.length,
    notAdvanced,
    errorSamples,
  };
}
