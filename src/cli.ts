import { parseArgs } from 'node:util';
import path from 'node:path';
import { JWT_ALGORITHMS, configuredJwtAlgorithm, loadConfig, loadDotEnv, type Config, type JwtAlgorithm } from './config/index.js';
import { assembleInfra } from './composition/infra.js';
import { createServices, type Services } from './composition/services.js';
import { keysList, keysRetire, keysRotate } from './cli-keys.js';
import { readPassword } from './cli-password.js';
import { SetupError, reportFatal } from './fatal.js';
import { normaliseEmail } from './features/accounts/email.js';
import { describeStoredEmails, reviewStoredEmails } from './features/accounts/stored-emails.js';
import type { Database } from './infra/db/client.js';
import { KeyError, generateKeyPairPem, writeKeyPair } from './infra/keys.js';
import { migrateDatabase } from './migrate.js';
import { connectConfiguredDatabase, loadConfiguredKeys, loadMfaKey } from './runtime.js';

const HELP = `Usage: tessera <command> [options]

Commands:
  migrate                       Apply pending database migrations (DATABASE_URL, DB_*, or the embedded database)
  keys generate [--alg ALG] [--out DIR]
                                Create a PEM key pair for JWT_ALGORITHM (or --alg: RS256, ES256, EdDSA).
                                Without --out, prints both PEMs; with --out, writes DIR/private.pem and DIR/public.pem.
  keys rotate [--alg ALG] [--activate-in DURATION]
                                Add the next signing key to KEYS_DIR (DATA_DIR/keys in development): published now,
                                signing after KEYS_ACTIVATION_DELAY (10m). See docs/key-rotation.md.
  keys list                     Keys with their state (pending, signing, previous) and when each is safe to retire
  keys retire KID [--force]     Remove a key that no longer signs once its access tokens have expired
  worker                        Run the email worker (BullMQ queue "email"; needs REDIS_URL and PostgreSQL)
  users create --email EMAIL [--admin] [--role ROLE ...] [--first-name N] [--last-name N]
                                Create a confirmed user; the password is asked for twice (hidden), or read from
                                stdin: one line, or two equal lines (printf 'pw\\npw\\n' | tessera users create …)
  users set-role --email EMAIL --role ROLE [--remove]
                                Give (or with --remove, take) a role
  users check-emails            List stored email addresses that are not canonical, or that reach one mailbox from
                                several accounts (never merged); exits 1 if there are any
  import fastapi-auth --from URL [--dry-run] [--after-id N]
                                Copy the users of the FastAPI service's database (their uuid stays the user id, the
                                bcrypt hash and the confirmed flag are kept); idempotent. See docs/import.md.
  import csv|jsonl FILE [--dry-run]
                                Import users from a file: email, password_hash (bcrypt), first_name, last_name,
                                email_verified, roles, id, created_at. Both print a summary and exit 1 on conflicts.
  clients create --name NAME --type public|confidential [--auth-method M] [--redirect-uri URI ...]
                 [--post-logout-redirect-uri URI ...] [--grant G ...] [--scope S ...] [--first-party]
                 [--access-token-ttl DURATION] [--refresh-token-days N] [--jwks-file FILE | --jwks-uri URL]
                 [--backchannel-logout-uri URL] [--json]
                                Register an OAuth client; a confidential one's secret is printed once. See docs/clients.md.
  clients list [--json]         Registered clients
  clients show CLIENT_ID [--json]
                                A client, with when its live secrets were created and until when they work
  clients rotate-secret CLIENT_ID [--overlap DURATION] [--json]
                                A new secret (printed once); the previous one keeps working for --overlap (default 0)
  clients delete CLIENT_ID [--json]
                                Delete a client: its secrets go and its sessions end
  roles list                    Roles with their permissions and number of users
  outbox status                 Count outbox messages by status and list the failed ones with their last error
  outbox retry [--id ID ...]    Re-queue failed messages (all, or the given ids) with a fresh attempt budget
  help                          Show this help
`;

