import { parseArgs } from 'node:util';
import { JWT_ALGORITHMS, type Config, type JwtAlgorithm } from './config/index.js';
import { SetupError } from './fatal.js';
import { createKeyFile, keyStatuses, readKeyDir, removeKeyFiles, type KeyStatus } from './infra/key-store.js';
import { KeyError } from './infra/keys.js';
import { configuredKeysDir } from './runtime.js';

// `tessera keys rotate | retire | list`: the keys directory (KEYS_DIR, or DATA_DIR/keys
// outside production). Runbook: docs/key-rotation.md.

const DURATION = /^(\d+)\s*([smhd]?)$/i;

function parseDuration(v: string, name: string): number {
  const m = DURATION.exec(v.trim());
  if (!m) throw new SetupError(`${name} takes a duration such as 0, 90s, 10m or 1h, got "${v}"`);
  return Number(m[1]) * { '': 1, s: 1, m: 60, h: 3600, d: 86400 }[(m[2] ?? '').toLowerCase() as '' | 's' | 'm' | 'h' | 'd'];
}

function keysDir(config: Config): string {
  const dir = configuredKeysDir(config);
  if (dir) return dir;
  throw new SetupError(
    config.jwt.privateKeyPem
      ? 'the signing key comes from PRIVATE_KEY, so Tessera cannot rotate it: generate one with `tessera keys generate`, publish the old public key in PREVIOUS_PUBLIC_KEYS and set PRIVATE_KEY to the new one (docs/key-rotation.md), or move to KEYS_DIR'
      : 'set KEYS_DIR (the directory of signing keys) to manage keys in production',
  );
}

const lifetimes = (config: Config) => ({ accessTokenSeconds: config.jwt.accessTokenMinutes * 60, refreshTokenSeconds: config.jwt.refreshTokenDays * 86400 });
const iso = (d: Date | null) => (d ? d.toISOString().replace(/\.\d{3}Z$/, 'Z') : '-');

function inWords(seconds: number): string {
  if (seconds < 90) return `${seconds} s`;
  if (seconds < 5400) return `${Math.round(seconds / 60)} min`;
  return `${Math.round(seconds / 360) / 10} h`;
}

/** `keys rotate [--alg ALG] [--activate-in DURATION]`: a new key, published now, signing after the activation delay. */
export async function keysRotate(args: string[], config: Config, now = new Date()): Promise<void> {
  const { values } = parseArgs({ args, options: { alg: { type: 'string' }, 'activate-in': { type: 'string' } } });
  const alg = (values.alg ?? config.jwt.algorithm) as JwtAlgorithm;
  if (!JWT_ALGORITHMS.includes(alg)) throw new SetupError(`--alg must be one of ${JWT_ALGORITHMS.join(', ')}, got "${alg}"`);
  const dir = keysDir(config);
  let existing: KeyStatus[] = [];
  try {
    existing = keyStatuses(await readKeyDir(dir), now, lifetimes(config), config.jwt.algorithm);
  } catch (err) {
    // A directory that does not exist yet gets its first key; broken files must be fixed first.
    if (!(err instanceof KeyError && err.message.includes('does not exist'))) throw err;
  }
  const pending = existing.find((k) => k.state === 'pending');
  if (pending)
    throw new SetupError(
      `key ${pending.key.kid} is already waiting to sign (from ${iso(pending.activatesAt)}); wait for it, or cancel it with \`tessera keys retire ${pending.key.kid}\``,
    );
  const only = !existing.some((k) => !k.publicOnly);
  // The first key of its algorithm: nothing of that algorithm signs yet, so there is nothing to wait for.
  const first = !existing.some((k) => !k.publicOnly && k.key.alg === alg);
  const delay = first ? 0 : values['activate-in'] !== undefined ? parseDuration(values['activate-in'], '--activate-in') : config.jwt.keysActivationDelaySeconds;
  const activatesAt = new Date(Math.ceil((now.getTime() + delay * 1000) / 1000) * 1000);
  const created = await createKeyFile(dir, alg, activatesAt);
  console.log(`tessera: created ${alg} key ${created.kid} in ${created.path}`);
  if (only) {
    console.log('It is the only key: it signs at once.');
    return;
  }
  const signing = existing.find((k) => k.state === 'signing');
  console.log(`It is published now (running servers re-read ${dir} every ${config.jwt.keysReloadIntervalSeconds || '-'} s, or at once on SIGHUP)`);
  if (alg !== config.jwt.algorithm) {
    // Tessera signs with JWT_ALGORITHM only: this key waits, published, for the switch.
    console.log(`It signs only once the servers run with JWT_ALGORITHM=${alg} (now ${config.jwt.algorithm}); switch when every verifier accepts ${alg}.`);
    console.log(`The ${config.jwt.algorithm} keys stay published: tokens they signed keep verifying until they expire.`);
    return;
  }
  console.log(`and starts signing at ${iso(activatesAt)} (in ${inWords(delay)}), replacing ${signing?.key.kid ?? 'the current key'}.`);
  if (delay < 300)
    console.log(
      'Warning: verifiers may cache the JWKS for 5 minutes; a shorter delay may reject new tokens at verifiers that do not refetch on an unknown kid.',
    );
}

