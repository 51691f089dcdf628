import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { keysList, keysRetire, keysRotate } from '../../src/cli-keys.js';
import { loadConfig, type Config } from '../../src/config/index.js';
import { SetupError } from '../../src/fatal.js';

// `tessera keys rotate | list | retire` with an injected "now" (the CLI itself runs on the real clock).

let root: string;
beforeAll(() => {
  root = mkdtempSync(path.join(tmpdir(), 'tessera-cli-keys-'));
});
afterAll(() => {
  rmSync(root, { recursive: true, force: true });
});
afterEach(() => {
  vi.restoreAllMocks();
});

const T0 = new Date('2026-01-15T12:00:00Z');
const at = (minutes: number) => new Date(T0.getTime() + minutes * 60_000);

function configFor(name: string, env: Record<string, string> = {}): Config {
  return loadConfig({ NODE_ENV: 'test', KEYS_DIR: path.join(root, name), DATA_DIR: path.join(root, `${name}-data`), JWT_ALGORITHM: 'ES256', ...env });
}

/** What the command printed. */
async function run(fn: () => Promise<void>): Promise<string> {
  const lines: string[] = [];
  const spy = vi.spyOn(console, 'log').mockImplementation((...args: unknown[]) => void lines.push(args.join(' ')));
  try {
    await fn();
  } finally {
    spy.mockRestore();
  }
  return lines.join('\n');
}

async function refused(fn: () => Promise<void>): Promise<string> {
  const err = await run(fn).then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(SetupError);
  return (err as SetupError).message;
}

const kidIn = (out: string) => /created \w+ key (\S+)/.exec(out)?.[1] as string;