async function migrate(): Promise<void> {
  const config = loadConfig();
  const database = await connectConfiguredDatabase(config);
  try {
    await migrateDatabase(database, (line) => console.warn(`tessera: ${line}`));
    console.log(`tessera: migrations applied (${database.kind === 'pglite' ? `embedded database in ${path.join(config.dataDir, 'db')}` : 'PostgreSQL'})`);
  } finally {
    await database.close();
  }
}

function keysGenerate(args: string[]): void {
  const { values } = parseArgs({ args, options: { alg: { type: 'string' }, out: { type: 'string' } } });
  const alg = (values.alg ?? configuredJwtAlgorithm() ?? 'RS256') as JwtAlgorithm;
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
    if ((err as NodeJS.ErrnoException).code === 'EEXIST')
      throw new KeyError(`${path.join(values.out, 'private.pem')} already exists; refusing to overwrite it.`);
    throw err;
  }
}

async function withDatabase<T>(run: (db: Database) => Promise<T>): Promise<T> {
  const database = await connectConfiguredDatabase(loadConfig());
  try {
    return await run(database.db);
  } finally {
    await database.close();
  }
}

async function outboxStatus(): Promise<void> {
  const { counts, failed } = await withServices(({ outbox }) => outbox.status(50), { migrate: false });
  const { oldestUnsentAt, ...byStatus } = counts;
  console.log(
    Object.entries(byStatus)
      .map(([status, n]) => `${status}: ${n}`)
      .join('  '),
  );
  if (oldestUnsentAt) console.log(`oldest unsent message: ${oldestUnsentAt.toISOString()}`);
  for (const row of failed) console.log(`failed ${row.id} ${row.kind} to ${row.recipient} after ${row.attempts} attempts: ${row.lastError ?? ''}`);
}

async function outboxRetry(args: string[]): Promise<void> {
  const { values } = parseArgs({ args, options: { id: { type: 'string', multiple: true } } });
  const ids = values.id;
  if (ids?.some((id) => !/^[0-9a-f-]{36}$/i.test(id))) throw new SetupError('--id takes an outbox message id (a UUID, as `tessera outbox status` prints it)');
  const given = ids ? [...new Set(ids.map((id) => id.toLowerCase()))] : undefined;
  const { requeued: n, unknown, notFailed } = await withServices(({ outbox }) => outbox.retryFailed(given), { migrate: false });
  // A mistyped or purged id is an error, and nothing is re-queued: a script must not read "0 re-queued" as done.
  if (unknown.length)
    throw new SetupError(
      `no outbox message with the id${unknown.length === 1 ? '' : 's'} ${unknown.join(', ')}; nothing was re-queued (\`tessera outbox status\` lists the failed ones)`,
    );
  for (const [id, status] of notFailed) console.log(`tessera: ${id} is ${status}, not failed; left as it is`);
  console.log(`tessera: ${n} failed message${n === 1 ? '' : 's'} re-queued; the server or the worker sends ${n === 1 ? 'it' : 'them'} shortly`);
}

/**
 * Runs `fn` with the application's services over the configured database: no HTTP app, no email
 * sender, no Redis, and a hashing thread only once something is hashed (composition/infra.ts).
 */
async function withServices<T>(fn: (services: Services, config: Config) => Promise<T>, opts: { migrate?: boolean } = {}): Promise<T> {
  const config = { ...loadConfig(), logLevel: 'error' };
  const { ring } = await loadConfiguredKeys(config);
  const database = await connectConfiguredDatabase(config);
  try {
    if (opts.migrate !== false) await migrateDatabase(database, (line) => console.warn(`tessera: ${line}`));
    const services = createServices(config, assembleInfra(config, { role: 'cli', database, keys: ring, mfaKey: loadMfaKey(config) }));
    try {
      return await fn(services, config);
    } finally {
      await services.close();
    }
  } finally {
    await database.close();
  }
}

