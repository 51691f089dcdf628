import { execFile, execFileSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { freePort } from './free-port.js';

const run = promisify(execFile);

const PG_ROOT = '/usr/lib/postgresql';

/** A clean environment: no PG* variable of the caller may point pg_ctl or psql at another server. */
const cleanEnv = () => ({ PATH: process.env.PATH ?? '/usr/bin:/bin', LANG: 'C', LC_ALL: 'C' });

/** Debian's server binaries: $PG_BIN_DIR, or the newest /usr/lib/postgresql/<version>/bin. */
function binDir(): string {
  if (process.env.PG_BIN_DIR) return process.env.PG_BIN_DIR;
  const versions = existsSync(PG_ROOT)
    ? readdirSync(PG_ROOT)
        .filter((v) => existsSync(path.join(PG_ROOT, v, 'bin', 'pg_ctl')))
        .sort((a, b) => Number.parseFloat(b) - Number.parseFloat(a))
    : [];
  if (!versions[0]) throw new Error(`no PostgreSQL server binaries under ${PG_ROOT}/<version>/bin (install postgresql, or set PG_BIN_DIR)`);
  return path.join(PG_ROOT, versions[0], 'bin');
}

/** initdb and postgres refuse to run as root: as root, they run as the `postgres` OS user. */
function osUser(): { name: string; uid: number; gid: number } | null {
  if (process.getuid?.() !== 0) return null;
  try {
    const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
    return { name: 'postgres', uid, gid };
  } catch {
    throw new Error('running as root and there is no `postgres` OS user to run initdb and postgres as');
  }
}

/**
 * A PostgreSQL server of the test's own: a fresh cluster in a temp dir, on a
 * free loopback port. It can be stopped and started again (same port, same
 * data) without touching the machine's shared PostgreSQL.
 */
export class OwnPostgres {
  private running = false;

  private constructor(
    readonly port: number,
    /** The temp dir: the data directory, the log and the Unix socket live here. */
    readonly dir: string,
    private readonly bin: string,
    private readonly user: { name: string; uid: number; gid: number } | null,
  ) {}

  /** The `postgres` database as the `postgres` superuser (trust auth, no password). */
  get url(): string {
    return this.urlFor('postgres');
  }

  urlFor(database: string): string {
    return `postgres://postgres@127.0.0.1:${this.port}/${database}`;
  }

  get dataDir(): string {
    return path.join(this.dir, 'data');
  }

  get logFile(): string {
    return path.join(this.dir, 'postgres.log');
  }

  static async start(): Promise<OwnPostgres> {
    const bin = binDir();
    const user = osUser();
    const port = await freePort();
    if (port === 5432) throw new Error('refusing to use port 5432 (the shared PostgreSQL)');
    const dir = mkdtempSync(path.join(tmpdir(), 'tessera-pg-'));
    const pg = new OwnPostgres(port, dir, bin, user);
    // pg_ctl detaches the server: if the test process ends without destroy() (a hook timed
    // out, a crash), it would outlive us. Last resort: an immediate shutdown (SIGQUIT) by PID.
    process.once('exit', pg.leftBehind);
    try {
      if (user) chownSync(dir, user.uid, user.gid);
      await pg.exec('initdb', ['-D', pg.dataDir, '-U', 'postgres', '--auth=trust', '--encoding=UTF8', '--locale=C', '--no-sync', '--no-instructions']);
      await pg.startAgain();
    } catch (err) {
      await pg.destroy().catch(() => undefined);
      throw err;
    }
    return pg;
  }

  /** Runs one of the server binaries, as the `postgres` OS user when we are root. */
  private async exec(program: string, args: string[], timeoutMs = 30_000): Promise<string> {
    const file = path.join(this.bin, program);
    const [cmd, argv] = this.user ? ['runuser', ['-u', this.user.name, '--', file, ...args]] : [file, args];
    try {
      const { stdout } = await run(cmd, argv, { cwd: this.dir, env: cleanEnv(), timeout: timeoutMs, encoding: 'utf8' });
      return stdout;
    } catch (err) {
      const e = err as { stderr?: string; stdout?: string; message: string };
      throw new Error(`${program} failed: ${e.message}\n${e.stdout ?? ''}${e.stderr ?? ''}\n${this.log()}`);
    }
  }

  /**
   * Runs SQL with psql and waits for it *synchronously*: this process handles no I/O
   * meanwhile (e.g. a pooled connection does not see its backend being terminated
   * until the next turn of the event loop). Returns psql's unaligned output.
   */
  psqlSync(database: string, statement: string): string {
    const args = ['-X', '-h', '127.0.0.1', '-p', String(this.port), '-U', 'postgres', '-d', database, '-v', 'ON_ERROR_STOP=1', '-Atc', statement];
    return execFileSync(path.join(this.bin, 'psql'), args, { env: cleanEnv(), encoding: 'utf8', timeout: 10_000 }).trim();
  }

  /** The tail of the server log (for failure messages). */
  log(lines = 30): string {
    try {
      return readFileSync(this.logFile, 'utf8').split('\n').slice(-lines).join('\n');
    } catch {
      return '';
    }
  }

  /** Starts the server (again): same port, same data; resolves once it accepts connections. */
  async startAgain(): Promise<void> {
    if (this.running) return;
    // -k: the Unix socket in our own dir, never the shared /var/run/postgresql.
    const options = `-p ${this.port} -k ${this.dir} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off -c shared_buffers=32MB`;
    await this.exec('pg_ctl', ['-D', this.dataDir, '-o', options, '-l', this.logFile, '-w', '-t', '30', 'start']);
    this.running = true;
  }

  /** The postmaster's PID, from postmaster.pid; null when it is not running. */
  pid(): number | null {
    try {
      const pid = Number(readFileSync(path.join(this.dataDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
      return Number.isInteger(pid) && pid > 0 ? pid : null;
    } catch {
      return null;
    }
  }

  /**
   * Stops the server the way an operator does (`pg_ctl stop -m fast`: sessions
   * are terminated, then a clean shutdown); if that fails, SIGKILLs the postmaster.
   */
  async stop(): Promise<void> {
    if (!this.running && this.pid() === null) return;
    try {
      await this.exec('pg_ctl', ['-D', this.dataDir, '-m', 'fast', '-w', '-t', '30', 'stop']);
    } catch (err) {
      const pid = this.pid();
      if (pid === null) throw err;
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
      const deadline = Date.now() + 10_000;
      while (isAlive(pid)) {
        if (Date.now() > deadline) throw new Error(`postmaster ${pid} did not die`, { cause: err });
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    this.running = false;
  }

  /** Stops the server and removes its temp dir. */
  async destroy(): Promise<void> {
    try {
      await this.stop();
    } finally {
      process.off('exit', this.leftBehind);
      rmSync(this.dir, { recursive: true, force: true });
    }
  }

  private readonly leftBehind = (): void => {
    const pid = this.pid();
    if (pid !== null && isAlive(pid)) {
      try {
        process.kill(pid, 'SIGQUIT');
      } catch {
        // gone meanwhile
      }
    }
    rmSync(this.dir, { recursive: true, force: true });
  };
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
