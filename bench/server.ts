import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { openSync, readFileSync, readdirSync } from 'node:fs';
import { createServer } from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

export interface ServerEnv {
  databaseUrl: string;
  port: number;
  workers: number;
  rounds: number;
  dataDir: string;
  /** More variables (they win over the bench's defaults). */
  extra?: Record<string, string>;
}

export interface RunningServer {
  pid: number;
  baseUrl: string;
  logFile: string;
  /** Resolves once GET /health/ready answers 200; rejects if the server exits or takes over 60 s. */
  ready(): Promise<void>;
  /** SIGTERM, then SIGKILL (primary and any worker left) after `graceMs`. */
  stop(graceMs?: number): Promise<void>;
}

export function buildServer(repoRoot: string): void {
  // What `npm start` does first: compile unless dist/ is up to date with the sources.
  // The build's output goes to stderr: stdout is for the results table.
  const res = spawnSync(process.execPath, ['bin/build-if-stale.js'], { cwd: repoRoot, stdio: ['ignore', 2, 2] });
  if (res.status !== 0) throw new Error(`the build failed (exit ${res.status ?? res.signal})`);
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (addr && typeof addr === 'object' ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

/** Direct children of `pid` (the cluster workers of the primary). */
export function childPids(pid: number): number[] {
  try {
    return readdirSync(`/proc/${pid}/task`).flatMap((tid) => {
      try {
        return readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').split(/\s+/).filter(Boolean).map(Number);
      } catch {
        return [];
      }
    });
  } catch {
    return [];
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Alive and still running dist/main.js (not a recycled pid). */
function isOurServer(pid: number): boolean {
  try {
    return alive(pid) && readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('dist/main.js');
  } catch {
    return false;
  }
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

/**
 * Starts `node dist/main.js`, or with `viaNpm` `npm start` as a user would (its prestart
 * builds only when dist/ is stale), in a process group of its own; register `stop` for
 * cleanup before awaiting `ready`.
 */
export function startServer(repoRoot: string, env: ServerEnv, nodeFlags: string[] = [], viaNpm = false): RunningServer {
  const logFile = path.join(env.dataDir, 'server.log');
  const log = openSync(logFile, 'a');
  const [command, args] = viaNpm ? ['npm', ['start']] : [process.execPath, [...nodeFlags, 'dist/main.js']];
  const child = spawn(command, args, {
    cwd: repoRoot,
    stdio: ['ignore', log, log],
    detached: viaNpm,
    env: {
      ...process.env,
      DATABASE_URL: env.databaseUrl,
      SERVER: '127.0.0.1',
      SERVER_PORT: String(env.port),
      WORKERS: String(env.workers),
      BCRYPT_ROUNDS: String(env.rounds),
      // One issuer for every server of a run (the default follows the port): a token stays valid across them.
      PUBLIC_URL: 'http://tessera.bench',
      // The bench signs users in right after registering them.
      REQUIRE_EMAIL_VERIFICATION: 'false',
      // The load tool signs in thousands of times from 127.0.0.1: measure throughput, not the limits.
      RATE_LIMIT_ENABLED: 'false',
      BRUTE_FORCE_ENABLED: 'false',
      // Everything else (LOG_LEVEL=info above all) is the default: the figures are what users get.
      DATA_DIR: env.dataDir,
      NODE_ENV: 'development',
      ...env.extra,
    },
  });
  const pid = child.pid;
  if (pid === undefined) throw new Error('could not start the server');
  const baseUrl = `http://127.0.0.1:${env.port}`;
  const seen = new Set<number>();

  return {
    pid,
    baseUrl,
    logFile,
    ready: async () => {
      const deadline = Date.now() + 60_000;
      for (;;) {
        if (child.exitCode !== null || child.signalCode !== null) {
          throw new Error(`the server exited during start-up (${child.exitCode ?? child.signalCode})`);
        }
        for (const w of childPids(pid)) seen.add(w);
        const status = await fetch(`${baseUrl}/health/ready`).then(
          (r) => r.status,
          () => 0,
        );
        if (status === 200) return;
        if (Date.now() > deadline) throw new Error(`GET /health/ready did not answer 200 within 60 s; see ${logFile}`);
        // Often enough to time a restart (bench/run.ts) to a few tens of ms.
        await sleep(25);
      }
    },
    stop: async (graceMs = 10_000) => {
      for (const w of childPids(pid)) seen.add(w);
      if (viaNpm) {
        // npm, its shell and the server: the whole group (its own, see `detached`).
        for (const c of childPids(pid)) for (const w of [c, ...childPids(c), ...childPids(c).flatMap(childPids)]) seen.add(w);
        try {
          process.kill(-pid, 'SIGTERM');
        } catch {
          // gone already
        }
      } else if (alive(pid)) process.kill(pid, 'SIGTERM');
      const done = await Promise.race([exited(child).then(() => true), sleep(graceMs, undefined, { ref: false }).then(() => false)]);
      if (!done) {
        console.error(`bench: server ${pid} still running ${graceMs} ms after SIGTERM; sending SIGKILL`);
        process.kill(viaNpm ? -pid : pid, 'SIGKILL');
        await exited(child);
      }
      for (const w of seen) if (isOurServer(w)) process.kill(w, 'SIGKILL');
    },
  };
}
