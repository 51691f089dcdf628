import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { killServerProcesses, startServerProcess } from '../helpers/server-process.js';
import { PASSWORD, uniqueEmail } from '../helpers/test-app.js';

// The cluster (WORKERS=2) as a real process tree: workers SIGKILLed under load (no
// request may be left without an answer or a closed connection), a crash loop (backoff,
// then the primary gives up with exit 1, counted in /metrics), and a shutdown cut off by
// SHUTDOWN_TIMEOUT (the primary exits 1 like a single process). Runs `src/main.ts` through
// tsx; TESSERA_TEST_DIST=1 runs the built `dist/main.js` instead (`npm run build` first),
// which is what the figures in docs/operations.md come from.

/** A request with neither an answer nor an error after this long is a hung request. */
const CLIENT_TIMEOUT_MS = 10_000;

let db: TestDatabase;
let dataDir: string;

beforeAll(async () => {
  db = await createTestDatabase();
  dataDir = mkdtempSync(path.join(tmpdir(), 'tessera-cluster-'));
});
afterAll(async () => {
  killServerProcesses();
  await db?.drop();
  rmSync(dataDir, { recursive: true, force: true });
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 30_000, output?: () => string) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}\n${output?.() ?? ''}`);
    await sleep(20);
  }
}

async function startCluster(env: Record<string, string>) {
  /** When each worker pid logged that it listens. */
  const listeningAt = new Map<number, number>();
  const server = await startServerProcess({
    databaseUrl: db.url ?? '',
    dataDir,
    env: { WORKERS: '2', ...env },
    onOutput: (d) => {
      for (const m of d.matchAll(/"pid":(\d+)[^\n]*Server listening/g)) listeningAt.set(Number(m[1]), Date.now());
    },
    readyTimeoutMs: 0,
  });
  const { child, port, base, exited, output } = server;
  const primary = child.pid!;
  const workers = (): number[] => {
    try {
      return readFileSync(`/proc/${primary}/task/${primary}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
    } catch {
      return [];
    }
  };
  /** Two workers, both listening. */
  const serving = () => {
    const w = workers();
    return w.length === 2 && w.every((pid) => listeningAt.has(pid));
  };
  await until('two workers listening', serving, 60_000, output);
  return { child, port, base, exited, workers, serving, listeningAt, output };
}

type Outcome = 'answered' | 'connection_error' | 'hung';

/** One GET on a new connection (agent false) or on a keep-alive agent; never longer than CLIENT_TIMEOUT_MS. */
function get(port: number, agent: http.Agent | false, pathname: string): Promise<Outcome> {
  return new Promise((resolve) => {
    let settled = false;
    const settle = (o: Outcome) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(o);
    };
    const req = http.get({ host: '127.0.0.1', port, path: pathname, agent }, (res) => {
      res.resume();
      res.on('end', () => settle('answered'));
      res.on('error', () => settle('connection_error'));
      res.on('aborted', () => settle('connection_error'));
    });
    req.on('error', () => settle('connection_error'));
    const timer = setTimeout(() => {
      settle('hung');
      req.destroy();
    }, CLIENT_TIMEOUT_MS);
  });
}