describe('keys rotate / list / retire', () => {
  it('a full cycle with the default activation delay and no --force', async () => {
    const config = configFor('cycle');
    const first = await run(() => keysRotate([], config, T0));
    expect(first).toContain('It is the only key: it signs at once.');
    const k1 = kidIn(first);

    const second = await run(() => keysRotate([], config, at(1)));
    const k2 = kidIn(second);
    expect(second).toContain('starts signing at 2026-01-15T12:11:00Z (in 10 min)'); // KEYS_ACTIVATION_DELAY default
    expect(second).toContain(`replacing ${k1}`);
    expect(readdirSync(config.jwt.keysDir!).sort()).toEqual([`20260115T120000Z-${k1}.pem`, `20260115T121100Z-${k2}.pem`]);

    expect(await refused(() => keysRotate([], config, at(2)))).toContain(`key ${k2} is already waiting to sign (from 2026-01-15T12:11:00Z)`);

    const listed = await run(() => keysList(config, at(2)));
    expect(listed.split('\n')[0]).toBe('kid\talg\tcreated\tsigns-from\tstate\tsafe-to-retire-at\trefresh-tokens-until\tfiles');
    expect(listed).toMatch(new RegExp(`^${k2}\\tES256\\t\\S+\\t2026-01-15T12:11:00Z\\tpending\\tnow\\t-\\t`, 'm'));
    expect(listed).toMatch(new RegExp(`^${k1}\\tES256\\t\\S+\\t2026-01-15T12:00:00Z\\tsigning\\t-\\t-\\t`, 'm'));

    // After activation: k1 stopped at 12:11, its access tokens (15 min) expire by 12:26, +1 min of clock skew.
    expect(await refused(() => keysRetire([k2], config, at(12)))).toContain('is the signing key');
    expect(await refused(() => keysRetire([k1], config, at(12)))).toContain('may be valid until 2026-01-15T12:27:00Z');
    expect(await refused(() => keysRetire([k1], config, at(26)))).toContain('may be valid until');
    const listedLater = await run(() => keysList(config, at(20)));
    expect(listedLater).toMatch(new RegExp(`^${k1}\\tES256\\t\\S+\\t\\S+\\tprevious\\t2026-01-15T12:27:00Z\\t2026-02-14T12:11:00Z\\t`, 'm'));

    const retired = await run(() => keysRetire([k1], config, at(27)));
    expect(retired).toContain(`retired ${k1}`);
    expect(retired).toContain('sessions that have not refreshed since 2026-01-15T12:11:00Z must sign in again');
    expect(readdirSync(config.jwt.keysDir!)).toEqual([`20260115T121100Z-${k2}.pem`]);
  });

  it('a key id that starts with "-" (base64url) is a key id, not an option', async () => {
    const config = configFor('dash');
    await run(() => keysRotate([], config, T0));
    expect(await refused(() => keysRetire(['-Xb3', '--force'], config, at(1)))).toContain('no key -Xb3 in');
    expect(await refused(() => keysRetire(['--', '-Xb3'], config, at(1)))).toContain('no key -Xb3 in');
    expect(await refused(() => keysRetire([], config, at(1)))).toContain('takes one key id');
  });

  it('a pending key can be cancelled; --activate-in 0 signs at once with a warning; --alg adds a key that waits for JWT_ALGORITHM', async () => {
    const config = configFor('cancel');
    const k1 = kidIn(await run(() => keysRotate([], config, T0)));
    const k2 = kidIn(await run(() => keysRotate([], config, at(1))));
    const cancelled = await run(() => keysRetire([k2], config, at(2)));
    expect(cancelled).toContain(`cancelled the pending key ${k2}`);
    expect(cancelled).not.toContain('Refresh tokens');

    const now = await run(() => keysRotate(['--activate-in', '0'], config, at(3)));
    expect(now).toContain('created ES256 key');
    expect(now).toContain('(in 0 s)');
    expect(now).toContain('Warning: verifiers may cache the JWKS for 5 minutes');
    const k3 = kidIn(now);
    // Another algorithm than JWT_ALGORITHM (ES256 here): published now, signing only once the servers switch.
    const ed = await run(() => keysRotate(['--alg', 'EdDSA'], config, at(4)));
    expect(ed).toContain('created EdDSA key');
    expect(ed).toContain('It signs only once the servers run with JWT_ALGORITHM=EdDSA (now ES256)');
    const listed = await run(() => keysList(config, at(5)));
    expect(listed).toMatch(/\tEdDSA\t\S+\t\S+\tprevious \(not JWT_ALGORITHM\)\t/);
    expect(listed).toMatch(new RegExp(`^${k3}\\tES256\\t\\S+\\t\\S+\\tsigning\\t`, 'm'));
    expect(listed).toMatch(new RegExp(`^${k1}\\tES256\\t\\S+\\t\\S+\\tprevious\\t`, 'm'));
    const switched = await run(() => keysList({ ...config, jwt: { ...config.jwt, algorithm: 'EdDSA' } }, at(5)));
    expect(switched).toMatch(/\tEdDSA\t\S+\t\S+\tsigning\t/);
  });

  it('bad arguments and configurations are clear refusals', async () => {
    const config = configFor('args');
    expect(await refused(() => keysRotate(['--alg', 'HS256'], config, T0))).toContain('--alg must be one of RS256, ES256, EdDSA');
    await run(() => keysRotate([], config, T0));
    expect(await refused(() => keysRotate(['--activate-in', 'soon'], config, at(1)))).toContain('--activate-in takes a duration');
    expect(await refused(() => keysRetire([], config, T0))).toContain('takes one key id');
    expect(await refused(() => keysRetire(['nope'], config, T0))).toContain('no key nope in');
    const production = loadConfig({
      NODE_ENV: 'production',
      PUBLIC_URL: 'https://auth.example.com',
      DATABASE_URL: 'postgres://x@localhost/db',
      MFA_ENCRYPTION_KEY: Buffer.alloc(32, 1).toString('base64'),
      SMTP_SERVER: 'smtp.example.com',
      METRICS_TOKEN: 'a-scrape-token',
      KEYS_DIR: path.join(root, 'prod'),
    });
    expect(production.jwt.keysDir).toBe(path.join(root, 'prod')); // KEYS_DIR counts as configured keys in production
  });

  it('without KEYS_DIR, development rotates DATA_DIR/keys (where `npm start` generated its key)', async () => {
    const config = loadConfig({ NODE_ENV: 'development', DATA_DIR: path.join(root, 'dev-data'), JWT_ALGORITHM: 'ES256' });
    const out = await run(() => keysRotate([], config, T0));
    expect(out).toContain(path.join(root, 'dev-data', 'keys'));
  });
});
