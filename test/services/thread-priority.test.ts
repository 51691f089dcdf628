import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { killServerProcesses, startServerProcess, type ServerProcess } from '../helpers/server-process.js';

// Hashing under overload (docs/operations.md): the server's request thread runs at
// EVENT_LOOP_NICE, its hashing threads at BCRYPT_NICE, so that when session checks saturate
// the CPU the scheduler still gives sign-ins their share. Nice is per thread on Linux.

let db: TestDatabase;
let dataDir: string;
let server: ServerProcess;

/** The nice value of every thread of `pid`, by thread id. */
function threadNices(pid: number): Map<number, number> {
  const nices = new Map<number, number>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    // Field 19 of stat is nice; the command name (field 2) may hold spaces, so count after its ')'.
    const fields = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    nices.set(Number(tid), Number(fields[16]));
  }
  return nices;
}

beforeAll(async () => {
  db = await createTestDatabase();
  dataDir = mkdtempSync(path.join(tmpdir(), 'tessera-nice-'));
  server = await startServerProcess({
    databaseUrl: db.url ?? '',
    dataDir,
    // Values no other thread has: the hashing threads are the ones at 1, the request thread is at 3.
    env: { WORKERS: '1', BCRYPT_CONCURRENCY: '2', BCRYPT_NICE: '1', EVENT_LOOP_NICE: '3' },
    readyTimeoutMs: 60_000,
  });
}, 90_000);

afterAll(async () => {
  killServerProcesses();
  await db?.drop();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

describe.runIf(process.platform === 'linux')('thread priorities of a server process', () => {
  it('the request thread runs at EVENT_LOOP_NICE, each hashing thread at BCRYPT_NICE, the rest at the process priority (or, when started later, at the request thread one)', async () => {
    const pid = server.child.pid!;
    // A sign-in: the hashing threads work (and stay at their own nice value while they do).
    const reg = await fetch(`${server.base}/auth/register`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email: 'nice@example.com', password: 'correct horse battery' }),
    });
    expect(reg.status).toBe(201);
    const nices = threadNices(pid);
    expect(nices.get(pid)).toBe(3);
    expect([...nices.values()].filter((n) => n === 1)).toHaveLength(2);
    expect([...nices.entries()].filter(([tid, n]) => tid !== pid && ![0, 1, 3].includes(n))).toEqual([]);
  });
});
