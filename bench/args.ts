import { availableParallelism } from 'node:os';
import { parseArgs } from 'node:util';

export interface BenchOptions {
  /** Server processes (WORKERS). */
  workers: number;
  /** BCRYPT_ROUNDS for the server and the bcrypt baseline. */
  rounds: number;
  /** Seconds per load phase. */
  duration: number;
  /** autocannon connections of the login, refresh and /users/me phases. */
  connections: number;
  /** When set, the server runs with --cpu-prof and writes its profiles here. */
  cpuProfDir: string | null;
  /** Run the email delivery bench instead (`--email`). */
  email: boolean;
  /** Messages of the email throughput phase. */
  messages: number;
  /** Run only the mixed scenario, continuously, instead (`--soak`; see bench/soak.ts). */
  soak: boolean;
  /** Length of the soak. */
  soakMinutes: number;
  /** The phases to run (`--only login,fairness`; all by default). */
  phases: Set<Phase>;
  /** BENCH_QUICK=1: 3 s phases, for trying the bench out; the figures are not comparable. */
  quick: boolean;
}

export const PHASES = ['login', 'fairness', 'refresh', 'code', 'me', 'mixed', 'workers', 'restart'] as const;
export type Phase = (typeof PHASES)[number];

function phaseList(raw: string | undefined): Set<Phase> {
  if (raw === undefined) return new Set(PHASES);
  const names = raw
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean);
  const unknown = names.filter((n) => !(PHASES as readonly string[]).includes(n));
  if (unknown.length || !names.length) throw new Error(`--only: expected some of ${PHASES.join(', ')}; got "${raw}"`);
  return new Set(names as Phase[]);
}

function positiveInt(name: string, raw: string | undefined, fallback: number): number {
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name}: expected a positive integer, got "${raw}"`);
  return n;
}

export function parseBenchArgs(argv: string[] = process.argv.slice(2)): BenchOptions {
  const { values } = parseArgs({
    args: argv,
    options: {
      workers: { type: 'string' },
      rounds: { type: 'string' },
      duration: { type: 'string' },
      connections: { type: 'string' },
      'cpu-prof': { type: 'string' },
      email: { type: 'boolean' },
      messages: { type: 'string' },
      soak: { type: 'boolean' },
      'soak-minutes': { type: 'string' },
      only: { type: 'string' },
    },
    strict: true,
  });
  const workers = positiveInt('workers', values.workers, availableParallelism());
  // The server's own default cost: what a real deployment hashes at.
  const rounds = positiveInt('rounds', values.rounds, 12);
  if (rounds < 4 || rounds > 15) throw new Error(`--rounds: the server accepts 4..15, got ${rounds}`);
  if (values.email && values.soak) throw new Error('--email and --soak are separate runs: pick one');
  if (values['soak-minutes'] !== undefined && !values.soak) throw new Error('--soak-minutes needs --soak');
  const quick = process.env.BENCH_QUICK === '1';
  return {
    workers,
    rounds,
    // 10 s phases keep the whole run (build aside) under 6 minutes.
    duration: positiveInt('duration', values.duration, quick ? 3 : 10),
    // Enough concurrent logins to keep every core's hashing slots busy.
    connections: positiveInt('connections', values.connections, 4 * workers),
    cpuProfDir: values['cpu-prof'] ?? null,
    email: values.email ?? false,
    messages: positiveInt('messages', values.messages, 2000),
    soak: values.soak ?? false,
    soakMinutes: positiveInt('soak-minutes', values['soak-minutes'], 5),
    phases: phaseList(values.only),
    quick,
  };
}