/** `keys list`: every key of the directory with its state. */
export async function keysList(config: Config, now = new Date()): Promise<void> {
  const dir = keysDir(config);
  const keys = keyStatuses(await readKeyDir(dir), now, lifetimes(config), config.jwt.algorithm);
  console.log(['kid', 'alg', 'created', 'signs-from', 'state', 'safe-to-retire-at', 'refresh-tokens-until', 'files'].join('\t'));
  for (const k of keys) {
    const state = k.publicOnly ? `${k.state} (public only)` : k.key.alg !== config.jwt.algorithm ? `${k.state} (not JWT_ALGORITHM)` : k.state;
    const safe = k.safeToRetireAt ? (k.safeToRetireAt <= now ? 'now' : iso(k.safeToRetireAt)) : k.state === 'pending' ? 'now' : '-';
    console.log([k.key.kid, k.key.alg, iso(k.createdAt), iso(k.activatesAt), state, safe, iso(k.refreshTokensUntil), k.files.join(',')].join('\t'));
  }
}

/** `keys retire KID [--force]`: removes a key that signs nothing any more and whose access tokens have expired. */
export async function keysRetire(args: string[], config: Config, now = new Date()): Promise<void> {
  // Not parseArgs: a key id is a base64url thumbprint and may start with "-" (`keys retire -Xb…`).
  const values = { force: args.includes('--force') };
  const positionals = args.filter((a) => a !== '--force' && a !== '--');
  const [kid] = positionals;
  if (!kid || positionals.length > 1) throw new SetupError('keys retire takes one key id (see `tessera keys list`)');
  const dir = keysDir(config);
  const keys = keyStatuses(await readKeyDir(dir), now, lifetimes(config), config.jwt.algorithm);
  const key = keys.find((k) => k.key.kid === kid);
  if (!key) throw new SetupError(`no key ${kid} in ${dir}; keys: ${keys.map((k) => k.key.kid).join(', ') || 'none'}`);
  if (key.state === 'signing')
    throw new SetupError(`${kid} is the signing key; rotate first (\`tessera keys rotate\`) and retire it once the new key signs and its tokens have expired`);
  if (key.state === 'previous' && key.safeToRetireAt && key.safeToRetireAt > now && !values.force) {
    throw new SetupError(
      `access tokens signed by ${kid} may be valid until ${iso(key.safeToRetireAt)} (ACCESS_TOKEN_EXPIRE_MINUTES=${config.jwt.accessTokenMinutes} after it stopped signing at ${iso(key.stoppedSigningAt)}); retire it then, or now with --force (those tokens are refused at once)`,
    );
  }
  const removed = removeKeyFiles(dir, key);
  console.log(`tessera: ${key.state === 'pending' ? 'cancelled the pending key' : 'retired'} ${kid}: removed ${removed.join(', ')}`);
  console.log(`Running servers drop it within ${config.jwt.keysReloadIntervalSeconds || '-'} s (KEYS_RELOAD_INTERVAL), or at once on SIGHUP.`);
  if (key.refreshTokensUntil && key.refreshTokensUntil > now) {
    console.log(
      `Refresh tokens it signed no longer work: sessions that have not refreshed since ${iso(key.stoppedSigningAt)} must sign in again (until ${iso(key.refreshTokensUntil)} they could have refreshed). Emails still waiting in the outbox with links sealed under it cannot be sent.`,
    );
  }
}