async function usersCreate(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      email: { type: 'string' },
      admin: { type: 'boolean' },
      role: { type: 'string', multiple: true },
      'first-name': { type: 'string' },
      'last-name': { type: 'string' },
    },
  });
  if (!values.email) throw new SetupError('users create needs --email');
  const email = values.email;
  const password = await readPassword();
  const user = await withServices(async ({ admin }, config) => {
    const roles = [...new Set([config.defaultRole, ...(values.admin ? ['admin'] : []), ...(values.role ?? [])])];
    return admin.createUser(null, {
      email,
      password,
      firstName: values['first-name'],
      lastName: values['last-name'],
      emailVerified: true,
      roles,
      sendInvite: false,
    });
  });
  console.log(`tessera: created ${user.email} (${user.id})${values.admin ? ' with the admin role' : ''}`);
}

async function usersSetRole(args: string[]): Promise<void> {
  const { values } = parseArgs({ args, options: { email: { type: 'string' }, role: { type: 'string' }, remove: { type: 'boolean' } } });
  if (!values.email || !values.role) throw new SetupError('users set-role needs --email and --role');
  const email = normaliseEmail(values.email);
  const role = values.role;
  await withServices(async ({ admin }) => {
    const found = (await admin.listUsers({ emailPrefix: email, limit: 20 })).users.find((u) => u.email === email);
    if (!found) throw new SetupError(`no user with the email ${email}`);
    if (values.remove) await admin.removeRole(null, found.id, role);
    else await admin.addRole(null, found.id, role);
  });
  console.log(
    `tessera: ${values.remove ? 'took' : 'gave'} the role ${role} ${values.remove ? 'from' : 'to'} ${email}; Tessera's own routes apply it at once, their tokens from their next refresh`,
  );
}

async function usersCheckEmails(): Promise<number> {
  const report = await withDatabase((db) => reviewStoredEmails(db, { fix: false }));
  const lines = describeStoredEmails(report, false);
  for (const line of lines) console.log(line);
  if (lines.length === 0) console.log('tessera: every stored email address is canonical, and no two accounts reach one mailbox');
  return lines.length === 0 ? 0 : 1;
}

async function rolesList(): Promise<void> {
  const roles = await withServices(({ admin }) => admin.listRoles());
  for (const r of roles)
    console.log(`${r.name}\t${r.users} user${r.users === 1 ? '' : 's'}\t${r.permissions.join(' ') || '-'}${r.builtin ? '\t(built-in)' : ''}\t${r.description}`);
}

async function main(argv: string[]): Promise<number> {
  loadDotEnv();
  const [command, sub, ...rest] = argv;
  if (command === 'migrate') await migrate();
  else if (command === 'keys' && sub === 'generate') keysGenerate(rest);
  else if (command === 'keys' && sub === 'rotate') await keysRotate(rest, loadConfig());
  else if (command === 'keys' && sub === 'list') await keysList(loadConfig());
  else if (command === 'keys' && sub === 'retire') await keysRetire(rest, loadConfig());
  else if (command === 'worker') {
    const { runWorker } = await import('./worker-process.js');
    await runWorker(loadConfig());
  } else if (command === 'users' && sub === 'create') await usersCreate(rest);
  else if (command === 'users' && sub === 'set-role') await usersSetRole(rest);
  else if (command === 'users' && sub === 'check-emails') return usersCheckEmails();
  else if (command === 'import') {
    const { importCommand } = await import('./cli-import.js');
    return importCommand(sub, rest);
  } else if (command === 'clients') {
    const { clientsCommand } = await import('./cli-clients.js');
    return clientsCommand(sub, rest, withServices);
  } else if (command === 'roles' && sub === 'list') await rolesList();
  else if (command === 'outbox' && sub === 'status') await outboxStatus();
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
