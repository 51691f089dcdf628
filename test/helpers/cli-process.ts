import { spawn } from 'node:child_process';
import path from 'node:path';

const repo = path.resolve(import.meta.dirname, '../..');

/**
 * Runs `tessera <args>` (`src/cli.ts` through tsx) as a real process with only PATH and `env`
 * in its environment, `stdin` written to it; its exit code and its stdout and stderr together.
 */
export async function runCli(args: string[], env: Record<string, string>, stdin = ''): Promise<{ code: number | null; out: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(repo, 'src/cli.ts'), ...args], {
    cwd: repo,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stdin.end(stdin);
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  return { code, out };
}
