import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { freePort } from './free-port.js';
import { testKeys } from './keys.js';

// A real Tessera server process (`src/main.ts` through tsx, or `dist/main.js` with
// TESSERA_TEST_DIST=1) on a free loopback port: for the tests of what only a process
// shows (signals, the cluster, several instances, the curl walkthrough).

const repo = path.resolve(import.meta.dirname, '../..');
const entry = process.env.TESSERA_TEST_DIST === '1' ? [path.join(repo, 'dist/main.js')] : ['--import', 'tsx', path.join(repo, 'src/main.ts')];
const running = new Set<ChildProcess>();

export interface ServerProcess {
  child: ChildProcess;
  port: number;
  base: string;
  /** Everything the process wrote to stdout and stderr so far. */
  output: () => string;
  /** Resolves when the process exits (`at`: Date.now() then). */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>;
}

export interface ServerProcessOptions {
  /** DATABASE_URL: the test database's URL (PostgreSQL) or '' (PGlite in DATA_DIR). */
  databaseUrl: string;
  dataDir: string;
  /** Added to (and overriding) the defaults: NODE_ENV=test, LOG_LEVEL=info, no email verification, no rate limits, bcrypt cost 4, EVENT_LOOP_NICE=0; undefined unsets one. */
  env?: Record<string, string | undefined>;
  /** Called with each chunk of output, as it comes. */
  onOutput?: (chunk: string) => void;
  /** How long to wait for GET /health/ready to answer 200; 0 = do not wait. */
  readyTimeoutMs?: number;
}

/** Starts a server process and (unless told not to) waits until it is ready; stopped by `killServerProcesses` if still running. */
export async function startServerProcess(opts: ServerProcessOptions): Promise<ServerProcess> {
  const port = await freePort();
  const env: Record<string, string | undefined> = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    NODE_ENV: 'test',
    LOG_LEVEL: 'info',
    SERVER: '127.0.0.1',
    SERVER_PORT: String(port),
    DATABASE_URL: opts.databaseUrl,
    PRIVATE_KEY: (await testKeys('RS256')).privateKey,
    DATA_DIR: opts.dataDir,
    REQUIRE_EMAIL_VERIFICATION: 'false',
    RATE_LIMIT_ENABLED: 'false',
    BCRYPT_ROUNDS: '4',
    // The request thread at the priority of the tests around it: on a machine busy with other test files a
    // lower one (the default 2, for sign-ins under a read flood) only measures how busy the machine is.
    EVENT_LOOP_NICE: '0',
    ...opts.env,
  };
  const child = spawn(process.execPath, entry, {
    cwd: repo,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined)),
  });
  running.add(child);
  let output = '';
  const onData = (d: string) => {
    output += d;
    opts.onOutput?.(d);
  };
  child.stdout?.setEncoding('utf8').on('data', onData);
  child.stderr?.setEncoding('utf8').on('data', onData);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>((resolve) =>
    child.on('exit', (code, signal) => {
      running.delete(child);
      resolve({ code, signal, at: Date.now() });
    }),
  );
  const server = { child, port, base: `http://127.0.0.1:${port}`, output: () => output, exited };
  const readyTimeoutMs = opts.readyTimeoutMs ?? 45_000;
  if (readyTimeoutMs > 0) await untilReady(server, readyTimeoutMs);
  return server;
}

async function untilReady(server: ServerProcess, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const status = await fetch(`${server.base}/health/ready`).then(
      (r) => r.status,
      () => 0,
    );
    if (status === 200) return;
    if (server.child.exitCode !== null || Date.now() > deadline) throw new Error(`server did not start:\n${server.output()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Sends SIGTERM and waits for the exit. */
export async function stopServerProcess(server: ServerProcess): Promise<void> {
  if (server.child.exitCode === null && server.child.signalCode === null) server.child.kill('SIGTERM');
  await server.exited;
}

/** SIGKILLs every server process a test left running (for afterAll). */
export function killServerProcesses(): void {
  for (const c of running) c.kill('SIGKILL');
}
