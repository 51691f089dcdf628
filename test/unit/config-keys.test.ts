import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config/index.js';
import { generateKeyPairPem } from '../../src/infra/keys.js';

// Configuration of key rotation (KEYS_DIR, PREVIOUS_PUBLIC_KEYS, KEYS_*) and of POST /auth/introspect.

const pair = generateKeyPairPem('ES256');
const PROD = {
  NODE_ENV: 'production',
  PUBLIC_URL: 'https://auth.example.com',
  DATABASE_URL: 'postgres://u:p@db/tessera',
  SMTP_SERVER: 'smtp.example.com',
  MFA_ENCRYPTION_KEY: Buffer.alloc(32, 7).toString('base64'),
  METRICS_TOKEN: 'a-scrape-token',
};
const SECRET = 'x'.repeat(32);

function problems(env: Record<string, string>): string[] {
  try {
    loadConfig(env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).problems;
  }
  throw new Error('expected a ConfigError');
}

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'tessera-config-keys-'));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('keys', () => {
  it('production accepts KEYS_DIR instead of PRIVATE_KEY, and names both when neither is set', () => {
    const c = loadConfig({ ...PROD, KEYS_DIR: 'keys' });
    expect(c.jwt.keysDir).toBe(path.resolve('keys'));
    expect(c.jwt.privateKeyPem).toBeNull();
    const missing = problems(PROD);
    expect(missing).toHaveLength(1);
    expect(missing[0]).toContain('PRIVATE_KEY (or PRIVATE_KEY_FILE, or a KEYS_DIR of keys)');
  });

  it('defaults: 10 minutes of activation delay, a reload every 30 s', () => {
    const c = loadConfig({});
    expect(c.jwt.keysActivationDelaySeconds).toBe(600);
    expect(c.jwt.keysReloadIntervalSeconds).toBe(30);
    expect(c.jwt.keysDir).toBeNull();
    const tuned = loadConfig({ KEYS_ACTIVATION_DELAY: '1h', KEYS_RELOAD_INTERVAL: '0' });
    expect(tuned.jwt.keysActivationDelaySeconds).toBe(3600);
    expect(tuned.jwt.keysReloadIntervalSeconds).toBe(0);
    expect(problems({ KEYS_ACTIVATION_DELAY: 'soon', KEYS_RELOAD_INTERVAL: '2h' })).toEqual([
      expect.stringContaining('KEYS_ACTIVATION_DELAY'),
      expect.stringContaining('KEYS_RELOAD_INTERVAL'),
    ]);
  });

  it('KEYS_DIR with PRIVATE_KEY or PUBLIC_KEY, and PREVIOUS_PUBLIC_KEYS without PRIVATE_KEY, are refused', () => {
    expect(problems({ KEYS_DIR: 'keys', PRIVATE_KEY: pair.privateKey })).toEqual([expect.stringContaining('KEYS_DIR and PRIVATE_KEY are both set')]);
    expect(problems({ KEYS_DIR: 'keys', PUBLIC_KEY: pair.publicKey })).toEqual([expect.stringContaining('PUBLIC_KEY: only checked against PRIVATE_KEY')]);
    expect(problems({ PREVIOUS_PUBLIC_KEYS: pair.publicKey })).toEqual([expect.stringContaining('PREVIOUS_PUBLIC_KEYS: only used with PRIVATE_KEY')]);
  });

  it('PREVIOUS_PUBLIC_KEYS inline with \\n escapes or as a file', () => {
    const inline = loadConfig({ PRIVATE_KEY: pair.privateKey, PREVIOUS_PUBLIC_KEYS: pair.publicKey.replace(/\n/g, '\\n') });
    expect(inline.jwt.previousPublicKeysPem).toBe(pair.publicKey);
    const file = path.join(dir, 'previous.pem');
    writeFileSync(file, pair.publicKey + pair.publicKey);
    expect(loadConfig({ PRIVATE_KEY: pair.privateKey, PREVIOUS_PUBLIC_KEYS_FILE: file }).jwt.previousPublicKeysPem).toBe(pair.publicKey + pair.publicKey);
  });
});

describe('INTROSPECTION_CLIENTS', () => {
  it('parses id:secret pairs (a secret may contain ":"); none = off', () => {
    expect(loadConfig({}).introspection.clients).toEqual([]);
    const c = loadConfig({ INTROSPECTION_CLIENTS: `orders:${SECRET}, billing-v2:a:${SECRET}` });
    expect(c.introspection.clients).toEqual([
      { id: 'orders', secret: SECRET },
      { id: 'billing-v2', secret: `a:${SECRET}` },
    ]);
  });

  it('reads a file of one client per line, with comments', () => {
    const file = path.join(dir, 'clients');
    writeFileSync(file, `# resource servers\norders:${SECRET}\n\nbilling:${SECRET}y\n`);
    expect(loadConfig({ INTROSPECTION_CLIENTS_FILE: file }).introspection.clients.map((c) => c.id)).toEqual(['orders', 'billing']);
    expect(problems({ INTROSPECTION_CLIENTS_FILE: path.join(dir, 'missing') })).toEqual([expect.stringContaining('cannot read')]);
    expect(problems({ INTROSPECTION_CLIENTS_FILE: file, INTROSPECTION_CLIENTS: `a:${SECRET}` })).toEqual([expect.stringContaining('both set')]);
  });

  it('short secrets, bad ids and duplicates are refused without echoing secrets', () => {
    const p = problems({ INTROSPECTION_CLIENTS: `orders:short-secret-value,bad id:${SECRET},orders:${SECRET},orders:${SECRET},nosecret` });
    expect(p).toEqual([
      expect.stringContaining('client "orders": the secret must be at least 32 characters'),
      expect.stringContaining('entry 2: expected id:secret'),
      expect.stringContaining('client "orders" is listed twice'),
      expect.stringContaining('client "nosecret": the secret must be at least 32'),
    ]);
    expect(p.join('\n')).not.toContain('short-secret-value');
    expect(p.join('\n')).not.toContain(SECRET);
  });
});
