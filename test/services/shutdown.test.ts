import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { connectError } from '../helpers/free-port.js';
import { killServerProcesses, startServerProcess } from '../helpers/server-process.js';
import { PASSWORD, uniqueEmail } from '../helpers/test-app.js';

// SIGTERM on a real server process (`src/main.ts`) with requests in flight: they all
// finish, new connections are refused at once, the process exits 0; and a shutdown
// that outlives SHUTDOWN_TIMEOUT is cut off.

let db: TestDatabase;
let dataDir: string;

beforeAll(async () => {
  db = await createTestDatabase();
  dataDir = mkdtempSync(path.join(tmpdir(), 'tessera-shutdown-'));
});
afterAll(async () => {
  killServerProcesses();
  await db?.drop();
  rmSync(dataDir, { recursive: true, force: true });
});

async function startServer(env: Record<string, string>) {
  return startServerProcess({
    databaseUrl: db.url ?? '',
    dataDir,
    env: {
      // Dozens of parallel sign-ins of one account from one address: not what this suite is about
      // (each attempt is counted before its hash, so more than the free attempts at once would wait).
      BRUTE_FORCE_ENABLED: 'false',
      ...env,
    },
    readyTimeoutMs: 30_000,
  });
}

const refused = async (port: number) => (await connectError(port)) === 'ECONNREFUSED';

const login = (base: string, email: string) =>
  fetch(`${base}/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email, password: PASSWORD }) }).then(
    (r) => r.status,
    (err: unknown) => `failed: ${String(err)}`,
  );

async function registered(base: string): Promise<string> {
  const email = uniqueEmail('drain');
  const res = await fetch(`${base}/auth/register`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email, password: PASSWORD }),
  });
  expect(res.status).toBe(201);
  return email;
}

const THREADS = 2;

/**
 * Resolves once the server has received all `n` sign-ins, read from /metrics: those answered, those
 * waiting for a hashing thread, and two per thread (a queue forms only when every thread is busy).
 * A fixed pause is not enough on a loaded machine: requests not yet read when SIGTERM comes are refused.
 */
async function untilReceived(base: string, n: number, output: () => string) {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const text = await fetch(`${base}/metrics`).then((r) => r.text());
    const sum = (re: RegExp) => [...text.matchAll(re)].reduce((t, m) => t + Number(m[1]), 0);
    const answered = sum(/^http_requests_total\{[^}]*route="\/auth\/login"[^}]*\} (\d+)$/gm);
    const queued = sum(/^password_hash_queue_depth (\d+)$/gm);
    // Each thread runs one hash and piscina has handed it the next one ahead, which its queueSize leaves out.
    if (queued > 0 && answered + queued + 2 * THREADS >= n) return;
    if (Date.now() > deadline) throw new Error(`the ${n} sign-ins did not all reach the server (answered ${answered}, queued ${queued}):\n${output()}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** A server with `n` sign-ins in flight (all received, most of them waiting for a hashing thread) that has just been sent SIGTERM. */
async function sigtermWithSignInsInFlight(env: Record<string, string>, n: number) {
  // No early 503 for a long queue (BCRYPT_MAX_WAIT_MS): every sign-in here waits for its hash.
  const server = await startServer({ BCRYPT_CONCURRENCY: String(THREADS), BCRYPT_MAX_WAIT_MS: '600000', ...env });
  const email = await registered(server.base);
  const inFlight = Array.from({ length: n }, () => login(server.base, email));
  await untilReceived(server.base, n, server.output);
  const signalled = Date.now();
  server.child.kill('SIGTERM');
  return { server, inFlight, signalled };
}

describe('SIGTERM', () => {
  it('50 requests in flight all complete, new connections are refused, exit 0', async () => {
    // bcrypt cost 11: 50 sign-ins keep two hashing threads busy for well over a second.
    const { server, inFlight, signalled } = await sigtermWithSignInsInFlight({ BCRYPT_ROUNDS: '11', SHUTDOWN_TIMEOUT: '30' }, 50);

    // The listening socket closes at once.
    let closedAfter = -1;
    for (let i = 0; i < 100; i++) {
      if (await refused(server.port)) {
        closedAfter = Date.now() - signalled;
        break;
      }
      await new Promise((r) => setTimeout(r, 10));
    }
    expect(closedAfter, server.output()).toBeGreaterThanOrEqual(0);
    expect(closedAfter).toBeLessThan(500);

    const statuses = await Promise.all(inFlight);
    expect(
      statuses.filter((s) => s !== 200),
      server.output(),
    ).toEqual([]);
    const { code, at } = await server.exited;
    expect(code, server.output()).toBe(0);
    console.log(`SIGTERM with 50 sign-ins in flight: listener closed after ${closedAfter} ms, exit 0 after ${at - signalled} ms`);
    expect(server.output()).toContain('shutting down');
  });

  it('a shutdown that outlives SHUTDOWN_TIMEOUT cuts the connections and exits 1', async () => {
    const { server, inFlight, signalled } = await sigtermWithSignInsInFlight({ BCRYPT_ROUNDS: '13', SHUTDOWN_TIMEOUT: '1' }, 20);
    const { code, at } = await server.exited;
    expect(code).toBe(1);
    expect(at - signalled).toBeLessThan(3000);
    expect(server.output()).toContain('shutdown timed out');
    // Cut off, not hung: every request got an answer or a closed connection.
    const results = await Promise.all(inFlight);
    expect(results.length).toBe(20);
  });
});
