import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { startServerProcess, stopServerProcess, type ServerProcess } from '../helpers/server-process.js';

// docs/walkthrough.sh, the README's "Try it with curl", run with bash against a real server
// (`src/main.ts` on PostgreSQL, mail written to DATA_DIR/mail): register, confirm from the
// emailed link, sign in, /users/me, refresh twice with the new token each time, sign out.

const repo = path.resolve(import.meta.dirname, '../..');
const script = path.join(repo, 'docs/walkthrough.sh');
let db: TestDatabase;
let dataDir: string;
let server: ServerProcess | undefined;
let base: string;

beforeAll(async () => {
  db = await createTestDatabase();
  dataDir = mkdtempSync(path.join(tmpdir(), 'tessera-walkthrough-'));
  // What a developer runs: NODE_ENV=development and the service's own defaults otherwise.
  server = await startServerProcess({
    databaseUrl: db.url ?? '',
    dataDir,
    env: { NODE_ENV: 'development', LOG_LEVEL: 'warn', REQUIRE_EMAIL_VERIFICATION: undefined, RATE_LIMIT_ENABLED: undefined, BCRYPT_ROUNDS: undefined },
  });
  base = server.base;
}, 60_000);
afterAll(async () => {
  if (server) await stopServerProcess(server);
  await db?.drop();
  rmSync(dataDir, { recursive: true, force: true });
});

function walk(env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  // From an empty directory: the script depends on nothing but bash, curl, node and its settings.
  const cwd = mkdtempSync(path.join(tmpdir(), 'tessera-walk-cwd-'));
  const child = spawn('bash', [script], { cwd, stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env } });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  return new Promise((resolve) =>
    child.once('exit', (code) => {
      rmSync(cwd, { recursive: true, force: true });
      resolve({ code, stdout, stderr });
    }),
  );
}

describe('docs/walkthrough.sh against a live server', () => {
  it('runs every step and exits 0', async () => {
    const email = `walk.${Date.now()}@example.com`;
    const res = await walk({ BASE: base, MAIL_DIR: path.join(dataDir, 'mail'), EMAIL: email });
    expect(res.code, `${res.stdout}\n${res.stderr}\n${server?.output() ?? ''}`).toBe(0);
    expect(res.stderr).toBe('');
    const lines = res.stdout.trim().split('\n');
    expect(lines.filter((l) => l.startsWith('# '))).toEqual([
      `# register ${email}`,
      '# confirm the address with the token of the emailed link',
      '# sign in: the OAuth2 token endpoint, form-encoded like any OAuth2 client sends it',
      '# who am I',
      '# refresh: the old refresh token is spent, keep the new one (OAuth2 form, then the JSON convenience)',
      '# your sessions (devices)',
      '# sign out of this session (POST /auth/logout/all signs out of every one)',
    ]);
    // Confirmed from the emailed link, then the profile read with the access token.
    const profile = JSON.parse(lines[lines.indexOf('# who am I') + 1] as string) as { email: string; email_verified: boolean };
    expect(profile).toMatchObject({ email, email_verified: true });
    expect(lines).toContain('signed in: token_type Bearer, expires_in 900');
    expect(lines).toContain('refreshed twice');
    // One session, still alive after two refreshes (no spent token was reused).
    const sessions = JSON.parse(lines[lines.indexOf('# your sessions (devices)') + 1] as string) as Array<{ current: boolean }>;
    expect(sessions).toEqual([expect.objectContaining({ current: true })]);
    expect(lines.at(-1)).toBe('signed out');
  });

  it('is what the README shows, step by step', () => {
    const steps = readFileSync(script, 'utf8');
    const readme = readFileSync(path.join(repo, 'README.md'), 'utf8');
    expect(readme).toContain('run `bash docs/walkthrough.sh`');
    expect(readme).toContain(`\`\`\`sh\n${steps.slice(steps.indexOf('set -euo pipefail'))}\`\`\``);
    expect(readme).not.toMatch(/ACCESS=…|REFRESH=…/);
  });

  it('stops loudly at the first answer that is not 2xx', async () => {
    const res = await walk({ BASE: `${base}/nowhere`, MAIL_DIR: path.join(dataDir, 'mail') });
    expect(res.code).not.toBe(0);
    expect(res.stderr).toMatch(/404/);
    expect(res.stdout).not.toMatch(/signed in/);
  });
});
