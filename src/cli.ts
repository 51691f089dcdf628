import { parseArgs } from 'node:util';
import path from 'node:path';
import { JWT_ALGORITHMS, loadConfig, loadDotEnv, type JwtAlgorithm } from './config.js';
import { reportFatal } from './fatal.js';
import { KeyError, generateKeyPairPem, writeKeyPair } from './infra/keys.js';
import { openConfiguredDatabase } from './runtime.js';

const HELP = `Usage: tessera <command> [options]

Commands:
  migrate                       Apply pending database migrations (DATABASE_URL, DB_*, or the embedded database)
  keys generate [--alg ALG] [--out DIR]
                                Create a PEM key pair for JWT_ALGORITHM (or --alg: RS256, ES256, EdDSA).
                                Without --out, prints both PEMs; with --out, writes DIR/private.pem and DIR/public.pem.
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

async function main(argv: string[]): Promise<number> {
  loadDotEnv();
  const [command, sub, ...rest] = argv;
  if (command === 'migrate') await migrate();
  else if (command === 'keys' && sub === 'generate') keysGenerate(rest);
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