describe('WORKERS=2', () => {
  it('workers SIGKILLed under load: every request is answered or gets a connection error, none hangs; then SIGTERM exits 0', async () => {
    const cluster = await startCluster({ WORKER_CRASH_LIMIT: 'off' });
    const keepAlive = new http.Agent({ keepAlive: true, maxSockets: 8 });
    const outcomes: Array<Promise<Outcome>> = [];
    let running = true;
    // A bound for a runaway loop only: on a loaded machine four replacements can take a minute.
    const MAX_REQUESTS = 60_000;
    // Open loops (each fires every 5 ms without waiting for answers), bounded by the kills below.
    const loop = async (agent: http.Agent | false, pathname: string) => {
      while (running && outcomes.length < MAX_REQUESTS) {
        outcomes.push(get(cluster.port, agent, pathname));
        await sleep(5);
      }
    };
    const loops = [loop(false, '/health/live'), loop(false, '/.well-known/jwks.json'), loop(keepAlive, '/health/live'), loop(keepAlive, '/health/ready')];
    const KILLS = 4;
    const replacements: Array<{ ms: number; backoff: number }> = [];
    try {
      for (let i = 0; i < KILLS; i++) {
        await until('two workers listening again', cluster.serving, 30_000, cluster.output);
        await sleep(300);
        const [victim] = cluster.workers();
        const before = cluster.output().length;
        const killedAt = Date.now();
        process.kill(victim!, 'SIGKILL');
        await until(
          'a replacement worker',
          () => cluster.workers().some((pid) => !cluster.listeningAt.has(pid) || cluster.listeningAt.get(pid)! > killedAt) && cluster.serving(),
          60_000,
          cluster.output,
        );
        const fresh = cluster.workers().find((pid) => cluster.listeningAt.get(pid)! > killedAt)!;
        const backoff = Number(/starting another in (\d+) ms/.exec(cluster.output().slice(before))?.[1] ?? 0);
        replacements.push({ ms: cluster.listeningAt.get(fresh)! - killedAt, backoff });
      }
      await sleep(300);
      expect(outcomes.length, 'the load ran until after the last kill').toBeLessThan(MAX_REQUESTS);
    } finally {
      running = false;
      await Promise.all(loops);
    }
    const results = await Promise.all(outcomes);
    keepAlive.destroy();
    const count = (o: Outcome) => results.filter((r) => r === o).length;
    console.log(
      `cluster under load, ${KILLS} workers SIGKILLed: ${results.length} requests, ${count('answered')} answered, ${count('connection_error')} connection errors, ${count('hung')} hung; ` +
        `kill → replacement listening: ${replacements.map((r) => `${r.ms} ms${r.backoff ? ` (${r.backoff} ms backoff)` : ''}`).join(', ')}`,
    );
    expect(count('hung'), 'requests with neither an answer nor a connection error within 10 s').toBe(0);
    expect(count('answered')).toBeGreaterThan(results.length * 0.9);
    expect(cluster.output()).toContain('; starting another in 0 ms');

    const workers = cluster.workers();
    cluster.child.kill('SIGTERM');
    const { code } = await cluster.exited;
    expect(code, cluster.output()).toBe(0);
    for (const pid of workers) expect(() => process.kill(pid, 0)).toThrow();
  }, 300_000);

  it('a crash loop backs off, shows in /metrics, and reaching WORKER_CRASH_LIMIT stops the primary with exit 1', async () => {
    const cluster = await startCluster({ WORKER_CRASH_LIMIT: '3/1m' });
    const crashesMetric = async () => {
      const body = await fetch(`${cluster.base}/metrics`).then((r) => r.text());
      return Number(/^tessera_cluster_worker_crashes_total (\d+)$/m.exec(body)?.[1] ?? NaN);
    };
    expect(await crashesMetric()).toBe(0);

    const killOne = async () => {
      await until('two workers listening', cluster.serving, 30_000, cluster.output);
      const [victim] = cluster.workers();
      process.kill(victim!, 'SIGKILL');
      await until('the primary to see the crash', () => !cluster.workers().includes(victim!), 10_000, cluster.output);
      return Date.now();
    };
    await killOne();
    const second = await killOne();
    // The second crash within the window waits 500 ms before its replacement starts.
    await until('two workers listening', cluster.serving, 30_000, cluster.output);
    const replacedAfter = Math.max(...[...cluster.listeningAt.values()]) - second;
    expect(replacedAfter).toBeGreaterThanOrEqual(500);
    expect(cluster.output()).toMatch(/exited \(SIGKILL\); starting another in 0 ms \(1 crash within 60 s/);
    expect(cluster.output()).toMatch(/exited \(SIGKILL\); starting another in 500 ms \(2 crashes within 60 s/);
    // Every worker reports the primary's count.
    for (let i = 0; i < 4; i++) expect(await crashesMetric()).toBe(2);

    const [victim] = cluster.workers();
    process.kill(victim!, 'SIGKILL');
    const { code, signal } = await cluster.exited;
    expect({ code, signal }, cluster.output()).toEqual({ code: 1, signal: null });
    expect(cluster.output()).toMatch(/3 crashes within 60 s reaches WORKER_CRASH_LIMIT: giving up/);
    await until('every worker gone', () => cluster.workers().length === 0, 10_000);
  }, 120_000);

  it('a shutdown cut off by SHUTDOWN_TIMEOUT: the primary exits 1, as a single process does', async () => {
    const cluster = await startCluster({ BCRYPT_ROUNDS: '13', SHUTDOWN_TIMEOUT: '1' });
    const email = uniqueEmail('cluster-cut');
    const reg = await fetch(`${cluster.base}/auth/register`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email, password: PASSWORD }),
    });
    expect(reg.status).toBe(201);
    const inFlight = Array.from({ length: 12 }, () =>
      fetch(`${cluster.base}/auth/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ email, password: PASSWORD }),
      }).then(
        (r) => r.status,
        () => 0,
      ),
    );
    await sleep(300);
    const signalled = Date.now();
    cluster.child.kill('SIGTERM');
    const { code, at } = await cluster.exited;
    expect(code, cluster.output()).toBe(1);
    expect(at - signalled).toBeLessThan(8000);
    expect(cluster.output()).toContain('shutdown timed out');
    expect(cluster.output()).toMatch(/worker(s)? did not stop cleanly; exiting 1/);
    expect((await Promise.all(inFlight)).length).toBe(12);
  }, 90_000);
});
