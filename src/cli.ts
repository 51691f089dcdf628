import { parseArgs } from 'node:util';
import path from 'node:path';
import { JWT_ALGORITHMS, loadConfig, loadDotEnv, type JwtAlgorithm } from './config.js';
import { SetupError, reportFatal } from './fatal.js';
import * as outboxRepo from './features/outbox/repo.js';
import type { Database } from './infra/db/client.js';
import { KeyError, generateKeyPairPem, writeKeyPair } from './infra/keys.js';
import { openConfiguredDatabase } from './runtime.js';

const HELP = `Usage: tessera <command> [options]

Commands:
  migrate                       Apply pending database migrations (DATABASE_URL, DB_*, or the embedded database)
  keys generate [--alg ALG] [--out DIR]
                                Create a PEM key pair for JWT_ALGORITHM (or --alg: RS256, ES256, EdDSA).
                                Without --out, prints both PEMs; with --out, writes DIR/private.pem and DIR/public.pem.
  worker                        Run the email worker (BullMQ queue "email"; needs REDIS_URL and PostgreSQL)
  outbox status                 Count outbox messages by status and list the failed ones with their last error
  outbox retry [--id ID ...]    Re-queue failed messages (all, or the given ids) with a fresh attempt budget
  help                          Show this help
`;

async function migrate(): Promise<void> {
  const config = loadConfig();
  const database = await openConfiguredDatabase(config);
  try {
    await database.migrate();
    console.log(`tessera: migrations applied (${database.kind === 'pglite' ? `embedded database in ${path.join(config.dataDir, 'db')}` : 'PostgreSQL'})`);
  } finally {
    await database.close();
  }
}

function keysGenerate(args: string[]): void {
  const { values } = parseArgs({ args, options: { alg: { type: 'string' }, out: { type: 'string' } } });
  const alg = (values.alg ?? process.env.JWT_ALGORITHM ?? 'RS256') as JwtAlgorithm;
  if (!JWT_ALGORITHMS.includes(alg)) throw new KeyError(`--alg must be one of ${JWT_ALGORITHMS.join(', ')}, got "${alg}"`);
  const pair = generateKeyPairPem(alg);
  if (!values.out) {
    process.stdout.write(pair.privateKey + pair.publicKey);
    return;
  }
  try {
    const { privatePath, publicPath } = writeKeyPair(values.out, pair);
    console.log(`tessera: wrote ${alg} key pair to ${privatePath} and ${publicPath}`);
    console.log(`Use it with PRIVATE_KEY_FILE=${privatePath} JWT_ALGORITHM=${alg}`);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw new KeyError(`${path.join(values.out, 'private.pem')} already exists; refusing to overwrite it.`);
    throw err;
  }
}

async function withDatabase<T>(run: (db: Database) => Promise<T>): Promise<T> {
  const database = await openConfiguredDatabase(loadConfig());
  try {
    return await run(database.db);
  } finally {
    await database.close();
  }
}

async function outboxStatus(): Promise<void> {
  await withDatabase(async (db) => {
    const counts = await outboxRepo.countByStatus(db);
    const { oldestUnsentAt, ...byStatus } = counts;
    console.log(Object.entries(byStatus).map(([status, n]) => `${status}: ${n}`).join('  '));
    if (oldestUnsentAt) console.log(`oldest unsent message: ${oldestUnsentAt.toISOString()}`);
    for (const row of await outboxRepo.listFailed(db, 50)) {
      console.log(`failed ${row.id} ${row.kind} to ${row.recipient} after ${row.attempts} attempts: ${row.lastError ?? ''}`);
    }
  });
}

async function outboxRetry(args: string[]): Promise<void> {
  const { values } = parseArgs({ args, options: { id: { type: 'string', multiple: true } } });
  const ids = values.id;
  if (ids?.some((id) => !/^[0-9a-f-]{36}$/i.test(id))) throw new SetupError('--id takes an outbox message id (a UUID, as `tessera outbox status` prints it)');
  const n = await withDatabase((db) => outboxRepo.requeueFailed(db, new Date(), ids));
  console.log(`tessera: ${n} failed message${n === 1 ? '' : 's'} re-queued; the server or the worker sends ${n === 1 ? 'it' : 'them'} shortly`);
}

async function main(argv: string[]): Promise<number> {
  loadDotEnv();
  const [command, sub, ...rest] = argv;
  if (command === 'migrate') await migrate();
  else if (command === 'keys' && sub === 'generate') keysGenerate(rest);
  else if (command === 'worker') {
    const { runWorker } = await import('./worker-process.js');
    await runWorker(loadConfig());
  } else if (command === 'outbox' && sub === 'status') await outboxStatus();
  else if (command === 'outbox' && sub === 'retry') await outboxRetry(rest);
  else if (!command || command === 'help' || command === '--help' || command === '-h') process.stdout.write(HELP);
  else {
    process.stderr.write(`tessera: unknown command "${argv.join(' ')}"\n\n${HELP}`);
    return 2;
  }
  return 0;
}

try {
  process.exitCode = await main(process.argv.slice(2));
} catch (err) {
  reportFatal(err, 'failed');
  process.exitCode = 1;
}
